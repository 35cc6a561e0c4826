"""Queued MQTT message → InfluxDB point (line protocol), or the reason it cannot be one."""

from __future__ import annotations

import json
from dataclasses import dataclass

from influxdb_client import Point, WritePrecision

from commons.contract import (
    GATEWAY_SEGMENT,
    TOPIC_ROOT,
    InvalidMessageError,
    Kind,
    parse_message,
)
from gateway.queue import QueuedMessage
from ingest.registry import NodeLookup
from ingest.schema import GATEWAY_MEASUREMENT, MEASUREMENT, to_line

_GATEWAY_PREFIX = f"{TOPIC_ROOT}/{GATEWAY_SEGMENT}/"
# Status keys that describe the message rather than the gateway's state.
_GATEWAY_STATUS_SKIP = frozenset({"v", "ts", "state"})


@dataclass(frozen=True)
class Converted:
    message: QueuedMessage
    measurement: str
    ts: int
    line: str


class Converter:
    def __init__(self, nodes: NodeLookup) -> None:
        self.nodes = nodes

    def convert(self, message: QueuedMessage) -> Converted:
        """Raises :class:`InvalidMessageError` for a message that breaks the contract."""
        # Five levels never match the subscription: only the gateway's own status has them.
        if message.topic.startswith(_GATEWAY_PREFIX) and message.topic.count("/") == 4:
            return self._gateway_status(message)
        reading = parse_message(message.topic, message.payload, message.received)
        info = self.nodes.info(reading.node)
        if info is None:
            line = to_line(reading, None)
        elif reading.kind is Kind.STATUS and info.public is not None:
            # A node's status carries its public location, for maps; never the exact one.
            line = to_line(reading, info.area, (info.public.lat, info.public.lon))
        else:
            line = to_line(reading, info.area)
        return Converted(message, MEASUREMENT[reading.kind], reading.ts, line)

    @staticmethod
    def _gateway_status(message: QueuedMessage) -> Converted:
        """The gateway's own status, as it published it: counters become integer fields."""
        parts = message.topic.split("/")
        if parts[4] != "status":
            raise InvalidMessageError("topic", f"{message.topic!r} is not a gateway status topic")
        # The gateway's own message: no node payload size limit (its node table can be long).
        try:
            status = json.loads(message.payload)
        except ValueError as exc:
            raise InvalidMessageError("payload", f"not JSON ({exc})") from None
        if not isinstance(status, dict):
            raise InvalidMessageError("payload", "expected a JSON object")
        ts = status.get("ts")
        if not isinstance(ts, int):
            raise InvalidMessageError("ts", "a gateway status needs an integer ts")
        point = Point(GATEWAY_MEASUREMENT).tag("gateway", parts[3])
        for name, value in status.items():
            # Tables (per-node last seen) are for people watching MQTT, not fields.
            if name in _GATEWAY_STATUS_SKIP or isinstance(value, dict | list):
                continue
            if not isinstance(value, bool | int | float | str):
                raise InvalidMessageError(name, f"unsupported value {json.dumps(value)}")
            point = point.field(name, value)
        line: str = point.time(ts, WritePrecision.S).to_line_protocol()
        return Converted(message, GATEWAY_MEASUREMENT, ts, line)
