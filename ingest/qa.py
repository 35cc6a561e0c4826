"""Storage-side QA flags, computed from a node's readings (REFERENCE 4.3).

The node flags what it knows (warm-up of its fan, microphone clip and noise floor, a missing
sensor); these rules add what the stored readings themselves show:

- ``rh_high``: relative humidity above the PM sensor's range (SDS011: 70 %RH).
- ``pm_inconsistent``: PM2.5 above PM10 by more than the sensor's resolution.
- ``out_of_range``: a value outside the contract's range for its field, or not finite, or at
  the sensor's saturation value (SDS011: 999.9 µg/m³).
- ``stuck``: the same non-zero PM value for at least 6 h and 6 readings in a row; every reading
  of the run is flagged, so up to 6 h of a node's readings wait until the run is decided.
- ``gap``: the reading follows a silence longer than 3 reporting intervals.

Warm-up is not recomputed here: a stored reading does not say when the sensor's fan started,
so its ``warmup`` flag is the node's. Readings are never dropped and their values never
changed: each comes out as a copy whose ``qa`` is OR-ed with the storage-side flags.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from commons.contract import MEASURED, Flag, Kind
from ingest.means import SpacingEstimator

Row = dict[str, Any]

# Estimating a node's interval needs a few spacings before a gap can be judged.
MIN_SPACINGS_FOR_GAP = 3
# The estimated interval is refreshed after this many new spacings, not for every reading.
MEDIAN_MAX_AGE = 60


@dataclass(frozen=True)
class QaRules:
    """Thresholds of the storage-side rules; the defaults are those of the SDS011."""

    # SDS011 specified working humidity: max 70 %RH (REFERENCE 4.3, 5.1).
    rh_high_percent: float = 70.0
    # PM2.5 may exceed PM10 by the sensor's resolution: 0.3 µg/m³ for the SDS011 (REFERENCE 5.1).
    pm_resolution: float = 0.3
    # The value a saturated sensor reports: SDS011 999.9 µg/m³ (REFERENCE 4.3); None: none.
    saturation: float | None = 999.9
    # Stuck: identical non-zero values for 6 h (REFERENCE 4.3) and at least this many readings.
    stuck_seconds: float = 6 * 3600.0
    stuck_readings: int = 6
    stuck_fields: tuple[str, ...] = ("pm1", "pm2_5", "pm10")
    # A silence of more than this many reporting intervals is a gap (project convention).
    gap_intervals: float = 3.0


SDS011_RULES = QaRules()
# Plantower: PM mass rises above ~75 %RH (Jayaratne et al. 2018, REFERENCE 4.2), resolution
# 1 µg/m³ (REFERENCE 5.2), no saturation value (effective range 0-500, maximum >= 1000).
PLANTOWER_RULES = QaRules(rh_high_percent=75.0, pm_resolution=1.0, saturation=None)


def rules_for(pm_sensor: str | None) -> QaRules:
    """The thresholds of a node's PM sensor (registry); the SDS011's when it is not known."""
    return PLANTOWER_RULES if pm_sensor == "pms5003" else SDS011_RULES


_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    kind.value: {spec.name: (spec.low, spec.high) for spec in specs}
    for kind, specs in MEASURED.items()
}
_PM_FIELDS = ("pm1", "pm2_5", "pm10")
_AIR = Kind.AIR.value
_OUT_OF_RANGE = Flag.OUT_OF_RANGE.bit
_RH_HIGH = Flag.RH_HIGH.bit
_PM_INCONSISTENT = Flag.PM_INCONSISTENT.bit
_STUCK = Flag.STUCK.bit
_GAP = Flag.GAP.bit


class UnknownKindError(ValueError):
    def __init__(self, measurement: str) -> None:
        super().__init__(f"{measurement!r} is not one of {', '.join(_RANGES)}")
        self.measurement = measurement


def _value(row: Row, name: str) -> float | None:
    value = row.get(name)
    if value is None or isinstance(value, bool):
        return None
    return float(value)


def _exceeds(difference: float, resolution: float) -> bool:
    """``difference`` is more than ``resolution``, not just by a float's rounding error
    (10.3 - 10.0 is 0.3000000000000007)."""
    return difference > resolution and not math.isclose(difference, resolution)


def _saturated(value: float, rules: QaRules) -> bool:
    return rules.saturation is not None and value >= rules.saturation


def reading_flags(row: Row, measurement: str, rules: QaRules = SDS011_RULES) -> int:
    """The flags one reading earns on its own: ``rh_high``, ``pm_inconsistent``,
    ``out_of_range``."""
    try:
        ranges = _RANGES[measurement]
    except KeyError:
        raise UnknownKindError(measurement) from None
    mask = 0
    for name, (low, high) in ranges.items():
        value = _value(row, name)
        if value is None:
            continue
        # NaN fails both comparisons, infinities fail one: neither needs a test of its own.
        if not low <= value <= high or (name in _PM_FIELDS and _saturated(value, rules)):
            mask |= _OUT_OF_RANGE
    if measurement == _AIR:
        rh = _value(row, "rh")
        if rh is not None and rh > rules.rh_high_percent:
            mask |= _RH_HIGH
        pm25, pm10 = _value(row, "pm2_5"), _value(row, "pm10")
        if pm25 is not None and pm10 is not None and _exceeds(pm25 - pm10, rules.pm_resolution):
            mask |= _PM_INCONSISTENT
    return mask


@dataclass
class _Run:
    """A run of identical values of one field: its value, first index, first time, length."""

    value: float
    first: int
    since: datetime
    length: int
    stuck: bool = False


class _Pending:
    """A reading waiting for the runs it belongs to be decided."""

    __slots__ = ("index", "mask", "row")

    def __init__(self, index: int, row: Row, mask: int) -> None:
        self.index = index
        self.row = row
        self.mask = mask


def flag_node(
    rows: Iterable[Row],
    measurement: str,
    *,
    rules: QaRules = SDS011_RULES,
    interval: float | None = None,
) -> Iterator[Row]:
    """One node's rows (in time order) with ``qa`` OR-ed with the storage-side flags.

    ``interval`` is the node's reporting interval in seconds (from the registry); without it,
    the median spacing of its recent readings. Rows come out in the order they came in.
    """
    spacing = SpacingEstimator()
    runs: dict[str, _Run] = {}
    pending: deque[_Pending] = deque()
    last: datetime | None = None
    for index, row in enumerate(rows):
        moment: datetime = row["time"]
        mask = reading_flags(row, measurement, rules)
        if last is not None:
            known = interval if interval is not None else _estimate(spacing)
            silence = (moment - last).total_seconds()
            if known is not None and silence > rules.gap_intervals * known:
                mask |= _GAP
        spacing.add(moment.timestamp())
        last = moment
        item = _Pending(index, row, mask)
        pending.append(item)
        for name in rules.stuck_fields:
            _follow(runs, name, _value(row, name), item, pending, rules)
        yield from _release(pending, runs)
    for item in pending:
        yield _out(item)


def _estimate(spacing: SpacingEstimator) -> float | None:
    if spacing.count < MIN_SPACINGS_FOR_GAP:
        return None
    return spacing.median(max_age=MEDIAN_MAX_AGE)


def _follow(
    runs: dict[str, _Run],
    name: str,
    value: float | None,
    item: _Pending,
    pending: deque[_Pending],
    rules: QaRules,
) -> None:
    """Extend or restart the run of ``name`` with this reading's value; flag a run once it is
    long enough."""
    moment: datetime = item.row["time"]
    run = runs.get(name)
    if value is None or value == 0 or not math.isfinite(value):
        runs.pop(name, None)
        return
    if run is None or run.value != value:
        runs[name] = _Run(value, item.index, moment, 1)
        return
    run.length += 1
    if run.stuck:
        item.mask |= _STUCK
        return
    long_enough = (moment - run.since).total_seconds() >= rules.stuck_seconds
    if long_enough and run.length >= rules.stuck_readings:
        run.stuck = True
        for waiting in pending:
            if waiting.index >= run.first:
                waiting.mask |= _STUCK


def _release(pending: deque[_Pending], runs: dict[str, _Run]) -> Iterator[Row]:
    """Yield the readings that no undecided run holds back."""
    undecided = [run.first for run in runs.values() if not run.stuck]
    hold_from = min(undecided) if undecided else math.inf
    while pending and pending[0].index < hold_from:
        yield _out(pending.popleft())


def _out(item: _Pending) -> Row:
    out = dict(item.row)
    out["qa"] = int(out.get("qa") or 0) | item.mask
    return out


def flag_rows(
    rows: Iterable[Row],
    measurement: str,
    *,
    rules: Callable[[str], QaRules] = lambda node: SDS011_RULES,
    interval: Callable[[str], float | None] = lambda node: None,
) -> Iterator[Row]:
    """:func:`flag_node` over rows of several nodes, sorted by node and then time."""
    for node, node_rows in itertools.groupby(rows, key=lambda row: str(row["node"])):
        yield from flag_node(node_rows, measurement, rules=rules(node), interval=interval(node))
