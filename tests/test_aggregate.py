"""Streaming hourly and daily means: completeness, local days, noise energy means, indicator
columns, constant memory, and a pandas reference over generated readings."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commons.contract import Flag
from ingest import indicators as ind
from ingest.aggregate import (
    NaiveTimeError,
    NodeOrderError,
    Row,
    UnsortedRowsError,
    aggregate,
    columns,
)
from ingest.means import UnknownMeasurementError

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2024, 6, 1, tzinfo=UTC)


def air(moment: datetime, node: str = "node-a", **values: float) -> Row:
    row: Row = {"time": moment, "node": node, "area": "Riverside", "qa": 0}
    row.update(values)
    return row


def every(start: datetime, seconds: float, count: int) -> list[datetime]:
    return [start + timedelta(seconds=seconds * i) for i in range(count)]


def test_columns_are_stable() -> None:
    assert columns("air", "raw", False) == [
        "time", "node", "area", "pm1", "pm2_5", "pm10", "temp", "rh", "pres", "co2",
        "seq", "fw", "qa",
    ]  # fmt: skip
    assert columns("air", "hourly", True) == [
        "time", "node", "area", "pm1", "pm2_5", "pm10", "temp", "rh", "pres", "co2",
        "n", "expected", "completeness", "valid", "qa", "nowcast_pm25", "eaqi_band",
    ]  # fmt: skip
    assert columns("air", "daily", True)[-9:] == [
        "aqi", "aqi_pm25", "aqi_pm10", "aqi_category", "eaqi_band",
        "who_pm25_exceeded", "who_pm10_exceeded", "eu2030_pm25_exceeded", "eu2030_pm10_exceeded",
    ]  # fmt: skip
    assert columns("noise", "daily", True) == [
        "time", "node", "area", "period", "laeq", "lafmax", "lafmin",
        "la10_min", "la10_max", "la50_min", "la50_max", "la90_min", "la90_max",
        "n", "expected", "completeness", "valid", "qa", "lday", "levening", "lnight", "lden",
    ]  # fmt: skip
    assert columns("noise", "hourly", True) == columns("noise", "hourly", False)


def test_rows_carry_exactly_the_columns() -> None:
    for measurement, level in (("air", "hourly"), ("air", "daily"), ("noise", "daily")):
        rows = [air(t, pm2_5=5.0, pm10=8.0, laeq=50.0, period=60.0) for t in every(T0, 60, 5)]
        for indicators in (False, True):
            (out,) = aggregate(rows, measurement, level, PARIS, indicators=indicators)  # type: ignore[arg-type]
            assert list(out) == columns(measurement, level, indicators)  # type: ignore[arg-type]


def test_hourly_completeness_against_the_registry_interval() -> None:
    complete = [air(t, pm2_5=10.0) for t in every(T0, 60, 45)]  # 45 of 60: exactly 75 %
    short = [air(t, pm2_5=20.0) for t in every(T0 + timedelta(hours=1), 60, 44)]
    out = list(aggregate(complete + short, "air", "hourly", PARIS, interval=lambda node: 60.0))
    assert [r["time"] for r in out] == [T0, T0 + timedelta(hours=1)]
    assert out[0]["time"].tzinfo is not None and out[0]["time"].utcoffset() == timedelta(0)
    assert (out[0]["n"], out[0]["expected"], out[0]["completeness"], out[0]["valid"]) == (
        45,
        60.0,
        0.75,
        True,
    )
    # Incomplete: kept and marked, with its mean.
    assert out[1]["valid"] is False
    assert out[1]["completeness"] == pytest.approx(44 / 60)
    assert out[1]["pm2_5"] == 20.0


def test_interval_from_the_median_spacing() -> None:
    moments = every(T0, 120, 30) + every(T0 + timedelta(hours=2), 120, 10)
    out = list(aggregate([air(t, pm2_5=1.0) for t in moments], "air", "hourly", PARIS))
    assert [r["expected"] for r in out] == [30.0, 30.0]
    assert [r["valid"] for r in out] == [True, False]


def test_unknown_interval_is_never_valid() -> None:
    (out,) = aggregate([air(T0, pm2_5=1.0)], "air", "hourly", PARIS)
    assert (out["n"], out["expected"], out["completeness"], out["valid"]) == (1, None, None, False)


def test_qa_is_the_or_of_the_readings_and_area_is_kept() -> None:
    rows = [air(t, pm2_5=1.0) for t in every(T0, 60, 60)]
    rows[3]["qa"] = Flag.RH_HIGH.bit
    rows[7]["qa"] = Flag.WARMUP.bit | Flag.STUCK.bit
    (out,) = aggregate(rows, "air", "hourly", PARIS, interval=lambda node: 60.0)
    assert out["qa"] == Flag.RH_HIGH.bit | Flag.WARMUP.bit | Flag.STUCK.bit
    assert (out["node"], out["area"]) == ("node-a", "Riverside")


def test_missing_fields_give_none_and_do_not_count() -> None:
    rows = [air(t, pm2_5=2.0) for t in every(T0, 60, 60)]
    rows[0]["pm10"] = 9.0
    (out,) = aggregate(rows, "air", "hourly", PARIS, interval=lambda node: 60.0)
    assert out["pm10"] == 9.0 and out["pm1"] is None and out["pm2_5"] == 2.0


@pytest.mark.parametrize(
    ("day", "hours"), [(date(2024, 3, 31), 23), (date(2024, 10, 27), 25), (date(2024, 6, 1), 24)]
)
def test_daily_rows_follow_local_days(day: date, hours: int) -> None:
    start, _ = ind.day_bounds(day, PARIS)
    rows = [air(t, pm2_5=3.0) for t in every(start, 60, hours * 60)]
    (out,) = aggregate(rows, "air", "daily", PARIS, interval=lambda node: 60.0)
    assert out["time"] == datetime(day.year, day.month, day.day, tzinfo=PARIS)
    assert out["time"].tzinfo == PARIS
    assert (out["n"], out["expected"], out["completeness"], out["valid"]) == (
        hours * 60,
        hours * 60.0,
        1.0,
        True,
    )


def test_noise_fields_combine_by_energy_and_extremes() -> None:
    rows = [
        {"time": T0, "node": "noise-1", "area": None, "qa": 0, "period": 60.0, "laeq": 60.0,
         "lafmax": 75.0, "lafmin": 40.0, "la10": 64.0, "la50": 58.0, "la90": 45.0},
        {"time": T0 + timedelta(minutes=1), "node": "noise-1", "area": None, "qa": 0,
         "period": 180.0, "laeq": 70.0, "lafmax": 80.0, "lafmin": 50.0, "la10": 72.0,
         "la50": 69.0, "la90": 55.0},
    ]  # fmt: skip
    (out,) = aggregate(rows, "noise", "hourly", PARIS, interval=lambda node: 60.0)
    assert out["laeq"] == pytest.approx(10 * math.log10((60 * 1e6 + 180 * 1e7) / 240))
    assert (out["lafmax"], out["lafmin"], out["period"]) == (80.0, 40.0, 240.0)
    assert (out["la50_min"], out["la50_max"]) == (58.0, 69.0)
    assert (out["la10_min"], out["la10_max"], out["la90_min"], out["la90_max"]) == (
        64.0,
        72.0,
        45.0,
        55.0,
    )


def _noise_hours(day: date, level: dict[str, float]) -> list[Row]:
    start, end = ind.day_bounds(day, PARIS)
    rows = []
    moment = start
    while moment < end:
        period = ind.END_DEFAULT.period_of(moment.astimezone(PARIS).hour)
        value = level[period] + (moment.astimezone(PARIS).hour % 3)
        rows.append({"time": moment, "node": "noise-1", "area": "Old Town", "qa": 0,
                     "period": 3600.0, "laeq": value})  # fmt: skip
        moment += timedelta(hours=1)
    return rows


@pytest.mark.parametrize("day", [date(2024, 3, 31), date(2024, 10, 27), date(2024, 6, 1)])
def test_daily_noise_indicators_match_the_hourly_ones(day: date) -> None:
    rows = _noise_hours(day, {"day": 62.0, "evening": 57.0, "night": 48.0})
    (out,) = aggregate(rows, "noise", "daily", PARIS, indicators=True, interval=lambda node: 3600.0)
    (reference,) = ind.noise_day_indicators([(r["time"], r["laeq"]) for r in rows], PARIS)
    assert out["lday"] == pytest.approx(reference.lday)
    assert out["levening"] == pytest.approx(reference.levening)
    assert out["lnight"] == pytest.approx(reference.lnight)
    assert out["lden"] == pytest.approx(reference.lden)
    assert out["laeq"] == pytest.approx(ind.energy_mean(r["laeq"] for r in rows))


def test_a_noise_period_without_enough_readings_has_no_level() -> None:
    rows = _noise_hours(date(2024, 6, 1), {"day": 62.0, "evening": 57.0, "night": 48.0})
    evening = [r for r in rows if 19 <= r["time"].astimezone(PARIS).hour < 23]
    rows = [r for r in rows if r not in evening[:2]]  # 2 of 4 evening hours
    (out,) = aggregate(rows, "noise", "daily", PARIS, indicators=True, interval=lambda node: 3600.0)
    assert out["levening"] is None and out["lden"] is None
    assert out["lday"] is not None and out["lnight"] is not None
    assert out["valid"] is True  # 22 of 24 hours


def test_daily_air_indicators() -> None:
    start, _ = ind.day_bounds(date(2024, 6, 1), PARIS)
    rows = [air(t, pm2_5=35.5, pm10=50.0) for t in every(start, 600, 144)]
    rows += [air(t, pm2_5=90.0, pm10=90.0) for t in every(start + timedelta(days=1), 600, 10)]
    good, short = aggregate(rows, "air", "daily", PARIS, indicators=True)
    assert good["aqi_pm25"] == 101 and good["aqi_pm10"] == ind.aqi_pm10(50.0) == 46
    assert good["aqi"] == 101 and good["aqi_category"] == "Unhealthy for Sensitive Groups"
    assert good["eaqi_band"] == "Moderate"  # PM2.5 35.5 and PM10 50 are both Moderate
    assert good["who_pm25_exceeded"] is True and good["who_pm10_exceeded"] is True
    assert good["eu2030_pm25_exceeded"] is True and good["eu2030_pm10_exceeded"] is True
    assert short["valid"] is False
    assert all(short[k] is None for k in columns("air", "daily", True)[-9:])


def test_hourly_nowcast_over_the_last_twelve_hours() -> None:
    means = [8.0, 12.0, 30.0, 4.0, 9.5, 40.0, 22.0, 18.0, 5.0, 7.0, 60.0, 3.0, 15.0, 11.0]
    start = datetime(2024, 6, 1, 18, tzinfo=UTC)  # crosses midnight UTC: two blocks
    rows = []
    for hour, mean in enumerate(means):
        if hour == 9:
            continue  # an hour without readings
        moments = every(start + timedelta(hours=hour), 60, 60 if hour != 4 else 20)
        rows += [air(t, pm2_5=mean) for t in moments]  # hour 4 is incomplete
    out = list(aggregate(rows, "air", "hourly", PARIS, indicators=True, interval=lambda n: 60.0))
    valid = {r["time"]: r["pm2_5"] for r in out if r["valid"]}
    for row in out:
        window = [valid.get(row["time"] - timedelta(hours=i)) for i in range(12)]
        value = ind.nowcast(window)
        expected = None if value is None else float(ind.truncate("pm2_5", value))
        assert row["nowcast_pm25"] == expected
    assert out[0]["nowcast_pm25"] is None  # one hour of history only
    assert out[-1]["nowcast_pm25"] is not None


def test_a_second_node_starts_its_own_history() -> None:
    rows = [air(t, "node-a", pm2_5=50.0) for t in every(T0, 60, 180)]
    rows += [air(t, "node-b", pm2_5=5.0) for t in every(T0 + timedelta(hours=3), 60, 60)]
    out = list(aggregate(rows, "air", "hourly", PARIS, indicators=True, interval=lambda n: 60.0))
    assert [r["node"] for r in out] == ["node-a"] * 3 + ["node-b"]
    assert out[-1]["nowcast_pm25"] is None


def test_input_errors_name_the_problem() -> None:
    with pytest.raises(UnsortedRowsError) as caught:
        list(aggregate([air(T0 + timedelta(hours=1)), air(T0)], "air", "hourly", PARIS))
    assert caught.value.node == "node-a"
    with pytest.raises(NodeOrderError):
        rows = [air(T0, "node-a"), air(T0, "node-b"), air(T0 + timedelta(hours=1), "node-a")]
        list(aggregate(rows, "air", "hourly", PARIS))
    with pytest.raises(NaiveTimeError):
        list(aggregate([air(datetime(2024, 6, 1))], "air", "hourly", PARIS))
    with pytest.raises(UnknownMeasurementError):
        list(aggregate([], "water", "hourly", PARIS))
    with pytest.raises(UnknownMeasurementError):
        columns("water", "raw", False)


def test_streams_a_node_day_at_a_time() -> None:
    consumed = 0

    def readings() -> Iterator[Row]:
        nonlocal consumed
        for moment in every(T0, 60, 60 * 24 * 30):
            consumed += 1
            yield air(moment, pm2_5=1.0)

    days = aggregate(readings(), "air", "daily", ZoneInfo("UTC"))
    first = next(days)
    assert first["time"] == T0
    assert consumed == 60 * 24 + 1  # the first reading of the next day closes the day
    hours = aggregate(readings(), "air", "hourly", ZoneInfo("UTC"))
    consumed = 0
    next(hours)
    assert consumed <= 60 * 24 + 1


@settings(max_examples=20, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Kolkata"]),
    st.sampled_from(["hourly", "daily"]),
)
def test_air_means_match_a_pandas_reference(seed: int, zone: str, level: str) -> None:
    rng = np.random.default_rng(seed)
    start = datetime(2024, 3, 9, tzinfo=UTC) + timedelta(days=int(rng.integers(0, 240)))
    rows: list[Row] = []
    intervals = {"node-a": 60.0, "node-b": 300.0}
    for node, interval in intervals.items():
        count = int(3 * 86400 / interval)
        moments = every(start, interval, count)
        keep = rng.random(count) > rng.uniform(0, 0.5)
        for moment, kept in zip(moments, keep, strict=True):
            if kept:
                pm25, pm10 = float(rng.gamma(2, 8)), float(rng.gamma(3, 8))
                rows.append(air(moment, node, pm2_5=pm25, pm10=pm10, rh=float(rng.uniform(20, 99))))
                rows[-1]["qa"] = int(rng.integers(0, 4))
    out = list(
        aggregate(rows, "air", level, ZoneInfo(zone), interval=intervals.get)  # type: ignore[arg-type]
    )

    frame = pd.DataFrame(rows)
    times = pd.to_datetime(frame["time"], utc=True)
    if level == "hourly":
        frame["bucket"] = times.dt.floor("h")
    else:
        frame["bucket"] = times.dt.tz_convert(zone).dt.date
    grouped = frame.groupby(["node", "bucket"])
    reference = grouped.agg(
        pm2_5=("pm2_5", "mean"), pm10=("pm10", "mean"), rh=("rh", "mean"), n=("pm2_5", "size")
    )
    qa = grouped["qa"].agg(lambda s: int(np.bitwise_or.reduce(s.to_numpy())))
    assert len(out) == len(reference)
    for row in out:
        key = row["time"] if level == "hourly" else row["time"].date()
        expected = reference.loc[(row["node"], pd.Timestamp(key) if level == "hourly" else key)]
        assert row["n"] == expected["n"]
        for name in ("pm2_5", "pm10", "rh"):
            assert row[name] == pytest.approx(expected[name], rel=1e-9)
        assert row["qa"] == qa.loc[(row["node"], pd.Timestamp(key) if level == "hourly" else key)]
        if level == "hourly":
            seconds = 3600.0
        else:
            first, last = ind.day_bounds(key, ZoneInfo(zone))
            seconds = (last - first).total_seconds()
        expect = seconds / intervals[row["node"]]
        assert row["expected"] == pytest.approx(expect)
        assert row["valid"] == (row["n"] >= 0.75 * expect)
        assert row["completeness"] == pytest.approx(min(row["n"] / expect, 1.0))


def _peak_bytes(days: int, level: str) -> int:
    def readings() -> Iterator[Row]:
        for i in range(days * 288):
            moment = T0 + timedelta(minutes=5 * i)
            yield air(moment, pm2_5=float(moment.minute), pm10=30.0, rh=50.0)

    tracemalloc.start()
    try:
        for _ in aggregate(readings(), "air", level, PARIS, indicators=True):  # type: ignore[arg-type]
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("level", ["hourly", "daily"])
def test_memory_does_not_grow_with_the_length_of_the_input(level: str) -> None:
    # Past 5 days the node's spacing window (1440 readings) is full: nothing else grows.
    short, long = _peak_bytes(6, level), _peak_bytes(36, level)
    assert long < short * 1.2


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=20, max_value=120),
            st.sampled_from([1.0, 10.0, 60.0]),
            st.floats(min_value=0, max_value=30),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_noise_hour_matches_a_numpy_reference(readings: list[tuple[float, float, float]]) -> None:
    rows: list[Row] = []
    for i, (laeq, period, spread) in enumerate(readings):
        rows.append({"time": T0 + timedelta(seconds=60 * i), "node": "noise-1", "area": None,
                     "qa": 0, "period": period, "laeq": laeq, "lafmax": laeq + spread,
                     "lafmin": laeq - spread, "la10": laeq + spread / 2, "la50": laeq,
                     "la90": laeq - spread / 2})  # fmt: skip
    (out,) = aggregate(rows, "noise", "hourly", PARIS, interval=lambda node: 60.0)
    levels = np.array([r[0] for r in readings])
    weights = np.array([r[1] for r in readings])
    energy = np.sum(weights * 10 ** (levels / 10)) / np.sum(weights)
    assert out["laeq"] == pytest.approx(10 * np.log10(energy))
    assert out["period"] == pytest.approx(float(np.sum(weights)))
    assert out["lafmax"] == max(r["lafmax"] for r in rows)
    assert out["lafmin"] == min(r["lafmin"] for r in rows)
    for name in ("la10", "la50", "la90"):
        values = [r[name] for r in rows]
        assert (out[f"{name}_min"], out[f"{name}_max"]) == (min(values), max(values))
    assert out["n"] == len(rows) and out["valid"] == (len(rows) >= 45)
