"""The gateway: MQTT subscriber, durable SQLite queue, uplink to InfluxDB."""
