"""Message contract v1: the golden messages, the qa bitmask, and fuzzing of the parser."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from goldens import RECEIVED_AT, InvalidCase, ValidCase, invalid_cases, oversize, valid_cases
from hypothesis import given, settings
from hypothesis import strategies as st

from commons.contract import (
    COMMON_KEYS,
    EARLIEST_TS,
    MAX_CLOCK_LEAD_S,
    MAX_PAYLOAD_BYTES,
    MEASURED,
    STATUS_TEXT_FIELDS,
    Flag,
    InvalidMessageError,
    Kind,
    Reading,
    Topic,
    flags_from_bitmask,
    parse_message,
    qa_bitmask,
    topic_for,
)

VALID = list(valid_cases())
INVALID = list(invalid_cases())
NODE = "esp32-a1b2c3"
AIR_TOPIC = topic_for(NODE, Kind.AIR)


def _ids(cases: list[ValidCase] | list[InvalidCase]) -> list[str]:
    return [case.name for case in cases]


def _payload(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


# -- golden messages -------------------------------------------------------------------


def test_goldens_cover_enough_distinct_cases() -> None:
    assert len(VALID) >= 9
    assert len(INVALID) >= 30
    messages = [(case.topic, case.payload) for case in INVALID]
    assert len(set(messages)) == len(messages), "two invalid goldens send the same message"
    assert {case.expect["kind"] for case in VALID} == {kind.value for kind in Kind}


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_valid_golden_parses_to_its_reading(case: ValidCase) -> None:
    reading = parse_message(case.topic, case.payload, RECEIVED_AT)

    assert reading == case.reading(RECEIVED_AT)
    assert reading.qa == case.qa
    # dict equality says 12 == 12.0; InfluxDB does not, so check the types too.
    assert all(type(value) is float for value in reading.values.values())
    assert type(reading.ts) is int


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_valid_golden_parses_with_the_current_clock(case: ValidCase) -> None:
    now = time.time()
    assert parse_message(case.topic, case.payload, now) == case.reading(now)


@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
@pytest.mark.parametrize("received_at", [RECEIVED_AT, None], ids=["golden-clock", "now"])
def test_invalid_golden_is_rejected_naming_its_field(
    case: InvalidCase, received_at: float | None
) -> None:
    clock = time.time() if received_at is None else received_at
    with pytest.raises(InvalidMessageError) as caught:
        parse_message(case.topic, case.payload, clock)

    assert caught.value.field == case.field
    assert case.reason in caught.value.reason
    assert str(caught.value) == f"{case.field}: {caught.value.reason}"


def test_unknown_flag_is_kept_and_counted_as_other() -> None:
    case = next(case for case in VALID if case.name == "air_unknown_flag")
    reading = parse_message(case.topic, case.payload, RECEIVED_AT)

    assert "fan_degraded" in reading.flags
    assert reading.qa == Flag.OTHER.bit | Flag.WARMUP.bit


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_topic_round_trips(case: ValidCase) -> None:
    assert str(Topic.parse(case.topic)) == case.topic


# -- limits and edges that depend on the receive time or on generated sizes ---------------


def test_payload_at_the_size_limit_is_accepted_and_one_byte_more_is_not() -> None:
    body = _payload({"v": 1, "ts": EARLIEST_TS, "seq": 1, "fw": "1.2.0", "pm2_5": 3.0})
    at_limit = body + b" " * (MAX_PAYLOAD_BYTES - len(body))
    assert len(at_limit) == MAX_PAYLOAD_BYTES

    assert parse_message(AIR_TOPIC, at_limit, RECEIVED_AT).values == {"pm2_5": 3.0}
    with pytest.raises(InvalidMessageError) as caught:
        parse_message(AIR_TOPIC, oversize(body), RECEIVED_AT)
    assert caught.value.field == "payload"


def test_deeply_nested_json_is_rejected() -> None:
    depth = (MAX_PAYLOAD_BYTES - 100) // 2
    payload = b'{"v": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(payload) <= MAX_PAYLOAD_BYTES

    with pytest.raises(InvalidMessageError) as caught:
        parse_message(AIR_TOPIC, payload, RECEIVED_AT)
    # Either the parser's depth guard or, if it copes, the unknown field.
    assert caught.value.field in {"payload", "x"}


def test_node_clock_may_lead_the_gateway_by_the_allowed_margin_only() -> None:
    base = {"v": 1, "seq": 1, "fw": "1.2.0"}
    lead = int(RECEIVED_AT) + MAX_CLOCK_LEAD_S

    reading = parse_message(AIR_TOPIC, _payload({**base, "ts": lead}), RECEIVED_AT)
    assert reading.ts == lead
    assert Flag.CLOCK_GATEWAY.value not in reading.flags
    with pytest.raises(InvalidMessageError) as caught:
        parse_message(AIR_TOPIC, _payload({**base, "ts": lead + 1}), RECEIVED_AT)
    assert caught.value.field == "ts"


def test_gateway_stamp_is_whole_seconds() -> None:
    payload = _payload({"v": 1, "seq": 1, "fw": "1.2.0"})
    reading = parse_message(AIR_TOPIC, payload, RECEIVED_AT + 0.999)
    assert reading.ts == int(RECEIVED_AT)
    assert reading.flags == (Flag.CLOCK_GATEWAY.value,)


def test_node_sent_clock_gateway_flag_is_not_doubled() -> None:
    payload = _payload({"v": 1, "seq": 1, "fw": "1.2.0", "flags": ["clock_gateway"]})
    assert parse_message(AIR_TOPIC, payload, RECEIVED_AT).flags == ("clock_gateway",)


# -- qa bitmask ----------------------------------------------------------------------------

# Stored in InfluxDB: a flag's bit never moves (append only).
PINNED_BITS = {
    "warmup": 1,
    "rh_high": 2,
    "sensor_missing": 4,
    "clip": 8,
    "below_floor": 16,
    "out_of_range": 32,
    "stuck": 64,
    "clock_gateway": 128,
    "pm_inconsistent": 256,
    "gap": 512,
    "other": 1024,
}


def test_flag_bits_never_move() -> None:
    assert {flag.value: flag.bit for flag in Flag if flag.value in PINNED_BITS} == PINNED_BITS


def test_every_bitmask_round_trips() -> None:
    for mask in range(1 << len(Flag)):
        assert qa_bitmask(flags_from_bitmask(mask)) == mask


@given(st.lists(st.sampled_from([flag.value for flag in Flag]) | st.from_regex(r"[a-z]{1,8}")))
def test_flags_round_trip_through_the_bitmask(flags: list[str]) -> None:
    known = {flag.value for flag in Flag}
    expected = {name if name in known else Flag.OTHER.value for name in flags}

    back = flags_from_bitmask(qa_bitmask(tuple(flags)))
    assert set(back) == expected
    assert list(back) == [flag.value for flag in Flag if flag.value in expected]


def test_empty_flags_are_zero() -> None:
    assert qa_bitmask(()) == 0
    assert flags_from_bitmask(0) == ()


# -- Reading JSON ------------------------------------------------------------------------


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_golden_reading_round_trips_through_json(case: ValidCase) -> None:
    reading = parse_message(case.topic, case.payload, RECEIVED_AT)
    assert Reading.from_json(reading.to_json()) == reading


finite = st.floats(allow_nan=False, allow_infinity=False)
readings = st.builds(
    Reading,
    node=st.from_regex(r"\A[a-z0-9-]{3,32}\Z"),
    kind=st.sampled_from(Kind),
    ts=st.integers(min_value=EARLIEST_TS, max_value=2**40),
    seq=st.none() | st.integers(min_value=0, max_value=2**63),
    fw=st.none() | st.text(min_size=1, max_size=64),
    flags=st.lists(st.from_regex(r"\A[a-z0-9_]{1,32}\Z"), max_size=16).map(tuple),
    values=st.dictionaries(st.sampled_from([s.name for f in MEASURED.values() for s in f]), finite),
    text=st.dictionaries(st.sampled_from(STATUS_TEXT_FIELDS), st.text(min_size=1, max_size=64)),
)


@given(readings)
def test_reading_round_trips_through_json(reading: Reading) -> None:
    back = Reading.from_json(reading.to_json())
    assert back == reading
    assert all(type(value) is float for value in back.values.values())


# -- fuzzing: a Reading or InvalidMessageError, never anything else -----------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.text(max_size=70)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
node_ids = st.from_regex(r"\A[a-z0-9-]{3,32}\Z")
flag_names = st.sampled_from([flag.value for flag in Flag]) | st.from_regex(r"\A[a-z0-9_]{1,32}\Z")
numbers = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.integers(min_value=2**1000, max_value=10**400)
)
DELETE = object()


def _near_valid(kind: Kind) -> st.SearchStrategy[dict[str, Any]]:
    """Messages of ``kind`` that pass the contract, then with up to two fields broken."""
    required: dict[str, st.SearchStrategy[Any]] = {"v": st.just(1)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "ts": st.integers(min_value=EARLIEST_TS, max_value=int(RECEIVED_AT)),
        "flags": st.lists(flag_names, max_size=16),
        **{spec.name: numbers for spec in MEASURED[kind]},
    }
    if kind is Kind.STATUS:
        required["state"] = st.sampled_from(["online", "offline"])
        optional.update(
            seq=st.integers(min_value=0),
            fw=st.text(min_size=1, max_size=64),
            reset_cause=st.text(min_size=1, max_size=64),
        )
    else:
        required.update(seq=st.integers(min_value=0), fw=st.text(min_size=1, max_size=64))
    if kind is Kind.NOISE:
        required["period"] = optional.pop("period")
    keys = sorted({*required, *optional, *COMMON_KEYS, *STATUS_TEXT_FIELDS}) + [
        spec.name for specs in MEASURED.values() for spec in specs
    ]
    breakage = st.lists(
        st.tuples(st.sampled_from(keys) | st.text(max_size=10), json_values | st.just(DELETE)),
        max_size=2,
    )

    def broken(pair: tuple[dict[str, Any], list[tuple[str, Any]]]) -> dict[str, Any]:
        message, changes = pair
        for key, value in changes:
            if value is DELETE:
                message.pop(key, None)
            else:
                message[key] = value
        return message

    body = st.fixed_dictionaries(required, optional=optional)
    return st.tuples(body, breakage).map(broken)


def _topic_and_message(kind: Kind) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.tuples(st.builds(topic_for, node_ids, st.just(kind)), _near_valid(kind))


topics = (
    st.sampled_from([topic_for(NODE, kind) for kind in Kind])
    | st.builds(topic_for, node_ids, st.sampled_from(Kind))
    | st.text(max_size=60)
)
arbitrary_messages = st.tuples(
    topics, st.dictionaries(st.text(max_size=10), json_values, max_size=8)
)
messages = st.sampled_from(Kind).flatmap(_topic_and_message) | arbitrary_messages
clocks = st.just(RECEIVED_AT) | st.floats(min_value=EARLIEST_TS, max_value=4.1e9)


def _check_outcome(topic: str, payload: bytes, received_at: float) -> None:
    try:
        reading = parse_message(topic, payload, received_at)
    except InvalidMessageError as exc:
        # An unknown key is named as it came, even the empty string.
        assert isinstance(exc.field, str)
        assert exc.reason
        return
    where = Topic.parse(topic)
    assert (reading.node, reading.kind) == (where.node, where.kind)
    assert type(reading.ts) is int
    assert reading.ts >= EARLIEST_TS or Flag.CLOCK_GATEWAY.value in reading.flags
    assert reading.ts <= received_at + MAX_CLOCK_LEAD_S
    specs = {spec.name: spec for spec in MEASURED[reading.kind]}
    for key, value in reading.values.items():
        assert type(value) is float
        assert math.isfinite(value)
        if not specs[key].low <= value <= specs[key].high:
            assert Flag.OUT_OF_RANGE.value in reading.flags
    assert len(set(reading.flags)) == len(reading.flags)
    assert Reading.from_json(reading.to_json()) == reading


@settings(max_examples=300, deadline=None)
@given(topic=topics, payload=st.binary(max_size=MAX_PAYLOAD_BYTES + 10), received_at=clocks)
def test_arbitrary_bytes_give_a_reading_or_an_invalid_message(
    topic: str, payload: bytes, received_at: float
) -> None:
    _check_outcome(topic, payload, received_at)


@settings(max_examples=500, deadline=None)
@given(topic_and_message=messages, received_at=clocks)
def test_arbitrary_json_objects_give_a_reading_or_an_invalid_message(
    topic_and_message: tuple[str, dict[str, Any]], received_at: float
) -> None:
    topic, message = topic_and_message
    _check_outcome(topic, json.dumps(message).encode(), received_at)
