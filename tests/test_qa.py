"""Storage-side QA flags (REFERENCE 4.3): each rule at its threshold, readings never dropped or
changed, stuck runs flagged from their first reading, bounded buffering."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commons.contract import Flag
from ingest.qa import (
    PLANTOWER_RULES,
    SDS011_RULES,
    QaRules,
    Row,
    UnknownKindError,
    flag_node,
    flag_rows,
    reading_flags,
)

T0 = datetime(2025, 1, 6, tzinfo=UTC)


def air(i: int, spacing: float = 60.0, node: str = "node-a", **values: float) -> Row:
    row: Row = {"time": T0 + timedelta(seconds=i * spacing), "node": node, "qa": 0}
    row.update(values)
    return row


def flags(row: Row, measurement: str = "air", rules: QaRules = SDS011_RULES) -> set[str]:
    mask = reading_flags(row, measurement, rules)
    return {flag.value for flag in Flag if mask & flag.bit}


def test_humidity_above_the_sensor_range() -> None:
    assert flags(air(0, rh=70.0)) == set()
    assert flags(air(0, rh=70.1)) == {"rh_high"}
    assert flags(air(0, rh=74.0), rules=PLANTOWER_RULES) == set()
    assert flags(air(0, rh=75.5), rules=PLANTOWER_RULES) == {"rh_high"}


def test_pm2_5_above_pm10_by_more_than_the_resolution() -> None:
    assert flags(air(0, pm2_5=10.3, pm10=10.0)) == set()  # 0.3: the SDS011 resolution
    assert flags(air(0, pm2_5=10.4, pm10=10.0)) == {"pm_inconsistent"}
    assert flags(air(0, pm2_5=11.0, pm10=10.0), rules=PLANTOWER_RULES) == set()
    assert flags(air(0, pm2_5=11.5, pm10=10.0), rules=PLANTOWER_RULES) == {"pm_inconsistent"}
    assert flags(air(0, pm2_5=50.0)) == set()  # no PM10 to compare with


@pytest.mark.parametrize(
    "values",
    [{"pm2_5": -1.0}, {"pm10": 1000.5}, {"temp": 90.0}, {"rh": 101.0}, {"pm2_5": math.nan}],
)
def test_out_of_range(values: dict[str, float]) -> None:
    assert "out_of_range" in flags(air(0, **values))


def test_saturation_of_the_sds011() -> None:
    assert flags(air(0, pm10=999.9)) == {"out_of_range"}
    assert flags(air(0, pm10=999.9), rules=PLANTOWER_RULES) == set()


def test_noise_ranges() -> None:
    noise = {"time": T0, "node": "noise-1", "period": 60.0, "laeq": 141.0}
    assert flags(noise, "noise") == {"out_of_range"}
    with pytest.raises(UnknownKindError):
        reading_flags(noise, "water")


def test_values_are_never_changed_and_flags_are_added() -> None:
    rows = [air(i, pm2_5=5.0 + i, pm10=4.0, rh=80.0) for i in range(5)]
    rows[2]["qa"] = Flag.WARMUP.bit
    out = list(flag_node(rows, "air"))
    assert len(out) == len(rows)
    for before, after in zip(rows, out, strict=True):
        assert {k: v for k, v in after.items() if k != "qa"} == {
            k: v for k, v in before.items() if k != "qa"
        }
        assert after["qa"] & before["qa"] == before["qa"]
        assert after["qa"] & Flag.RH_HIGH.bit and after["qa"] & Flag.PM_INCONSISTENT.bit
    assert out[2]["qa"] & Flag.WARMUP.bit
    assert rows[0]["qa"] == 0  # the input rows are not touched


def test_a_run_of_six_hours_is_stuck_from_its_first_reading() -> None:
    rows = [air(i, pm2_5=float(i)) for i in range(1, 11)]  # changing values
    rows += [air(10 + i, pm2_5=12.0) for i in range(6 * 60 + 1)]  # 6 h of 12.0
    rows += [air(371 + i, pm2_5=3.0 + i) for i in range(5)]
    out = list(flag_node(rows, "air"))
    stuck = [bool(r["qa"] & Flag.STUCK.bit) for r in out]
    assert stuck == [False] * 10 + [True] * 361 + [False] * 5


def test_a_run_shorter_than_six_hours_is_not_stuck() -> None:
    rows = [air(i, pm2_5=12.0) for i in range(6 * 60)]  # 5 h 59 min
    rows.append(air(360, pm2_5=13.0))
    assert not any(r["qa"] & Flag.STUCK.bit for r in flag_node(rows, "air"))


def test_zero_is_not_stuck_and_each_field_has_its_own_run() -> None:
    rows = [air(i, pm2_5=0.0, pm10=7.0 + i) for i in range(8 * 60)]
    assert not any(r["qa"] & Flag.STUCK.bit for r in flag_node(rows, "air"))
    rows = [air(i, pm2_5=float(i), pm10=7.0) for i in range(8 * 60)]
    assert all(r["qa"] & Flag.STUCK.bit for r in flag_node(rows, "air"))


def test_stuck_needs_enough_readings() -> None:
    rows = [air(i, spacing=3 * 3600, pm2_5=12.0) for i in range(5)]  # 12 h, 5 readings
    assert not any(r["qa"] & Flag.STUCK.bit for r in flag_node(rows, "air"))


def test_gap_after_three_intervals_from_the_registry() -> None:
    moments = [0, 60, 120, 300, 481, 541]  # silences of 180 s (not a gap) and 181 s
    rows = [air(0, pm2_5=float(i)) for i in range(len(moments))]
    for row, offset in zip(rows, moments, strict=True):
        row["time"] = T0 + timedelta(seconds=offset)
    out = list(flag_node(rows, "air", interval=60.0))
    assert [bool(r["qa"] & Flag.GAP.bit) for r in out] == [False] * 4 + [True, False]


def test_gap_with_an_estimated_interval() -> None:
    rows = [air(i, pm2_5=float(i)) for i in range(5)] + [air(10, pm2_5=1.5)]
    out = list(flag_node(rows, "air"))
    assert [bool(r["qa"] & Flag.GAP.bit) for r in out] == [False] * 5 + [True]
    # Too few spacings to know the interval: no gap is claimed.
    out = list(flag_node([air(0, pm2_5=1.0), air(1, pm2_5=2.0), air(30, pm2_5=3.0)], "air"))
    assert not any(r["qa"] & Flag.GAP.bit for r in out)


def test_flag_rows_handles_nodes_one_after_another() -> None:
    rows = [air(i, node="node-a", rh=90.0) for i in range(3)]
    rows += [air(i, node="node-b", rh=40.0) for i in range(3)]
    out = list(flag_rows(rows, "air"))
    assert [r["node"] for r in out] == ["node-a"] * 3 + ["node-b"] * 3
    assert [bool(r["qa"] & Flag.RH_HIGH.bit) for r in out] == [True] * 3 + [False] * 3


def test_readings_wait_only_while_a_run_is_undecided() -> None:
    consumed = 0

    def readings() -> Iterator[Row]:
        nonlocal consumed
        for i in range(10_000):
            consumed += 1
            yield air(i, pm2_5=float(i % 97 + 1), pm10=200.0)

    stream = flag_node(readings(), "air")
    for released in range(1, 100):
        next(stream)
        # pm10 is constant, but it becomes stuck after 6 h; before then readings wait.
        assert consumed - released <= 6 * 60 + 1


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=4000),
            st.sampled_from([0.0, 5.0, 5.0, 5.0, 12.3]),
            st.integers(min_value=0, max_value=2**11 - 1),
        ),
        max_size=60,
    )
)
def test_nothing_is_dropped_reordered_or_altered(spec: list[tuple[int, float, int]]) -> None:
    rows: list[Row] = []
    moment = T0
    for step, value, qa in spec:
        moment += timedelta(seconds=step * 10)
        rows.append({"time": moment, "node": "n-1", "pm2_5": value, "pm10": value, "qa": qa})
    out = list(flag_node(rows, "air", rules=QaRules(stuck_seconds=3600.0, stuck_readings=3)))
    assert [r["time"] for r in out] == [r["time"] for r in rows]
    for before, after in zip(rows, out, strict=True):
        assert after["pm2_5"] == before["pm2_5"] and after["pm10"] == before["pm10"]
        assert after["qa"] & before["qa"] == before["qa"]


def test_memory_does_not_grow_with_the_length_of_the_input() -> None:
    def peak(count: int) -> int:
        rows = (
            air(i, spacing=300, pm2_5=float(i % 13 + 1), pm10=40.0 + i % 3) for i in range(count)
        )
        tracemalloc.start()
        try:
            for _ in flag_node(rows, "air"):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(36 * 288) < peak(6 * 288) * 1.2


def test_a_node_gets_the_thresholds_of_its_pm_sensor() -> None:
    from ingest.qa import SDS011_RULES, rules_for

    assert rules_for("pms5003") is PLANTOWER_RULES
    assert rules_for("sds011") is SDS011_RULES
    assert rules_for(None) is SDS011_RULES
