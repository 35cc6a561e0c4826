"""Baseline: the fastest a Python MQTT subscriber takes in messages (paho, QoS 1, json.loads).

Usage: bare_subscriber.py HOST PORT CLIENT_ID COUNT [--prepare]
With --prepare it only creates its persistent session and exits; otherwise it drains COUNT
messages queued for that session and prints the seconds it took, from connect to the last.
It connects as $BENCH_MQTT_USERNAME / $BENCH_MQTT_PASSWORD (a gateway role's credentials).
"""

from __future__ import annotations

import json
import os
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

TOPIC = "commons/v1/+/+"


def main() -> None:
    host, port, client_id, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    prepare = "--prepare" in sys.argv
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    if "BENCH_MQTT_USERNAME" in os.environ:
        client.username_pw_set(
            os.environ["BENCH_MQTT_USERNAME"], os.environ.get("BENCH_MQTT_PASSWORD")
        )
    received = 0
    started = 0.0

    def on_connect(c: mqtt.Client, *args: object) -> None:
        c.subscribe(TOPIC, qos=1)

    def on_subscribe(c: mqtt.Client, *args: object) -> None:
        if prepare:
            c.disconnect()

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        json.loads(msg.payload)
        received += 1
        if received >= count:
            c.disconnect()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    started = time.perf_counter()
    client.connect(host, port)
    client.loop_forever()
    if not prepare:
        print(json.dumps({"seconds": time.perf_counter() - started, "received": received}))


if __name__ == "__main__":
    main()
