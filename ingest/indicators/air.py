"""Air-quality indicators for PM: US EPA AQI and NowCast, the revised European AQI band, and the
WHO 2021 and EU limit values.

Every figure comes from ``REFERENCE.md`` section 3 (cited per constant). Concentrations are in
µg/m³. Truncation works on the number's shortest decimal form (``repr``), so ``35.4`` is
35.4 and not 35.399999…: binary floating point must not move a value across a band edge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum


class Pollutant(StrEnum):
    PM2_5 = "pm2_5"
    PM10 = "pm10"


class ConcentrationError(ValueError):
    """A concentration an index cannot take (negative or not finite)."""

    def __init__(self, pollutant: str, value: float, reason: str) -> None:
        super().__init__(f"{pollutant} {value!r}: {reason}")
        self.pollutant = pollutant
        self.value = value
        self.reason = reason


class UnknownPollutantError(ValueError):
    def __init__(self, pollutant: str) -> None:
        names = ", ".join(p.value for p in Pollutant)
        super().__init__(f"{pollutant!r} is not one of {names}")
        self.pollutant = pollutant


# --- US EPA AQI, 2024 PM revision (REFERENCE 3.3; TAD EPA-454/B-24-002, May 2024) ---


@dataclass(frozen=True)
class AqiCategory:
    """An AQI category, with the colour the EPA's AirNow publishes for it."""

    name: str
    low: int
    high: int
    colour: str


# Colours: AirNow's published RGB values for the six categories (green, yellow, orange, red,
# purple, maroon), as every AQI map shows them.
AQI_CATEGORIES = (
    AqiCategory("Good", 0, 50, "#00e400"),
    AqiCategory("Moderate", 51, 100, "#ffff00"),
    AqiCategory("Unhealthy for Sensitive Groups", 101, 150, "#ff7e00"),
    AqiCategory("Unhealthy", 151, 200, "#ff0000"),
    AqiCategory("Very Unhealthy", 201, 300, "#8f3f97"),
    AqiCategory("Hazardous", 301, 500, "#7e0023"),
)
# Above the top breakpoint implementations differ (REFERENCE 3.3); this one caps at 500.
AQI_MAX = 500

# (BP_lo, BP_hi) per category, in the order of AQI_CATEGORIES; the 2024 table of REFERENCE 3.3.
AQI_BREAKPOINTS: dict[Pollutant, tuple[tuple[Decimal, Decimal], ...]] = {
    Pollutant.PM2_5: tuple(
        (Decimal(lo), Decimal(hi))
        for lo, hi in (
            ("0.0", "9.0"),
            ("9.1", "35.4"),
            ("35.5", "55.4"),
            ("55.5", "125.4"),
            ("125.5", "225.4"),
            ("225.5", "325.4"),
        )
    ),
    Pollutant.PM10: tuple(
        (Decimal(lo), Decimal(hi))
        for lo, hi in (
            ("0", "54"),
            ("55", "154"),
            ("155", "254"),
            ("255", "354"),
            ("355", "424"),
            ("425", "604"),
        )
    ),
}
# Truncation before the AQI formula: PM2.5 to 0.1 µg/m³, PM10 to 1 µg/m³ (REFERENCE 3.3).
AQI_TRUNCATION = {Pollutant.PM2_5: Decimal("0.1"), Pollutant.PM10: Decimal("1")}


def _pollutant(name: str) -> Pollutant:
    try:
        return Pollutant(name)
    except ValueError:
        raise UnknownPollutantError(name) from None


def _check(pollutant: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConcentrationError(pollutant, value, "not a finite number")
    if value < 0:
        raise ConcentrationError(pollutant, value, "negative")


def truncate(pollutant: str, value: float) -> Decimal:
    """``value`` truncated as the EPA specifies for ``pollutant`` (0.1 or 1 µg/m³)."""
    kind = _pollutant(pollutant)
    _check(kind.value, value)
    return Decimal(repr(float(value))).quantize(AQI_TRUNCATION[kind], rounding=ROUND_FLOOR)


def aqi(pollutant: str, concentration: float) -> int:
    """The AQI of one pollutant's concentration: truncate, interpolate, round half up.

    Concentrations above the top breakpoint give :data:`AQI_MAX`.
    """
    kind = _pollutant(pollutant)
    c = truncate(kind.value, concentration)
    for (bp_lo, bp_hi), category in zip(AQI_BREAKPOINTS[kind], AQI_CATEGORIES, strict=True):
        if c <= bp_hi:
            index = (category.high - category.low) / (bp_hi - bp_lo) * (c - bp_lo) + category.low
            return int(index.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return AQI_MAX


def aqi_pm25(daily_mean: float) -> int:
    """AQI of a 24-hour PM2.5 mean (or a PM2.5 NowCast) in µg/m³."""
    return aqi(Pollutant.PM2_5, daily_mean)


def aqi_pm10(daily_mean: float) -> int:
    """AQI of a 24-hour PM10 mean (or a PM10 NowCast) in µg/m³."""
    return aqi(Pollutant.PM10, daily_mean)


def aqi_category(index: int) -> AqiCategory:
    """The category of an AQI value (values above 500 are Hazardous)."""
    if index < 0:
        raise ValueError(f"AQI {index} is negative")
    for category in AQI_CATEGORIES:
        if index <= category.high:
            return category
    return AQI_CATEGORIES[-1]


# --- NowCast (REFERENCE 3.4; EPA PM NowCast fact sheet) ---

NOWCAST_HOURS = 12
# At least 2 of the 3 most recent hours must be valid.
NOWCAST_RECENT_HOURS = 3
NOWCAST_RECENT_MIN = 2
# Floor of the weight factor: approximates a 3-hour average.
NOWCAST_MIN_WEIGHT = 0.5


def nowcast(hourly: Sequence[float | None]) -> float | None:
    """The NowCast of up to 12 hourly means, most recent first (``None`` for a missing hour).

    Returns the weighted average untruncated (truncate with :func:`truncate` before showing it;
    :func:`aqi` truncates by itself), or None when fewer than 2 of the 3 most recent hours have
    a value.
    """
    window = list(hourly[:NOWCAST_HOURS])
    recent = [c for c in window[:NOWCAST_RECENT_HOURS] if c is not None]
    if len(recent) < NOWCAST_RECENT_MIN:
        return None
    present = [(i, c) for i, c in enumerate(window) if c is not None]
    for _, c in present:
        _check("nowcast", c)
    highest = max(c for _, c in present)
    lowest = min(c for _, c in present)
    if highest == 0:
        return 0.0
    weight = max(1 - (highest - lowest) / highest, NOWCAST_MIN_WEIGHT)
    numerator = sum(weight**i * c for i, c in present)
    denominator = sum(weight**i for i, _ in present)
    return numerator / denominator


# --- Revised European Air Quality Index (REFERENCE 3.5; ETC HE Report 2024/17, Table 5.2) ---


@dataclass(frozen=True)
class EaqiBand:
    """A band of the European AQI (1 = Good … 6 = Extremely poor). ``colour`` is None: the
    EEA colours are not in REFERENCE.md yet."""

    level: int
    name: str
    colour: str | None = None


EAQI_BANDS = (
    EaqiBand(1, "Good"),
    EaqiBand(2, "Fair"),
    EaqiBand(3, "Moderate"),
    EaqiBand(4, "Poor"),
    EaqiBand(5, "Very poor"),
    EaqiBand(6, "Extremely poor"),
)
# Upper bounds of the first five bands (the last is open). REFERENCE gives the bands as ranges
# that share their ends (0-5, 5-15, …); here a value on an end belongs to the lower band.
EAQI_UPPER: dict[Pollutant, tuple[float, ...]] = {
    Pollutant.PM2_5: (5.0, 15.0, 50.0, 90.0, 140.0),
    Pollutant.PM10: (15.0, 45.0, 120.0, 195.0, 270.0),
}


def eaqi_band(pollutant: str, value: float) -> EaqiBand:
    """The revised European AQI band of a PM concentration (the index's reference time is one
    hour)."""
    kind = _pollutant(pollutant)
    _check(kind.value, value)
    for upper, band in zip(EAQI_UPPER[kind], EAQI_BANDS, strict=False):
        if value <= upper:
            return band
    return EAQI_BANDS[-1]


def worst_band(bands: Iterable[EaqiBand | None]) -> EaqiBand | None:
    """The overall index: the worst band among the pollutants (None if there is none)."""
    present = [band for band in bands if band is not None]
    return max(present, key=lambda band: band.level) if present else None


# --- WHO 2021 guidelines and EU limit values (REFERENCE 3.1, 3.2) ---


@dataclass(frozen=True)
class DailyLimit:
    """A 24-hour (daily mean) limit: exceeded on a day whose mean is above ``value``."""

    key: str
    pollutant: Pollutant
    value: float
    # Exceedance days a year the standard tolerates, where REFERENCE states it.
    allowed_per_year: int | None
    source: str
    provisional: bool = False

    def exceeded(self, daily_mean: float) -> bool:
        return daily_mean > self.value


WHO_2021_PM25_24H = DailyLimit(
    "who_pm25", Pollutant.PM2_5, 15.0, None, "WHO Global AQG 2021, 24-h AQG (99th percentile)"
)
WHO_2021_PM10_24H = DailyLimit(
    "who_pm10", Pollutant.PM10, 45.0, None, "WHO Global AQG 2021, 24-h AQG (99th percentile)"
)
EU_2030_PM25_DAILY = DailyLimit(
    "eu2030_pm25",
    Pollutant.PM2_5,
    25.0,
    18,
    "Directive (EU) 2024/2881, daily limit from 2030 (18 exceedances: secondary source)",
    provisional=True,
)
EU_2030_PM10_DAILY = DailyLimit(
    "eu2030_pm10",
    Pollutant.PM10,
    45.0,
    18,
    "Directive (EU) 2024/2881, daily limit from 2030 (18 exceedances: secondary source)",
    provisional=True,
)
EU_2008_PM10_DAILY = DailyLimit(
    "eu2008_pm10", Pollutant.PM10, 50.0, 35, "Directive 2008/50/EC, daily limit, ≤ 35 days/yr"
)
DAILY_LIMITS = (
    WHO_2021_PM25_24H,
    WHO_2021_PM10_24H,
    EU_2030_PM25_DAILY,
    EU_2030_PM10_DAILY,
    EU_2008_PM10_DAILY,
)


@dataclass(frozen=True)
class AnnualLimit:
    key: str
    pollutant: Pollutant
    value: float
    source: str


ANNUAL_LIMITS = (
    AnnualLimit("who_pm25", Pollutant.PM2_5, 5.0, "WHO Global AQG 2021, annual AQG"),
    AnnualLimit("who_pm10", Pollutant.PM10, 15.0, "WHO Global AQG 2021, annual AQG"),
    AnnualLimit("eu2030_pm25", Pollutant.PM2_5, 10.0, "Directive (EU) 2024/2881, from 2030"),
    AnnualLimit("eu2030_pm10", Pollutant.PM10, 20.0, "Directive (EU) 2024/2881, from 2030"),
    AnnualLimit("eu2008_pm25", Pollutant.PM2_5, 25.0, "Directive 2008/50/EC"),
    AnnualLimit("eu2008_pm10", Pollutant.PM10, 40.0, "Directive 2008/50/EC"),
)


@dataclass(frozen=True)
class DailyMean:
    """One day's PM means of a node or an area; ``valid`` as judged by its completeness."""

    day: date
    pm2_5: float | None
    pm10: float | None
    valid: bool = True


@dataclass(frozen=True)
class Exceedances:
    """How often one daily limit was exceeded on valid days."""

    limit: DailyLimit
    days: tuple[date, ...]
    valid_days: int

    @property
    def count(self) -> int:
        return len(self.days)

    @property
    def over_allowance(self) -> bool | None:
        """More exceedance days than the standard tolerates a year (None when it sets none)."""
        allowed = self.limit.allowed_per_year
        return None if allowed is None else self.count > allowed


def exceedance_days(
    daily: Iterable[DailyMean], limits: Sequence[DailyLimit] = DAILY_LIMITS
) -> dict[str, Exceedances]:
    """Per limit (by key): the valid days whose mean is above it, and how many valid days
    had that pollutant. Invalid days and days without the pollutant are not counted."""
    found: dict[str, list[date]] = {limit.key: [] for limit in limits}
    valid: dict[str, int] = dict.fromkeys(found, 0)
    for day in daily:
        if not day.valid:
            continue
        for limit in limits:
            value = day.pm2_5 if limit.pollutant is Pollutant.PM2_5 else day.pm10
            if value is None:
                continue
            valid[limit.key] += 1
            if limit.exceeded(value):
                found[limit.key].append(day.day)
    return {
        limit.key: Exceedances(limit, tuple(found[limit.key]), valid[limit.key]) for limit in limits
    }
