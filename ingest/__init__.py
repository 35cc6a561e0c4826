"""Storage side: InfluxDB schema and bootstrap, line-protocol writes, node registry, exports."""
