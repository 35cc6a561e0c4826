"""Indicators against REFERENCE.md sections 2 and 3: band edges, truncation, NowCast weighting,
Lden, daylight-saving days, and independent computations over generated data."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import indicators as ind

PARIS = ZoneInfo("Europe/Paris")


# --- US EPA AQI (REFERENCE 3.3) ---


@pytest.mark.parametrize(
    ("concentration", "expected"),
    [
        (0.0, 0),
        (9.0, 50),
        (9.09, 50),  # truncated to 9.0, not rounded to 9.1
        (9.1, 51),
        (12.0, 56),  # (100-51)/(35.4-9.1)·(12.0-9.1)+51 = 56.40
        (35.4, 100),
        (35.49, 100),
        (35.5, 101),
        (55.4, 150),
        (55.5, 151),
        (125.4, 200),
        (125.5, 201),
        (225.4, 300),
        (225.5, 301),
        (325.4, 500),
        (325.5, 500),  # above the top breakpoint: capped
        (1000.0, 500),
    ],
)
def test_aqi_pm25_band_edges(concentration: float, expected: int) -> None:
    assert ind.aqi_pm25(concentration) == expected


@pytest.mark.parametrize(
    ("concentration", "expected"),
    [
        (0.0, 0),
        (54.0, 50),
        (54.9, 50),  # truncated to 54
        (55.0, 51),
        (154.0, 100),
        (154.99, 100),
        (155.0, 101),
        (254.0, 150),
        (255.0, 151),
        (354.0, 200),
        (355.0, 201),
        (424.0, 300),
        (425.0, 301),
        (604.0, 500),
        (700.0, 500),
    ],
)
def test_aqi_pm10_band_edges(concentration: float, expected: int) -> None:
    assert ind.aqi_pm10(concentration) == expected


def test_truncation_uses_the_shortest_decimal_form() -> None:
    # 0.1·354 is 35.400000000000006 in binary floating point: still 35.4.
    assert ind.truncate("pm2_5", 0.1 * 354) == Decimal("35.4")
    assert ind.aqi_pm25(0.1 * 354) == 100
    assert ind.truncate("pm10", 54.99999) == Decimal("54")


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_aqi_refuses_impossible_concentrations(bad: float) -> None:
    with pytest.raises(ind.ConcentrationError) as caught:
        ind.aqi_pm25(bad)
    assert caught.value.pollutant == "pm2_5"


def test_unknown_pollutant_is_named() -> None:
    with pytest.raises(ind.UnknownPollutantError, match="'o3'"):
        ind.aqi("o3", 10.0)


@pytest.mark.parametrize(
    ("index", "name"),
    [
        (0, "Good"),
        (50, "Good"),
        (51, "Moderate"),
        (100, "Moderate"),
        (101, "Unhealthy for Sensitive Groups"),
        (150, "Unhealthy for Sensitive Groups"),
        (151, "Unhealthy"),
        (200, "Unhealthy"),
        (201, "Very Unhealthy"),
        (300, "Very Unhealthy"),
        (301, "Hazardous"),
        (500, "Hazardous"),
    ],
)
def test_aqi_category(index: int, name: str) -> None:
    assert ind.aqi_category(index).name == name


# The 2024 table of REFERENCE 3.3, in tenths of µg/m³ (PM2.5) and µg/m³ (PM10), written out
# again for an independent implementation in exact integer arithmetic.
_REF_INDEX = [(0, 50), (51, 100), (101, 150), (151, 200), (201, 300), (301, 500)]
_REF_PM25_TENTHS = [(0, 90), (91, 354), (355, 554), (555, 1254), (1255, 2254), (2255, 3254)]
_REF_PM10 = [(0, 54), (55, 154), (155, 254), (255, 354), (355, 424), (425, 604)]


def _reference_aqi(units: int, table: list[tuple[int, int]]) -> int:
    for (lo, hi), (i_lo, i_hi) in zip(table, _REF_INDEX, strict=True):
        if units <= hi:
            exact = Fraction(i_hi - i_lo, hi - lo) * (units - lo) + i_lo
            return math.floor(exact + Fraction(1, 2))
    return 500


@given(st.integers(min_value=0, max_value=4000))
def test_aqi_pm25_matches_an_integer_reference(tenths: int) -> None:
    concentration = tenths / 10 + 0.04  # anything below the next tenth truncates to this one
    assert ind.aqi_pm25(concentration) == _reference_aqi(tenths, _REF_PM25_TENTHS)


@given(st.integers(min_value=0, max_value=700), st.floats(min_value=0, max_value=0.99))
def test_aqi_pm10_matches_an_integer_reference(whole: int, fraction: float) -> None:
    assert ind.aqi_pm10(whole + fraction) == _reference_aqi(whole, _REF_PM10)


@given(
    st.floats(min_value=0, max_value=400, allow_nan=False),
    st.floats(min_value=0, max_value=400, allow_nan=False),
)
def test_aqi_never_decreases_with_concentration(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert ind.aqi_pm25(low) <= ind.aqi_pm25(high)
    assert ind.aqi_pm10(low) <= ind.aqi_pm10(high)


# --- NowCast (REFERENCE 3.4) ---


def test_nowcast_constant_series_is_that_value() -> None:
    assert ind.nowcast([10.0] * 12) == pytest.approx(10.0)


def test_nowcast_weight_floor_of_one_half() -> None:
    # max 90, min 10: w* = 1 - 80/90 = 0.11, below the floor, so w = 0.5.
    hours = [13.0, 16.0, 10.0, 21.0, 74.0, 64.0, 53.0, 82.0, 90.0, 75.0, 80.0, 50.0]
    numerator = sum(0.5**i * c for i, c in enumerate(hours))  # 34.8193359375
    denominator = sum(0.5**i for i in range(12))  # 1.99951171875
    assert ind.nowcast(hours) == pytest.approx(numerator / denominator)
    assert ind.nowcast(hours) == pytest.approx(17.4139194)
    assert ind.truncate("pm2_5", 17.4139194) == Decimal("17.4")


def test_nowcast_weight_above_the_floor() -> None:
    # max 12, min 8: w = 1 - 4/12 = 2/3.
    hours = [12.0, 8.0, 10.0, 9.0, 11.0, 12.0, 8.0, 10.0, 9.0, 11.0, 12.0, 8.0]
    w = 2 / 3
    expected = sum(w**i * c for i, c in enumerate(hours)) / sum(w**i for i in range(12))
    assert ind.nowcast(hours) == pytest.approx(expected)


def test_nowcast_missing_hours_are_left_out_of_both_sums() -> None:
    hours: list[float | None] = [20.0, 10.0, None, None, 30.0]
    # max 30, min 10: w = max(1 - 20/30, 0.5) = 0.5; hours 0, 1 and 4 count.
    expected = (20 + 0.5 * 10 + 0.5**4 * 30) / (1 + 0.5 + 0.5**4)
    assert ind.nowcast(hours) == pytest.approx(expected)


@pytest.mark.parametrize(
    "hours",
    [
        [None, None, 10.0, 10.0, 10.0],
        [10.0, None, None, 10.0, 10.0],
        [None, 10.0, None, 10.0],
        [10.0],
        [],
    ],
)
def test_nowcast_needs_two_of_the_three_most_recent_hours(hours: list[float | None]) -> None:
    assert ind.nowcast(hours) is None


def test_nowcast_two_of_three_is_enough() -> None:
    assert ind.nowcast([None, 10.0, 10.0]) == pytest.approx(10.0)
    assert ind.nowcast([10.0, None, 10.0]) == pytest.approx(10.0)


def test_nowcast_of_clean_air_is_zero() -> None:
    assert ind.nowcast([0.0] * 12) == 0.0


def test_nowcast_uses_only_twelve_hours() -> None:
    assert ind.nowcast([10.0] * 12 + [1000.0]) == pytest.approx(10.0)


def _reference_nowcast(hours: list[float | None]) -> float | None:
    values = np.array([np.nan if c is None else c for c in hours[:12]], dtype=float)
    if np.count_nonzero(~np.isnan(values[:3])) < 2:
        return None
    present = ~np.isnan(values)
    highest, lowest = np.nanmax(values), np.nanmin(values)
    if highest == 0:
        return 0.0
    w = max(1 - (highest - lowest) / highest, 0.5)
    powers = w ** np.arange(len(values))
    return float(np.sum(powers[present] * values[present]) / np.sum(powers[present]))


@given(
    st.lists(
        st.one_of(st.none(), st.floats(min_value=0, max_value=500, allow_nan=False)),
        min_size=0,
        max_size=14,
    )
)
def test_nowcast_matches_a_numpy_reference(hours: list[float | None]) -> None:
    expected = _reference_nowcast(hours)
    got = ind.nowcast(hours)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


# --- Revised European AQI (REFERENCE 3.5) ---


@pytest.mark.parametrize(
    ("pollutant", "value", "band"),
    [
        ("pm2_5", 0.0, "Good"),
        ("pm2_5", 5.0, "Good"),
        ("pm2_5", 5.1, "Fair"),
        ("pm2_5", 15.0, "Fair"),
        ("pm2_5", 15.1, "Moderate"),
        ("pm2_5", 50.0, "Moderate"),
        ("pm2_5", 90.0, "Poor"),
        ("pm2_5", 140.0, "Very poor"),
        ("pm2_5", 140.1, "Extremely poor"),
        ("pm10", 15.0, "Good"),
        ("pm10", 15.1, "Fair"),
        ("pm10", 45.0, "Fair"),
        ("pm10", 120.0, "Moderate"),
        ("pm10", 195.0, "Poor"),
        ("pm10", 270.0, "Very poor"),
        ("pm10", 270.1, "Extremely poor"),
    ],
)
def test_eaqi_band_edges(pollutant: str, value: float, band: str) -> None:
    assert ind.eaqi_band(pollutant, value).name == band


def test_eaqi_overall_is_the_worst_band() -> None:
    fair, poor = ind.eaqi_band("pm2_5", 10.0), ind.eaqi_band("pm10", 150.0)
    assert ind.worst_band([fair, poor, None]) == poor
    assert ind.worst_band([None]) is None


# --- WHO 2021 and EU limits (REFERENCE 3.1, 3.2) ---


def test_limit_values_are_those_of_the_reference() -> None:
    assert ind.WHO_2021_PM25_24H.value == 15.0
    assert ind.WHO_2021_PM10_24H.value == 45.0
    assert ind.EU_2030_PM25_DAILY.value == 25.0
    assert ind.EU_2030_PM10_DAILY.value == 45.0
    assert (ind.EU_2008_PM10_DAILY.value, ind.EU_2008_PM10_DAILY.allowed_per_year) == (50.0, 35)
    annual = {(a.key, a.pollutant.value): a.value for a in ind.ANNUAL_LIMITS}
    assert annual[("who_pm25", "pm2_5")] == 5.0
    assert annual[("who_pm10", "pm10")] == 15.0


def test_exceedance_days_count_valid_days_above_the_limit() -> None:
    days = [
        ind.DailyMean(date(2025, 1, 1), 15.0, 45.0),  # on the limit: not above
        ind.DailyMean(date(2025, 1, 2), 15.1, 60.0),
        ind.DailyMean(date(2025, 1, 3), 80.0, 80.0, valid=False),  # incomplete: not counted
        ind.DailyMean(date(2025, 1, 4), None, 46.0),
        ind.DailyMean(date(2025, 1, 5), 30.0, None),
    ]
    found = ind.exceedance_days(days)
    assert found["who_pm25"].days == (date(2025, 1, 2), date(2025, 1, 5))
    assert found["who_pm25"].valid_days == 3
    assert found["who_pm10"].days == (date(2025, 1, 2), date(2025, 1, 4))
    assert found["eu2030_pm25"].days == (date(2025, 1, 5),)
    assert found["eu2008_pm10"].count == 1
    assert found["eu2008_pm10"].over_allowance is False
    assert found["who_pm25"].over_allowance is None


# --- Noise (REFERENCE 2.1, 2.2) ---


def test_lden_penalties_make_equal_loudness_equal() -> None:
    # 55 dB by day, 50 + 5 in the evening, 45 + 10 at night: all 55 → Lden 55.
    assert ind.lden(55.0, 50.0, 45.0) == pytest.approx(55.0)
    assert ind.lden(70.0, 65.0, 60.0) == pytest.approx(70.0)


def test_lden_from_equal_levels() -> None:
    expected = 60 + 10 * math.log10((12 + 4 * 10**0.5 + 8 * 10) / 24)
    assert ind.lden(60.0, 60.0, 60.0) == pytest.approx(expected)
    assert ind.lden(60.0, 60.0, 60.0) == pytest.approx(66.395, abs=1e-3)


def test_lden_with_other_period_lengths() -> None:
    # Evening shortened to 3 h, night lengthened to 9 h.
    expected = 10 * math.log10((12 * 10**6 + 3 * 10**6.5 + 9 * 10**7) / 24)
    assert ind.lden(60.0, 60.0, 60.0, hours=(12.0, 3.0, 9.0)) == pytest.approx(expected)
    assert ind.NoisePeriods(7, 19, 22).hours == (12.0, 3.0, 9.0)


def test_energy_mean() -> None:
    assert ind.energy_mean([60.0, 60.0]) == pytest.approx(60.0)
    assert ind.energy_mean([60.0, 70.0]) == pytest.approx(10 * math.log10((1e6 + 1e7) / 2))
    assert ind.energy_mean([60.0, 70.0], weights=[3, 1]) == pytest.approx(
        10 * math.log10((3e6 + 1e7) / 4)
    )
    assert ind.energy_mean([1000.0, 1000.0]) == pytest.approx(1000.0)  # no overflow
    with pytest.raises(ind.LevelError):
        ind.energy_mean([math.nan])


def test_noise_periods_are_checked() -> None:
    assert ind.END_DEFAULT.hours == (12.0, 4.0, 8.0)
    with pytest.raises(ind.PeriodsError):
        ind.NoisePeriods(19, 7, 23)
    with pytest.raises(ind.PeriodsError):
        ind.NoisePeriods(7, 7, 23)


def test_who_2018_road_traffic_values() -> None:
    assert (ind.WHO_2018_ROAD_LDEN_DB, ind.WHO_2018_ROAD_LNIGHT_DB) == (53.0, 45.0)
    assert ind.compare_who_road(52.9, 45.0) == ind.NoiseComparison(False, True)
    assert ind.compare_who_road(None, 40.0) == ind.NoiseComparison(None, False)


def _hours(start: datetime, end: datetime) -> list[datetime]:
    out, moment = [], start
    while moment < end:
        out.append(moment)
        moment += timedelta(hours=1)
    return out


def _level(moment: datetime) -> float:
    """Day 60, evening 55, night 40 + the local hour (so the night's count of hours shows)."""
    local = moment.astimezone(PARIS)
    period = ind.END_DEFAULT.period_of(local.hour)
    return {"day": 60.0, "evening": 55.0}.get(period, 40.0 + local.hour % 12)


@pytest.mark.parametrize(
    ("day", "hours", "night_hours"),
    [(date(2024, 3, 31), 23, 7), (date(2024, 10, 27), 25, 9), (date(2024, 6, 1), 24, 8)],
)
def test_daylight_saving_days(day: date, hours: int, night_hours: int) -> None:
    start, end = ind.day_bounds(day, PARIS)
    assert (end - start) == timedelta(hours=hours)
    assert ind.expected_hours(day, PARIS) == {"day": 12, "evening": 4, "night": night_hours}
    series = [(moment, _level(moment)) for moment in _hours(start, end)]
    (result,) = ind.noise_day_indicators(series, PARIS)
    assert result.date == day
    assert result.hours == hours
    assert result.completeness == 1.0
    assert result.lday == pytest.approx(60.0)
    assert result.levening == pytest.approx(55.0)
    night = [level for moment, level in series if moment.astimezone(PARIS).hour in NIGHT_HOURS]
    assert len(night) == night_hours
    assert result.lnight == pytest.approx(ind.energy_mean(night))
    assert result.lden == pytest.approx(ind.lden(60.0, 55.0, ind.energy_mean(night)))


NIGHT_HOURS = {23, 0, 1, 2, 3, 4, 5, 6}


def test_a_period_needs_three_quarters_of_its_hours() -> None:
    day = date(2024, 6, 1)
    start, end = ind.day_bounds(day, PARIS)
    series = [(m, _level(m)) for m in _hours(start, end)]
    night = [m for m, _ in series if m.astimezone(PARIS).hour in NIGHT_HOURS]
    without_two = [(m, v) for m, v in series if m not in night[:2]]  # 6 of 8 = 75 %
    (kept,) = ind.noise_day_indicators(without_two, PARIS)
    assert kept.lnight is not None and kept.lden is not None
    without_three = [(m, v) for m, v in series if m not in night[:3]]  # 5 of 8
    (dropped,) = ind.noise_day_indicators(without_three, PARIS)
    assert dropped.lnight is None and dropped.lden is None
    assert dropped.lday == pytest.approx(60.0)
    assert dropped.completeness == pytest.approx(21 / 24)


def test_noise_days_need_aware_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        list(ind.noise_day_indicators([(datetime(2024, 6, 1, 12), 50.0)], PARIS))


def _periods(hours: pd.Series | pd.Index) -> np.ndarray:
    day = (hours >= 7) & (hours < 19)
    evening = (hours >= 19) & (hours < 23)
    return np.select([day, evening], ["day", "evening"], "night")


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from(["Europe/Paris", "UTC"]))
def test_noise_days_match_a_pandas_reference(seed: int, zone: str) -> None:
    tz = ZoneInfo(zone)
    rng = np.random.default_rng(seed)
    start = datetime(2024, 3, 29, tzinfo=UTC) + timedelta(days=int(rng.integers(0, 220)))
    moments = _hours(start, start + timedelta(days=4))
    keep = rng.random(len(moments)) > 0.1
    levels = rng.uniform(30, 90, len(moments))
    series = [(m, float(v)) for m, v, k in zip(moments, levels, keep, strict=True) if k]
    got = {d.date: d for d in ind.noise_day_indicators(series, tz)}

    frame = pd.DataFrame({"time": [m for m, _ in series], "level": [v for _, v in series]})
    local = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(zone)
    frame["date"] = local.dt.date
    frame["period"] = _periods(local.dt.hour)
    assert set(got) == set(frame["date"])
    for day_key, group in frame.groupby("date"):
        result = got[day_key]  # type: ignore[index]
        first = pd.Timestamp(day_key).tz_localize(zone)
        last = pd.Timestamp(day_key + timedelta(days=1)).tz_localize(zone)  # type: ignore[operator]
        all_hours = pd.date_range(first, last, freq="h", inclusive="left")
        expected_counts = pd.Series(_periods(all_hours.hour)).value_counts()
        for period, column in (("day", "lday"), ("evening", "levening"), ("night", "lnight")):
            values = group.loc[group["period"] == period, "level"].to_numpy()
            need = 0.75 * expected_counts.get(period, 0)
            if len(values) and len(values) >= need:
                reference = 10 * np.log10(np.mean(10 ** (values / 10)))
                assert getattr(result, column) == pytest.approx(reference)
            else:
                assert getattr(result, column) is None
        assert result.hours == len(all_hours)
        assert result.completeness == pytest.approx(len(group) / len(all_hours))
