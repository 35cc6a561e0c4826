"""Noise indicators: energy means, Lday/Levening/Lnight/Lden in local time, WHO 2018 values.

Levels in dB are only ever combined as energy means (REFERENCE 1.4, 2.1). The periods follow
the Environmental Noise Directive 2002/49/EC Annex I (REFERENCE 2.1): day 07-19, evening
19-23, night 23-07 local time by default, configurable. A "day" here is the local calendar
day (midnight to midnight in the given zone): its night period is made of the hours 00-07 and
23-24 of that date. On daylight-saving days the hours are counted as they occur, so a night
has 7 or 9 hours instead of 8.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# END Annex I penalties (REFERENCE 2.1).
EVENING_PENALTY_DB = 5.0
NIGHT_PENALTY_DB = 10.0
HOURS_PER_DAY = 24
# A period's level counts only with at least this share of its hours (as for means).
MIN_PERIOD_COMPLETENESS = 0.75

# WHO Environmental Noise Guidelines for the European Region 2018, road traffic (REFERENCE 2.2).
WHO_2018_ROAD_LDEN_DB = 53.0
WHO_2018_ROAD_LNIGHT_DB = 45.0
# EU "excess exposure" thresholds (REFERENCE 2.1, EEA).
EU_EXCESS_LDEN_DB = 55.0
EU_EXCESS_LNIGHT_DB = 50.0


class LevelError(ValueError):
    """A level or weight that cannot be combined (not finite, or a negative weight)."""

    def __init__(self, value: float, reason: str) -> None:
        super().__init__(f"{value!r}: {reason}")
        self.value = value
        self.reason = reason


class PeriodsError(ValueError):
    """Noise periods that do not split the day into day, evening and night."""

    def __init__(self, day: int, evening: int, night: int, reason: str) -> None:
        super().__init__(f"day {day}, evening {evening}, night {night}: {reason}")
        self.day = day
        self.evening = evening
        self.night = night
        self.reason = reason


def energy_mean(levels: Iterable[float], weights: Iterable[float] | None = None) -> float:
    """10·lg(Σ wᵢ·10^(Lᵢ/10) / Σ wᵢ): the level of the mean sound energy (equal weights unless
    given, e.g. each reading's duration)."""
    levels = list(levels)
    ws = [1.0] * len(levels) if weights is None else list(weights)
    if len(ws) != len(levels):
        raise ValueError(f"{len(levels)} levels but {len(ws)} weights")
    if not levels:
        raise ValueError("energy mean of no levels")
    for level in levels:
        if not math.isfinite(level):
            raise LevelError(level, "level is not finite")
    for weight in ws:
        if not math.isfinite(weight) or weight < 0:
            raise LevelError(weight, "weight must be finite and not negative")
    total = sum(ws)
    if total <= 0:
        raise LevelError(total, "weights sum to zero")
    # Factor out the loudest level so that 10^(L/10) never overflows.
    top = max(levels)
    energy = sum(w * 10 ** ((level - top) / 10) for level, w in zip(levels, ws, strict=True))
    return top + 10 * math.log10(energy / total)


def lden(
    lday: float,
    levening: float,
    lnight: float,
    hours: tuple[float, float, float] = (12.0, 4.0, 8.0),
) -> float:
    """END Annex I: 10·lg{(1/24)·[12·10^(Ld/10) + 4·10^((Le+5)/10) + 8·10^((Ln+10)/10)]}.

    ``hours`` are the lengths of day, evening and night (END's 12/4/8 by default).
    """
    return energy_mean(
        (lday, levening + EVENING_PENALTY_DB, lnight + NIGHT_PENALTY_DB), weights=hours
    )


@dataclass(frozen=True)
class NoisePeriods:
    """Start hours (local time) of the day, evening and night periods."""

    day: int = 7
    evening: int = 19
    night: int = 23

    def __post_init__(self) -> None:
        if not 0 <= self.day < self.evening < self.night <= HOURS_PER_DAY:
            raise PeriodsError(
                self.day, self.evening, self.night, "expected 0 <= day < evening < night <= 24"
            )

    @property
    def hours(self) -> tuple[float, float, float]:
        """Nominal lengths of day, evening and night in hours (12, 4, 8 by default)."""
        day = self.evening - self.day
        evening = self.night - self.evening
        return float(day), float(evening), float(HOURS_PER_DAY - day - evening)

    def period_of(self, local_hour: int) -> str:
        """``"day"``, ``"evening"`` or ``"night"`` for an hour of the local clock (0-23)."""
        if self.day <= local_hour < self.evening:
            return "day"
        if self.evening <= local_hour < self.night:
            return "evening"
        return "night"


END_DEFAULT = NoisePeriods()
PERIODS = ("day", "evening", "night")


@dataclass(frozen=True)
class NoiseDay:
    """One local calendar day's levels. A period's level is None when fewer than 75 % of its
    hours have a value; ``lden`` is None unless all three are there. ``completeness`` is the
    share of the day's hours (23, 24 or 25) that have a value."""

    date: date
    lday: float | None
    levening: float | None
    lnight: float | None
    lden: float | None
    completeness: float
    hours: int


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end (UTC) of a local calendar day; 23, 24 or 25 hours long across DST."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def local_hours(day: date, tz: ZoneInfo) -> Iterator[datetime]:
    """The UTC starts of the hours that occur on a local day, in order."""
    start, end = day_bounds(day, tz)
    moment = start
    while moment < end:
        yield moment
        moment += timedelta(hours=1)


def expected_hours(day: date, tz: ZoneInfo, periods: NoisePeriods = END_DEFAULT) -> dict[str, int]:
    """How many hours of each period occur on a local day (night 7 or 9 across DST)."""
    counts = dict.fromkeys(PERIODS, 0)
    for moment in local_hours(day, tz):
        counts[periods.period_of(moment.astimezone(tz).hour)] += 1
    return counts


def period_level(levels: list[float], expected: int) -> float | None:
    """The energy mean of a period's hourly levels, None below 75 % of its expected hours."""
    if not levels or expected <= 0 or len(levels) < MIN_PERIOD_COMPLETENESS * expected:
        return None
    return energy_mean(levels)


def noise_day_indicators(
    hourly: Iterable[tuple[datetime, float]],
    tz: ZoneInfo,
    periods: NoisePeriods = END_DEFAULT,
) -> Iterator[NoiseDay]:
    """Per local calendar day, Lday, Levening, Lnight and Lden from hourly LAeq levels.

    ``hourly`` holds (start of the hour, tz-aware; level in dB) in time order, one value per
    hour; a day is yielded as soon as the next day's first hour arrives, so memory stays at one
    day. Days without any hour are not yielded.
    """
    current: date | None = None
    levels: dict[str, list[float]] = {name: [] for name in PERIODS}
    for moment, level in hourly:
        if moment.tzinfo is None:
            raise ValueError(f"{moment.isoformat()}: a naive datetime has no defined local time")
        local = moment.astimezone(tz)
        if current is not None and local.date() != current:
            yield _noise_day(current, levels, tz, periods)
            levels = {name: [] for name in PERIODS}
        current = local.date()
        levels[periods.period_of(local.hour)].append(level)
    if current is not None:
        yield _noise_day(current, levels, tz, periods)


def _noise_day(
    day: date, levels: dict[str, list[float]], tz: ZoneInfo, periods: NoisePeriods
) -> NoiseDay:
    expected = expected_hours(day, tz, periods)
    ld, le, ln = (period_level(levels[name], expected[name]) for name in PERIODS)
    total = sum(expected.values())
    present = sum(len(values) for values in levels.values())
    day_lden = (
        lden(ld, le, ln, periods.hours)
        if ld is not None and le is not None and ln is not None
        else None
    )
    return NoiseDay(day, ld, le, ln, day_lden, min(present / total, 1.0), total)


@dataclass(frozen=True)
class NoiseComparison:
    """Lden and Lnight against the WHO 2018 road-traffic values (None when not known)."""

    who_lden_exceeded: bool | None
    who_lnight_exceeded: bool | None


def compare_who_road(lden_db: float | None, lnight_db: float | None) -> NoiseComparison:
    """WHO recommends road-traffic noise below Lden 53 dB and Lnight 45 dB: a level at or
    above the value is not below it."""
    return NoiseComparison(
        None if lden_db is None else lden_db >= WHO_2018_ROAD_LDEN_DB,
        None if lnight_db is None else lnight_db >= WHO_2018_ROAD_LNIGHT_DB,
    )
