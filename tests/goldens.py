"""The golden messages of contract v1, for every test that checks one side of the contract.

``tests/golden/valid/<name>.json`` hold messages that must be accepted, with the reading they
carry; ``tests/golden/invalid/<name>.json`` hold messages that must be rejected, with the field
the rejection names. The gateway is tested against them now and the firmware's output later,
so both sides agree on the same bytes.

A valid case::

    {"description": "...", "topic": "commons/v1/<node>/<kind>", "payload": {...},
     "expect": {"node", "kind", "ts", "seq", "fw", "flags", "qa", "values", "text"}}

``expect.ts`` is ``"received"`` where the node's clock is unset and the gateway stamps the
receive time. An invalid case::

    {"description": "...", "topic": "...", "payload": <JSON value> | "<raw text>",
     "field": "<InvalidMessageError.field>", "reason_contains": "<part of its reason>"}

A string ``payload`` is sent as its UTF-8 bytes, unencoded (for broken JSON and non-finite
literals); ``payload_hex`` replaces ``payload`` for bytes that are not UTF-8; ``"oversize":
true`` pads the payload with spaces to one byte over the contract's size limit.

Every case holds for any receive time from :data:`RECEIVED_AT` up to the year 2099, so a test
may parse them with its own clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commons.contract import MAX_PAYLOAD_BYTES, Kind, Reading

GOLDEN_DIR = Path(__file__).parent / "golden"
VALID_DIR = GOLDEN_DIR / "valid"
INVALID_DIR = GOLDEN_DIR / "invalid"

# The gateway clock the goldens were written against: 2025-06-15T15:06:40Z.
RECEIVED_AT = 1_750_000_000.0
# Marks an expected timestamp that the gateway stamps from its receive time.
RECEIVED = "received"

_VALID_KEYS = {"description", "topic", "payload", "expect"}
_EXPECT_KEYS = {"node", "kind", "ts", "seq", "fw", "flags", "qa", "values", "text"}
_INVALID_KEYS = {
    "description",
    "topic",
    "payload",
    "payload_hex",
    "oversize",
    "field",
    "reason_contains",
}


class GoldenFormatError(Exception):
    """A golden file that does not follow the layout described in this module."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class ValidCase:
    """A message that must be accepted, and the reading it must give."""

    name: str
    description: str
    topic: str
    payload: bytes
    expect: dict[str, Any]

    @property
    def gateway_stamped(self) -> bool:
        """Whether the node's clock was unset, so the reading's ``ts`` is the receive time."""
        return bool(self.expect["ts"] == RECEIVED)

    @property
    def qa(self) -> int:
        """The expected ``qa`` bitmask."""
        return int(self.expect["qa"])

    def reading(self, received_at: float = RECEIVED_AT) -> Reading:
        """The exact reading expected when the message is received at ``received_at``."""
        ts = int(received_at) if self.gateway_stamped else int(self.expect["ts"])
        return Reading(
            node=self.expect["node"],
            kind=Kind(self.expect["kind"]),
            ts=ts,
            seq=self.expect["seq"],
            fw=self.expect["fw"],
            flags=tuple(self.expect["flags"]),
            values={key: float(value) for key, value in self.expect["values"].items()},
            text=dict(self.expect["text"]),
        )


@dataclass(frozen=True)
class InvalidCase:
    """A message that must be rejected, naming ``field`` with a reason containing ``reason``."""

    name: str
    description: str
    topic: str
    payload: bytes
    field: str
    reason: str


def _load(path: Path, allowed: set[str]) -> dict[str, Any]:
    try:
        case = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GoldenFormatError(path, f"not JSON: {exc}") from None
    if not isinstance(case, dict):
        raise GoldenFormatError(path, "expected a JSON object")
    unknown = set(case) - allowed
    if unknown:
        raise GoldenFormatError(path, f"unknown keys {sorted(unknown)}")
    if not isinstance(case.get("topic"), str):
        raise GoldenFormatError(path, "'topic' must be a string")
    return case


def encode_payload(payload: Any) -> bytes:
    """A payload as the bytes a node sends: a string verbatim, anything else as compact JSON."""
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")


def oversize(payload: bytes) -> bytes:
    """``payload`` padded with JSON whitespace to one byte over the contract's limit."""
    return payload + b" " * max(0, MAX_PAYLOAD_BYTES + 1 - len(payload))


def load_valid(path: Path) -> ValidCase:
    case = _load(path, _VALID_KEYS)
    if "payload" not in case or "expect" not in case:
        raise GoldenFormatError(path, "a valid case needs 'payload' and 'expect'")
    expect = case["expect"]
    if not isinstance(expect, dict) or set(expect) != _EXPECT_KEYS:
        raise GoldenFormatError(path, f"'expect' must have exactly {sorted(_EXPECT_KEYS)}")
    return ValidCase(
        name=path.stem,
        description=str(case.get("description", "")),
        topic=case["topic"],
        payload=encode_payload(case["payload"]),
        expect=expect,
    )


def load_invalid(path: Path) -> InvalidCase:
    case = _load(path, _INVALID_KEYS)
    if ("payload" in case) == ("payload_hex" in case):
        raise GoldenFormatError(path, "an invalid case needs one of 'payload' or 'payload_hex'")
    if not isinstance(case.get("field"), str) or not isinstance(case.get("reason_contains"), str):
        raise GoldenFormatError(path, "'field' and 'reason_contains' must be strings")
    if "payload_hex" in case:
        payload = bytes.fromhex(case["payload_hex"])
    else:
        payload = encode_payload(case["payload"])
    if case.get("oversize", False):
        payload = oversize(payload)
    return InvalidCase(
        name=path.stem,
        description=str(case.get("description", "")),
        topic=case["topic"],
        payload=payload,
        field=case["field"],
        reason=case["reason_contains"],
    )


def valid_cases() -> Iterator[ValidCase]:
    """Every valid golden message, in name order."""
    for path in sorted(VALID_DIR.glob("*.json")):
        yield load_valid(path)


def invalid_cases() -> Iterator[InvalidCase]:
    """Every invalid golden message, in name order."""
    for path in sorted(INVALID_DIR.glob("*.json")):
        yield load_invalid(path)
