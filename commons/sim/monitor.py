"""What the simulated nodes publish, as the broker sees it: readings by seq, status by node.

A read-only MQTT subscriber on each node's topics; the summary of ``commons node simulate``
comes from here. On a stack with access control it connects as ``sim-monitor``, a client with
the read-only ``monitor`` role made once through the stack's admin account (its password in
``$COMMONS_HOME/sim/monitor.password``, mode 0600); on a stack without, anonymously.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from commons.contract import Kind, topic_for
from commons.dynsec import Credentials
from commons.home import StackInfo

CONNECT_TIMEOUT_S = 10.0
MONITOR_USER = "sim-monitor"
PASSWORD_FILE = "monitor.password"


def monitor_credentials(stack: StackInfo) -> Credentials | None:
    """The read-only ``sim-monitor`` account (made on first use); None without access control."""
    if stack.mqtt.admin is None:
        return None
    from commons import access
    from commons.dynsec import Dynsec
    from commons.tlsgen import write_private

    path = stack.home / "sim" / PASSWORD_FILE
    admin = Credentials(stack.mqtt.admin.username, stack.mqtt.admin.password())
    with Dynsec(stack.mqtt.host, stack.mqtt.port, admin) as dynsec:
        if dynsec.get_client(MONITOR_USER) is not None:
            if path.exists():
                return Credentials(MONITOR_USER, path.read_text().strip())
            access.remove_client(dynsec, MONITOR_USER)  # its password is lost: a new one
        credentials = access.add_monitor(dynsec, MONITOR_USER)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, credentials.password.encode())
    return credentials


# Each monitor of a process needs its own client id, or the broker disconnects the other one.
_MONITORS = itertools.count(1)


@dataclass
class NodeSeen:
    seqs: set[int] = field(default_factory=set)
    readings: int = 0  # messages, duplicates included
    heap_min: int | None = None
    reset_causes: list[str] = field(default_factory=list)
    statuses: int = 0
    buffered_max: int = 0
    first_ts: int | None = None
    last_ts: int | None = None


class MonitorError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"MQTT monitor: {reason}")
        self.reason = reason


class Monitor:
    def __init__(self, stack: StackInfo, node_ids: list[str], client_id: str | None = None) -> None:
        self.nodes = {n: NodeSeen() for n in node_ids}
        self._lock = threading.Lock()
        default_id = f"commons-sim-monitor-{os.getpid()}-{next(_MONITORS)}"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or default_id)
        credentials = monitor_credentials(stack)
        if credentials is not None:
            self._client.username_pw_set(credentials.username, credentials.password)
        self._client.on_message = self._on_message
        ready = threading.Event()
        failure: list[str] = []

        def on_connect(
            client: mqtt.Client, userdata: object, flags: object, rc: object, props: object = None
        ) -> None:
            if getattr(rc, "is_failure", False):
                failure.append(str(rc))
            else:
                for node in node_ids:
                    client.subscribe(topic_for(node, Kind.AIR), qos=1)
                    client.subscribe(topic_for(node, Kind.NOISE), qos=1)
                    client.subscribe(topic_for(node, Kind.STATUS), qos=1)
            ready.set()

        self._client.on_connect = on_connect
        self._client.connect(stack.mqtt.host, stack.mqtt.port)
        self._client.loop_start()
        if not ready.wait(CONNECT_TIMEOUT_S) or failure:
            self.close()
            raise MonitorError(failure[0] if failure else "no answer from the broker")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4 or parts[2] not in self.nodes:
            return
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        with self._lock:
            seen = self.nodes[parts[2]]
            if parts[3] in ("air", "noise"):
                seen.readings += 1
                if isinstance(payload.get("seq"), int):
                    seen.seqs.add(payload["seq"])
                ts = payload.get("ts")
                if isinstance(ts, int):
                    seen.first_ts = ts if seen.first_ts is None else min(seen.first_ts, ts)
                    seen.last_ts = ts if seen.last_ts is None else max(seen.last_ts, ts)
            elif parts[3] == "status" and payload.get("state") != "offline":
                seen.statuses += 1
                heap = payload.get("heap_free")
                if isinstance(heap, int):
                    seen.heap_min = heap if seen.heap_min is None else min(seen.heap_min, heap)
                cause = payload.get("reset_cause")
                if isinstance(cause, str) and (
                    not seen.reset_causes or seen.reset_causes[-1] != cause
                ):
                    seen.reset_causes.append(cause)
                buffered = payload.get("buffered")
                if isinstance(buffered, int):
                    seen.buffered_max = max(seen.buffered_max, buffered)

    def snapshot(self) -> dict[str, NodeSeen]:
        with self._lock:
            return {
                n: NodeSeen(
                    set(s.seqs), s.readings, s.heap_min, list(s.reset_causes), s.statuses,
                    s.buffered_max, s.first_ts, s.last_ts,
                )
                for n, s in self.nodes.items()
            }  # fmt: skip

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
