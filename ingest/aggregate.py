"""Hourly and daily means of readings, streamed, with completeness and (optionally) indicators.

The export writers call :func:`aggregate` on rows read from InfluxDB, sorted by node and then
time, and write what it yields in the order of :func:`columns`. Memory stays bounded by one
node-day: readings are folded into running sums (:mod:`ingest.means`) per hour or day, and a
block (a UTC day of hours, or one local day) is emitted once the node's readings move past it,
when the node's reporting interval is known well enough to judge completeness.

Output rows: ``time`` (start of the hour in UTC, or local midnight in ``tz`` for a day),
``node``, ``area``, the aggregate of each field, ``n`` (readings), ``expected``,
``completeness``, ``valid`` and ``qa`` (the OR of the readings' bitmasks). Periods without any
reading yield no row; incomplete ones are marked ``valid = False``, never dropped.
Indicators (``indicators=True``) are computed from valid means only, else None:

- hourly air: ``nowcast_pm25`` (EPA NowCast over the node's last 12 hourly means, truncated to
  0.1 µg/m³) and ``eaqi_band`` (revised European AQI of the hour's PM means).
- daily air: ``aqi`` (the worse of ``aqi_pm25`` and ``aqi_pm10``), ``aqi_category``,
  ``eaqi_band``, ``who_pm25_exceeded``, ``who_pm10_exceeded``, ``eu2030_pm25_exceeded``,
  ``eu2030_pm10_exceeded``.
- daily noise: ``lday``, ``levening``, ``lnight``, ``lden`` (periods in local time, each level
  only with 75 % of its expected readings).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ingest import indicators as ind
from ingest.indicators.noise import END_DEFAULT, PERIODS, NoisePeriods, day_bounds, local_hours
from ingest.means import (
    ENERGY_FIELD,
    NOISE,
    Accumulator,
    EnergySum,
    SpacingEstimator,
    aggregate_fields,
    as_number,
    judge,
    reading_weight,
)
from ingest.schema import MEASURED_FIELDS

Row = dict[str, Any]
Level = Literal["hourly", "daily"]
AIR = "air"
HOUR = timedelta(hours=1)
HOUR_S = 3600.0

HOURLY_AIR_INDICATORS = ("nowcast_pm25", "eaqi_band")
DAILY_AIR_INDICATORS = (
    "aqi",
    "aqi_pm25",
    "aqi_pm10",
    "aqi_category",
    "eaqi_band",
    "who_pm25_exceeded",
    "who_pm10_exceeded",
    "eu2030_pm25_exceeded",
    "eu2030_pm10_exceeded",
)
DAILY_NOISE_INDICATORS = ("lday", "levening", "lnight", "lden")
COMPLETENESS_COLUMNS = ("n", "expected", "completeness", "valid", "qa")


class UnsortedRowsError(ValueError):
    """Rows of a node that go back in time: the input must be sorted by node, then time."""

    def __init__(self, node: str, previous: datetime, current: datetime) -> None:
        super().__init__(
            f"node {node!r}: reading at {current.isoformat()} after {previous.isoformat()}"
        )
        self.node = node
        self.previous = previous
        self.current = current


class NodeOrderError(ValueError):
    """A node whose rows come in two separate runs: the input must be sorted by node."""

    def __init__(self, node: str) -> None:
        super().__init__(f"node {node!r}: rows again after another node's")
        self.node = node


class NaiveTimeError(ValueError):
    def __init__(self, node: str, moment: datetime) -> None:
        super().__init__(f"node {node!r}: time {moment.isoformat()} has no time zone")
        self.node = node
        self.moment = moment


def indicator_columns(measurement: str, level: Literal["raw", "hourly", "daily"]) -> list[str]:
    if measurement == AIR and level == "hourly":
        return list(HOURLY_AIR_INDICATORS)
    if measurement == AIR and level == "daily":
        return list(DAILY_AIR_INDICATORS)
    if measurement == NOISE and level == "daily":
        return list(DAILY_NOISE_INDICATORS)
    return []


def columns(
    measurement: str, level: Literal["raw", "hourly", "daily"], indicators: bool
) -> list[str]:
    """The output columns of ``measurement`` at ``level``, in a stable order."""
    fields = aggregate_fields(measurement)  # UnknownMeasurementError for an unknown one
    if level == "raw":
        return ["time", "node", "area", *MEASURED_FIELDS[measurement], "seq", "fw", "qa"]
    out = ["time", "node", "area", *fields, *COMPLETENESS_COLUMNS]
    if indicators:
        out.extend(indicator_columns(measurement, level))
    return out


def aggregate(
    rows: Iterable[Row],
    measurement: str,
    level: Level,
    tz: ZoneInfo,
    *,
    indicators: bool = False,
    interval: Callable[[str], float | None] = lambda node: None,
    periods: NoisePeriods = END_DEFAULT,
) -> Iterator[Row]:
    """Hourly or daily rows of ``rows`` (sorted by node, then time), see the module docstring.

    ``interval(node)`` is the node's reporting interval in seconds from the registry, or None
    to estimate it from the median spacing of the node's recent readings.
    """
    aggregate_fields(measurement)  # an unknown measurement fails before any row is read
    if level not in ("hourly", "daily"):
        raise ValueError(f"level {level!r} is not hourly or daily")
    seen: set[str] = set()
    for node, node_rows in itertools.groupby(rows, key=lambda row: str(row["node"])):
        if node in seen:
            raise NodeOrderError(node)
        seen.add(node)
        folder = _NodeFolder(node, measurement, level, tz, indicators, interval(node), periods)
        for row in node_rows:
            yield from folder.add(row)
        yield from folder.flush()


class _Bucket:
    """One hour or one day of a node: the field statistics and, for a noise day, the energy
    sums of the day, evening and night periods."""

    def __init__(self, measurement: str, start: datetime) -> None:
        self.start = start
        self.stats = Accumulator(measurement)
        self.period_energy = {name: EnergySum() for name in PERIODS}
        self.period_n = dict.fromkeys(PERIODS, 0)


class _NodeFolder:
    """Folds one node's rows into buckets and emits them a block at a time."""

    def __init__(
        self,
        node: str,
        measurement: str,
        level: Level,
        tz: ZoneInfo,
        indicators: bool,
        interval: float | None,
        periods: NoisePeriods,
    ) -> None:
        self.node = node
        self.measurement = measurement
        self.level = level
        self.tz = tz
        self.indicators = indicators
        self.interval = interval
        self.periods = periods
        self.spacing = SpacingEstimator()
        self.block: date | None = None
        self.buckets: dict[datetime, _Bucket] = {}
        self.last: datetime | None = None
        self.last_epoch = -math.inf
        # The epoch-second range of the current bucket, so most readings skip the time maths.
        self.current: _Bucket | None = None
        self.bucket_from = math.inf
        self.bucket_until = -math.inf
        # Valid hourly PM2.5 means of the last 12 hours, for the NowCast.
        self.recent_pm25: dict[datetime, float] = {}

    def add(self, row: Row) -> Iterator[Row]:
        moment: datetime = row["time"]
        if moment.tzinfo is None:
            raise NaiveTimeError(self.node, moment)
        epoch = moment.timestamp()
        if epoch < self.last_epoch:
            assert self.last is not None
            raise UnsortedRowsError(self.node, self.last, moment)
        self.last, self.last_epoch = moment, epoch
        self.spacing.add(epoch)
        if not self.bucket_from <= epoch < self.bucket_until:
            yield from self._enter(moment, epoch)
        bucket = self.current
        assert bucket is not None
        bucket.stats.add(row)
        if self.measurement == NOISE and self.level == "daily":
            level = as_number(row.get(ENERGY_FIELD))
            if level is not None:
                period = self.periods.period_of(moment.astimezone(self.tz).hour)
                bucket.period_energy[period].add(level, reading_weight(row))
                bucket.period_n[period] += 1

    def _enter(self, moment: datetime, epoch: float) -> Iterator[Row]:
        """Make the hour or day of ``moment`` current, emitting the block it leaves."""
        if self.level == "hourly":
            first = epoch - epoch % HOUR_S
            start = datetime.fromtimestamp(first, UTC)
            block = start.date()
            bounds = (first, first + HOUR_S)
        else:
            block = moment.astimezone(self.tz).date()
            start = datetime.combine(block, time(0), tzinfo=self.tz)
            day_start, day_end = day_bounds(block, self.tz)
            bounds = (day_start.timestamp(), day_end.timestamp())
        if self.block is not None and block != self.block:
            yield from self.flush()
        self.block = block
        self.bucket_from, self.bucket_until = bounds
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = _Bucket(self.measurement, start)
        self.current = bucket

    def flush(self) -> Iterator[Row]:
        interval = self.interval if self.interval is not None else self.spacing.median()
        for start in sorted(self.buckets):
            yield self._row(self.buckets[start], interval)
        self.buckets = {}
        self.current = None
        self.bucket_from, self.bucket_until = math.inf, -math.inf

    def _row(self, bucket: _Bucket, interval: float | None) -> Row:
        stats = bucket.stats
        if self.level == "hourly":
            seconds = HOUR_S
        else:
            day_start, day_end = day_bounds(bucket.start.date(), self.tz)
            seconds = (day_end - day_start).total_seconds()
        verdict = judge(stats.n, seconds, interval)
        values = stats.values()
        row: Row = {"time": bucket.start, "node": self.node, "area": stats.area, **values}
        row.update(
            n=stats.n,
            expected=verdict.expected,
            completeness=verdict.completeness,
            valid=verdict.valid,
            qa=stats.qa,
        )
        if self.indicators:
            if self.measurement == AIR and self.level == "hourly":
                row.update(self._hourly_air(bucket.start, values, verdict.valid))
            elif self.measurement == AIR:
                row.update(daily_air_indicators(values, verdict.valid))
            elif self.measurement == NOISE and self.level == "daily":
                row.update(self._daily_noise(bucket, interval))
        return row

    def _hourly_air(
        self, start: datetime, values: dict[str, float | None], valid: bool
    ) -> dict[str, Any]:
        pm25 = values.get("pm2_5")
        if valid and pm25 is not None and pm25 >= 0:
            self.recent_pm25[start] = pm25
        horizon = start - (ind.air.NOWCAST_HOURS - 1) * HOUR
        self.recent_pm25 = {t: c for t, c in self.recent_pm25.items() if t >= horizon}
        window = [self.recent_pm25.get(start - i * HOUR) for i in range(ind.air.NOWCAST_HOURS)]
        value = ind.nowcast(window)
        band = _eaqi(values) if valid else None
        return {
            "nowcast_pm25": None if value is None else float(ind.truncate("pm2_5", value)),
            "eaqi_band": None if band is None else band.name,
        }

    def _daily_noise(self, bucket: _Bucket, interval: float | None) -> dict[str, Any]:
        return daily_noise_indicators(
            bucket.start.date(),
            self.tz,
            self.periods,
            {name: bucket.period_energy[name].mean() for name in PERIODS},
            bucket.period_n,
            interval,
        )


def _usable(value: float | None) -> float | None:
    return value if value is not None and value >= 0 else None


def _eaqi(values: dict[str, float | None]) -> ind.EaqiBand | None:
    pm25, pm10 = _usable(values.get("pm2_5")), _usable(values.get("pm10"))
    return ind.worst_band(
        (
            None if pm25 is None else ind.eaqi_band("pm2_5", pm25),
            None if pm10 is None else ind.eaqi_band("pm10", pm10),
        )
    )


def daily_air_indicators(values: dict[str, float | None], valid: bool) -> dict[str, Any]:
    """The daily air indicator columns from a day's means (all None on an invalid day)."""
    out: dict[str, Any] = dict.fromkeys(DAILY_AIR_INDICATORS)
    if not valid:
        return out
    pm25, pm10 = _usable(values.get("pm2_5")), _usable(values.get("pm10"))
    if pm25 is not None:
        out["aqi_pm25"] = ind.aqi_pm25(pm25)
        out["who_pm25_exceeded"] = ind.WHO_2021_PM25_24H.exceeded(pm25)
        out["eu2030_pm25_exceeded"] = ind.EU_2030_PM25_DAILY.exceeded(pm25)
    if pm10 is not None:
        out["aqi_pm10"] = ind.aqi_pm10(pm10)
        out["who_pm10_exceeded"] = ind.WHO_2021_PM10_24H.exceeded(pm10)
        out["eu2030_pm10_exceeded"] = ind.EU_2030_PM10_DAILY.exceeded(pm10)
    present = [i for i in (out["aqi_pm25"], out["aqi_pm10"]) if i is not None]
    if present:
        out["aqi"] = max(present)
        out["aqi_category"] = ind.aqi_category(out["aqi"]).name
    band = _eaqi(values)
    out["eaqi_band"] = None if band is None else band.name
    return out


def daily_noise_indicators(
    day: date,
    tz: ZoneInfo,
    periods: NoisePeriods,
    levels: dict[str, float | None],
    counts: dict[str, int],
    interval: float | None,
) -> dict[str, Any]:
    """Lday, Levening, Lnight and Lden of a local day from each period's energy mean and
    reading count; a period's level needs 75 % of the readings expected in its hours."""
    seconds = dict.fromkeys(PERIODS, 0.0)
    for hour in local_hours(day, tz):
        seconds[periods.period_of(hour.astimezone(tz).hour)] += HOUR.total_seconds()
    out: dict[str, float | None] = {}
    for name, column in zip(PERIODS, ("lday", "levening", "lnight"), strict=True):
        verdict = judge(counts[name], seconds[name], interval)
        out[column] = levels[name] if verdict.valid else None
    ld, le, ln = out["lday"], out["levening"], out["lnight"]
    out["lden"] = (
        ind.lden(ld, le, ln, periods.hours)
        if ld is not None and le is not None and ln is not None
        else None
    )
    return out
