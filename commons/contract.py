"""Message contract, version 1: topics and payloads, written down once.

Both sides are tested against the golden messages in ``tests/golden/``: the firmware's
output must pass :func:`parse_message`, and the gateway stores exactly what it returns.
A message that breaks the contract raises :class:`InvalidMessageError` naming the field and
what was wrong with it; nothing here ever alters a value silently.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1
TOPIC_ROOT = "commons/v1"
SUBSCRIPTION = f"{TOPIC_ROOT}/+/+"
GATEWAY_SEGMENT = "gateway"  # commons/v1/gateway/<gateway_id>/status; not a node id
NODE_ID_PATTERN = re.compile(r"^[a-z0-9-]{3,32}$")
FLAG_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
MAX_PAYLOAD_BYTES = 4096
MAX_FLAGS = 16
MAX_TEXT = 64
# Node clocks before this are unset or wrong (the ESP32 port's 2000-01-01 epoch, say).
EARLIEST_TS = 1_577_836_800  # 2020-01-01T00:00:00Z
# Allowed lead of a node's clock over the gateway's before the timestamp is refused.
MAX_CLOCK_LEAD_S = 600


class Kind(StrEnum):
    """The message kinds a node publishes, one topic each."""

    AIR = "air"
    NOISE = "noise"
    STATUS = "status"


class Flag(StrEnum):
    """QA flags. The order is the bit order of the ``qa`` bitmask: append only, never reorder."""

    WARMUP = "warmup"
    RH_HIGH = "rh_high"
    SENSOR_MISSING = "sensor_missing"
    CLIP = "clip"
    BELOW_FLOOR = "below_floor"
    OUT_OF_RANGE = "out_of_range"
    STUCK = "stuck"
    CLOCK_GATEWAY = "clock_gateway"
    PM_INCONSISTENT = "pm_inconsistent"
    GAP = "gap"
    OTHER = "other"  # a well-formed flag this version does not know (newer firmware)

    @property
    def bit(self) -> int:
        return _FLAG_BITS[self]


_FLAG_BITS: dict[Flag, int] = {flag: 1 << index for index, flag in enumerate(Flag)}
_FLAGS_BY_NAME: dict[str, Flag] = {flag.value: flag for flag in Flag}


def qa_bitmask(flags: tuple[str, ...]) -> int:
    """The ``qa`` field: one bit per flag, unknown flags folded into ``other``."""
    mask = 0
    for name in flags:
        mask |= _FLAG_BITS[_FLAGS_BY_NAME.get(name, Flag.OTHER)]
    return mask


def flags_from_bitmask(mask: int) -> tuple[str, ...]:
    """Inverse of :func:`qa_bitmask` (unknown flags come back as ``other``)."""
    return tuple(f.value for f in Flag if mask & f.bit)


@dataclass(frozen=True)
class FieldSpec:
    """One measured value: its unit and the range a working sensor can report."""

    name: str
    unit: str
    low: float
    high: float
    description: str


AIR_FIELDS = (
    FieldSpec("pm1", "µg/m³", 0.0, 1000.0, "PM1 mass concentration"),
    FieldSpec("pm2_5", "µg/m³", 0.0, 1000.0, "PM2.5 mass concentration"),
    FieldSpec("pm10", "µg/m³", 0.0, 1000.0, "PM10 mass concentration"),
    FieldSpec("temp", "°C", -40.0, 85.0, "air temperature"),
    FieldSpec("rh", "%", 0.0, 100.0, "relative humidity"),
    FieldSpec("pres", "hPa", 300.0, 1100.0, "barometric pressure"),
    FieldSpec("co2", "ppm", 0.0, 40000.0, "CO2 concentration"),
)
NOISE_FIELDS = (
    FieldSpec("period", "s", 1.0, 86400.0, "seconds integrated"),
    FieldSpec("laeq", "dB(A)", 0.0, 140.0, "A-weighted equivalent level"),
    FieldSpec("lafmax", "dB(A)", 0.0, 140.0, "maximum A-weighted Fast level"),
    FieldSpec("lafmin", "dB(A)", 0.0, 140.0, "minimum A-weighted Fast level"),
    FieldSpec("la10", "dB(A)", 0.0, 140.0, "A-weighted level exceeded 10 % of the time"),
    FieldSpec("la50", "dB(A)", 0.0, 140.0, "A-weighted level exceeded 50 % of the time"),
    FieldSpec("la90", "dB(A)", 0.0, 140.0, "A-weighted level exceeded 90 % of the time"),
)
STATUS_FIELDS = (
    FieldSpec("uptime", "s", 0.0, 1e10, "seconds since boot"),
    FieldSpec("heap_free", "B", 0.0, 1e9, "free heap"),
    FieldSpec("rssi", "dBm", -127.0, 0.0, "Wi-Fi signal strength"),
    FieldSpec("buffered", "readings", 0.0, 1e9, "readings waiting in flash"),
    FieldSpec("pm_hours", "h", 0.0, 1e6, "PM sensor run hours"),
)
# Status values that are words, not numbers.
STATUS_TEXT_FIELDS = ("reset_cause", "state")
NODE_STATES = ("online", "offline")

MEASURED: dict[Kind, tuple[FieldSpec, ...]] = {
    Kind.AIR: AIR_FIELDS,
    Kind.NOISE: NOISE_FIELDS,
    Kind.STATUS: STATUS_FIELDS,
}
REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.AIR: ("seq", "fw"),
    Kind.NOISE: ("seq", "fw", "period"),
    # The retained last will is fixed when the node connects: it carries only v and state.
    Kind.STATUS: ("state",),
}
COMMON_KEYS = ("v", "ts", "seq", "fw", "flags")


class InvalidMessageError(ValueError):
    """A message that breaks the contract; ``field`` names the offending part."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Topic:
    """A parsed reading topic ``commons/v1/<node_id>/<kind>``."""

    node: str
    kind: Kind

    @classmethod
    def parse(cls, topic: str) -> Topic:
        parts = topic.split("/")
        if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_ROOT:
            raise InvalidMessageError("topic", f"{topic!r} is not {TOPIC_ROOT}/<node_id>/<kind>")
        node, kind = parts[2], parts[3]
        if node == GATEWAY_SEGMENT or not NODE_ID_PATTERN.match(node):
            raise InvalidMessageError("topic", f"node id {node!r} is not [a-z0-9-]{{3,32}}")
        try:
            return cls(node=node, kind=Kind(kind))
        except ValueError:
            names = ", ".join(k.value for k in Kind)
            raise InvalidMessageError("topic", f"kind {kind!r} is not one of {names}") from None

    def __str__(self) -> str:
        return topic_for(self.node, self.kind)


def topic_for(node: str, kind: Kind | str) -> str:
    return f"{TOPIC_ROOT}/{node}/{Kind(kind).value}"


def gateway_status_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{GATEWAY_SEGMENT}/{gateway_id}/status"


@dataclass(frozen=True)
class Reading:
    """One validated message, ready for the queue and for InfluxDB."""

    node: str
    kind: Kind
    ts: int
    seq: int | None
    fw: str | None
    flags: tuple[str, ...]
    values: dict[str, float] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)

    @property
    def qa(self) -> int:
        return qa_bitmask(self.flags)

    def to_json(self) -> str:
        return json.dumps(
            {
                "node": self.node,
                "kind": self.kind.value,
                "ts": self.ts,
                "seq": self.seq,
                "fw": self.fw,
                "flags": list(self.flags),
                "values": self.values,
                "text": self.text,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> Reading:
        obj = json.loads(raw)
        return cls(
            node=obj["node"],
            kind=Kind(obj["kind"]),
            ts=obj["ts"],
            seq=obj["seq"],
            fw=obj["fw"],
            flags=tuple(obj["flags"]),
            values=obj["values"],
            text=obj["text"],
        )


def _reject_constant(name: str) -> float:
    raise InvalidMessageError("payload", f"non-finite number {name} is not allowed")


def _number(key: str, value: Any) -> float:
    # bool is an int in Python but never a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMessageError(key, f"expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise InvalidMessageError(key, "number too large") from None
    if not math.isfinite(number):
        raise InvalidMessageError(key, f"{value!r} is not a finite number")
    return number


def _integer(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessageError(key, f"expected an integer, got {type(value).__name__}")
    if value < low:
        raise InvalidMessageError(key, f"{value} is below {low}")
    return value


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidMessageError(key, f"expected a string, got {type(value).__name__}")
    if not 0 < len(value) <= MAX_TEXT or not value.isprintable():
        raise InvalidMessageError(key, f"expected 1-{MAX_TEXT} printable characters")
    return value


def _flags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidMessageError("flags", f"expected a list, got {type(value).__name__}")
    if len(value) > MAX_FLAGS:
        raise InvalidMessageError("flags", f"{len(value)} flags, at most {MAX_FLAGS}")
    for item in value:
        if not isinstance(item, str) or not FLAG_PATTERN.match(item):
            raise InvalidMessageError("flags", f"{item!r} is not a flag name [a-z0-9_]")
    return tuple(dict.fromkeys(value))


_SPECS: dict[Kind, dict[str, FieldSpec]] = {
    kind: {spec.name: spec for spec in specs} for kind, specs in MEASURED.items()
}
_ALLOWED_KEYS: dict[Kind, frozenset[str]] = {
    kind: frozenset(COMMON_KEYS)
    | frozenset(_SPECS[kind])
    | frozenset(STATUS_TEXT_FIELDS if kind is Kind.STATUS else ())
    for kind in Kind
}
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


@functools.lru_cache(maxsize=4096)
def _parse_topic(topic: str) -> Topic:
    """:meth:`Topic.parse`, remembered: a gateway sees the same few topics over and over."""
    return Topic.parse(topic)


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Bytes → JSON object, with the size limit and strict number parsing."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidMessageError(
            "payload", f"{len(payload)} bytes, larger than {MAX_PAYLOAD_BYTES}"
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessageError("payload", f"not UTF-8 ({exc.reason} at {exc.start})") from None
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError("payload", f"not JSON ({exc.msg} at {exc.pos})") from None
    except RecursionError:
        raise InvalidMessageError("payload", "JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise InvalidMessageError("payload", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def parse_message(topic: str, payload: bytes, received_at: float) -> Reading:
    """Validate one MQTT message against contract v1 and return the reading it carries.

    ``received_at`` (UTC seconds) stamps a reading whose node clock is not set, adding the
    ``clock_gateway`` flag; it also bounds how far ahead a node's clock may run.
    """
    where = _parse_topic(topic)
    kind = where.kind
    obj = decode_payload(payload)
    if "v" not in obj:
        raise InvalidMessageError("v", "missing schema version")
    # Exactly the integer 1: not true, not 1.0.
    if type(obj["v"]) is not int or obj["v"] != SCHEMA_VERSION:
        raise InvalidMessageError("v", f"unsupported schema version {obj['v']!r}")
    allowed = _ALLOWED_KEYS[kind]
    if not allowed.issuperset(obj):
        key = next(key for key in obj if key not in allowed)
        raise InvalidMessageError(key, f"unknown field for {kind.value}")
    for key in REQUIRED[kind]:
        if key not in obj:
            raise InvalidMessageError(key, "missing")

    flags = _flags(obj.get("flags", []))
    # An unset clock leaves ts out; null is not an integer and is refused like any other.
    if "ts" not in obj:
        ts = int(received_at)
        flags = (*flags, Flag.CLOCK_GATEWAY.value) if "clock_gateway" not in flags else flags
    else:
        ts = _integer("ts", obj["ts"], 0)
        if ts < EARLIEST_TS:
            raise InvalidMessageError("ts", f"{ts} is before 2020-01-01: the node clock is wrong")
        if ts > received_at + MAX_CLOCK_LEAD_S:
            raise InvalidMessageError(
                "ts", f"{ts} is {ts - int(received_at)} s ahead of the gateway clock"
            )
    seq = _integer("seq", obj["seq"], 0) if "seq" in obj else None
    fw = _text("fw", obj["fw"]) if "fw" in obj else None

    values: dict[str, float] = {}
    out_of_range = False
    for key, spec in _SPECS[kind].items():
        if key in obj:
            number = _number(key, obj[key])
            values[key] = number
            if not spec.low <= number <= spec.high:
                out_of_range = True
    if kind is Kind.NOISE and values["period"] <= 0:
        raise InvalidMessageError("period", f"{values['period']} is not a positive duration")

    text: dict[str, str] = {}
    if kind is Kind.STATUS:
        for key in STATUS_TEXT_FIELDS:
            if key in obj:
                text[key] = _text(key, obj[key])
    if "state" in text and text["state"] not in NODE_STATES:
        raise InvalidMessageError("state", f"{text['state']!r} is not one of {NODE_STATES}")

    if out_of_range and Flag.OUT_OF_RANGE.value not in flags:
        flags = (*flags, Flag.OUT_OF_RANGE.value)
    return Reading(
        node=where.node,
        kind=kind,
        ts=ts,
        seq=seq,
        fw=fw,
        flags=flags,
        values=values,
        text=text,
    )
