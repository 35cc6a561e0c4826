"""Simulated nodes in Python: plausible air and noise readings published over real MQTT.

The demo uses these to exercise the whole pipeline. They speak contract v1 exactly as a
node does (QoS 1, one reading per message, retained ``offline`` last will), and can
backfill history by publishing readings with past timestamps.
"""

from __future__ import annotations

import json
import math
import random
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from commons.contract import Kind, topic_for
from commons.dynsec import Credentials

FIRMWARE = "sim-0.1"


@dataclass(frozen=True)
class SimNode:
    node_id: str
    area: str
    kind: Kind
    # Site character: a busy road has more PM and noise than a park edge.
    traffic: float
    seed: int


def _rush_hours(hour: float) -> float:
    """0..1 traffic intensity over the day (local time ≈ UTC here): peaks at 8 h and 18 h."""
    morning = math.exp(-((hour - 8.0) ** 2) / 3.0)
    evening = math.exp(-((hour - 18.0) ** 2) / 4.0)
    daytime = 0.35 if 6.5 <= hour <= 22.0 else 0.05
    return min(1.0, daytime + morning + 0.8 * evening)


def air_reading(node: SimNode, ts: int, seq: int, rng: random.Random) -> dict[str, Any]:
    hour = (ts % 86400) / 3600.0
    intensity = _rush_hours(hour)
    background = 6.0 + 3.0 * math.sin(2 * math.pi * (ts / 86400.0) / 3.0)
    pm2_5 = max(0.5, background + 22.0 * node.traffic * intensity + rng.gauss(0, 1.5))
    pm10 = pm2_5 * (1.35 + 0.2 * rng.random())
    temp = 12.0 + 6.0 * math.sin(2 * math.pi * (hour - 9.0) / 24.0) + rng.gauss(0, 0.2)
    rh = min(99.0, max(20.0, 70.0 - 2.2 * (temp - 12.0) + rng.gauss(0, 1.0)))
    flags = ["rh_high"] if rh > 70.0 else []
    return {
        "v": 1,
        "ts": ts,
        "seq": seq,
        "fw": FIRMWARE,
        "flags": flags,
        "pm1": round(pm2_5 * 0.7, 1),
        "pm2_5": round(pm2_5, 1),
        "pm10": round(pm10, 1),
        "temp": round(temp, 2),
        "rh": round(rh, 1),
        "pres": round(1013.0 + rng.gauss(0, 0.3), 1),
    }


def noise_reading(
    node: SimNode, ts: int, seq: int, period: int, rng: random.Random
) -> dict[str, Any]:
    hour = (ts % 86400) / 3600.0
    intensity = _rush_hours(hour)
    la90 = 35.0 + 12.0 * intensity * node.traffic + rng.gauss(0, 0.8)
    laeq = la90 + 6.0 + 10.0 * intensity * node.traffic + rng.gauss(0, 1.0)
    la50 = (la90 + laeq) / 2.0
    la10 = laeq + 2.5
    lafmax = laeq + 12.0 + 6.0 * rng.random()
    lafmin = la90 - 3.0
    flags = ["below_floor"] if la90 < 39.0 else []
    return {
        "v": 1,
        "ts": ts,
        "seq": seq,
        "fw": FIRMWARE,
        "flags": flags,
        "period": period,
        "laeq": round(laeq, 1),
        "lafmax": round(lafmax, 1),
        "lafmin": round(lafmin, 1),
        "la10": round(la10, 1),
        "la50": round(la50, 1),
        "la90": round(la90, 1),
    }


class SimulatedNode:
    """One node's MQTT session and its reading generator."""

    def __init__(self, node: SimNode, host: str, port: int, credentials: Credentials) -> None:
        self.node = node
        self.seq = 0
        self.rng = random.Random(node.seed)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{node.node_id}")
        self.client.username_pw_set(credentials.username, credentials.password)
        self.client.will_set(
            topic_for(node.node_id, Kind.STATUS),
            json.dumps({"v": 1, "state": "offline"}),
            qos=1,
            retain=True,
        )
        connected = threading.Event()
        refused: list[object] = []

        def on_connect(
            client: mqtt.Client, userdata: object, flags: object, rc: Any, props: object
        ) -> None:
            if rc.is_failure:
                refused.append(rc)
            connected.set()

        self.client.on_connect = on_connect
        self.client.connect(host, port)
        self.client.loop_start()
        if not connected.wait(10) or refused:
            self.client.loop_stop()
            reason = f"refused ({refused[0]})" if refused else "did not answer"
            raise ConnectionError(f"{node.node_id}: broker mqtt://{host}:{port} {reason}")
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def reading(self, ts: int, period: int) -> dict[str, Any]:
        self.seq += 1
        if self.node.kind is Kind.NOISE:
            return noise_reading(self.node, ts, self.seq, period, self.rng)
        return air_reading(self.node, ts, self.seq, self.rng)

    def publish_reading(self, ts: int, period: int) -> None:
        payload = json.dumps(self.reading(ts, period))
        topic = topic_for(self.node.node_id, self.node.kind)
        self._pending.append(self.client.publish(topic, payload, qos=1))

    def publish_status(self, uptime: int) -> None:
        status = {
            "v": 1,
            "seq": self.seq,
            "fw": FIRMWARE,
            "state": "online",
            "uptime": uptime,
            "heap_free": 80_000 + self.rng.randint(0, 5000),
            "rssi": -60 - self.rng.randint(0, 20),
            "buffered": 0,
        }
        topic = topic_for(self.node.node_id, Kind.STATUS)
        self._pending.append(self.client.publish(topic, json.dumps(status), qos=1, retain=True))

    def flush(self, timeout: float = 60.0) -> None:
        """Wait for the broker's PUBACK of everything published so far."""
        for info in self._pending:
            info.wait_for_publish(timeout)
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()
