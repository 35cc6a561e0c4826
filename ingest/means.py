"""Means of readings over a period, and how complete they are.

One :class:`Accumulator` per node and period takes the readings one at a time and keeps only
running sums (constant memory). How each field combines:

- air and status fields: the arithmetic mean.
- noise ``laeq``: the energy mean, each reading weighted by the seconds it integrated
  (``period``): 10·lg(Σ pᵢ·10^(Lᵢ/10) / Σ pᵢ) (REFERENCE 1.4), the exact LAeq of the period when
  the readings tile it. ``lafmax``: the maximum; ``lafmin``: the minimum; ``period``: the sum.
- noise ``la10``, ``la50``, ``la90``: a period's percentile level cannot be computed from the
  readings' percentile levels (it needs the distribution of the fast level, which nodes do
  not send), and neither an arithmetic nor an energy mean of them is one. What is exact is a
  bound: a percentile of the whole period lies between the lowest and the highest of the
  readings' values of that percentile. So each becomes two columns, ``la50_min`` and
  ``la50_max``.

Completeness (REFERENCE 4.3; DESIGN "InfluxDB schema"): a mean is valid with at least 75 % of
the readings the node should have sent in the period, given its reporting interval (from the
registry, or else the median spacing of its recent readings).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingest.schema import MEASURED_FIELDS

# A mean is valid with at least this share of the expected readings (REFERENCE 4.3).
MIN_COMPLETENESS = 0.75
# How many of a node's most recent spacings estimate its reporting interval.
SPACING_WINDOW = 1440

NOISE = "noise"
ENERGY_FIELD = "laeq"
DURATION_FIELD = "period"
MAX_FIELDS = ("lafmax",)
MIN_FIELDS = ("lafmin",)
PERCENTILE_FIELDS = ("la10", "la50", "la90")


class UnknownMeasurementError(ValueError):
    def __init__(self, measurement: str) -> None:
        names = ", ".join(MEASURED_FIELDS)
        super().__init__(f"{measurement!r} is not one of {names}")
        self.measurement = measurement


def aggregate_fields(measurement: str) -> tuple[str, ...]:
    """The value columns of a mean of ``measurement``, in contract order."""
    try:
        fields = MEASURED_FIELDS[measurement]
    except KeyError:
        raise UnknownMeasurementError(measurement) from None
    if measurement != NOISE:
        return fields
    out: list[str] = []
    for name in fields:
        if name in PERCENTILE_FIELDS:
            out.extend((f"{name}_min", f"{name}_max"))
        else:
            out.append(name)
    return tuple(out)


def as_number(value: Any) -> float | None:
    """A stored value as a float, or None when absent, boolean or not finite."""
    if value is None or type(value) is bool:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class EnergySum:
    """Running Σ wᵢ·10^(Lᵢ/10) and Σ wᵢ, kept relative to the loudest level seen so that no
    level overflows."""

    def __init__(self) -> None:
        self._top = -math.inf
        self._energy = 0.0
        self._weight = 0.0

    def add(self, level: float, weight: float = 1.0) -> None:
        if level > self._top:
            if self._energy:
                self._energy *= 10 ** ((self._top - level) / 10)
            self._top = level
        self._energy += weight * 10 ** ((level - self._top) / 10)
        self._weight += weight

    def mean(self) -> float | None:
        if self._weight <= 0 or self._energy <= 0:
            return None
        return self._top + 10 * math.log10(self._energy / self._weight)


class Accumulator:
    """The running statistics of one node's readings over one period."""

    def __init__(self, measurement: str) -> None:
        self.fields = MEASURED_FIELDS[measurement]
        self.noise = measurement == NOISE
        self.n = 0
        self.qa = 0
        self.area: str | None = None
        self._sum = dict.fromkeys(self.fields, 0.0)
        self._count = dict.fromkeys(self.fields, 0)
        self._low: dict[str, float] = {}
        self._high: dict[str, float] = {}
        self._energy = EnergySum()

    def add(self, row: Mapping[str, Any]) -> None:
        self.n += 1
        qa = row.get("qa")
        if qa:
            self.qa |= int(qa)
        area = row.get("area")
        if area is not None:
            self.area = area
        sums, counts, low, high = self._sum, self._count, self._low, self._high
        for name in self.fields:
            value = as_number(row.get(name))
            if value is None:
                continue
            sums[name] += value
            counts[name] += 1
            if self.noise:
                if value < low.get(name, math.inf):
                    low[name] = value
                if value > high.get(name, -math.inf):
                    high[name] = value
        if self.noise:
            level = as_number(row.get(ENERGY_FIELD))
            if level is not None:
                self._energy.add(level, reading_weight(row))

    def values(self) -> dict[str, float | None]:
        """The aggregate value of each column of :func:`aggregate_fields`."""
        out: dict[str, float | None] = {}
        for name in self.fields:
            count = self._count[name]
            if not self.noise:
                out[name] = self._sum[name] / count if count else None
            elif name == ENERGY_FIELD:
                out[name] = self._energy.mean()
            elif name == DURATION_FIELD:
                out[name] = self._sum[name] if count else None
            elif name in MAX_FIELDS:
                out[name] = self._high.get(name)
            elif name in MIN_FIELDS:
                out[name] = self._low.get(name)
            elif name in PERCENTILE_FIELDS:
                out[f"{name}_min"] = self._low.get(name)
                out[f"{name}_max"] = self._high.get(name)
            else:
                out[name] = self._sum[name] / count if count else None
        return out


def reading_weight(row: Mapping[str, Any]) -> float:
    """A noise reading's weight in an energy mean: the seconds it integrated (1 without a
    usable ``period``)."""
    period = as_number(row.get(DURATION_FIELD))
    return period if period is not None and period > 0 else 1.0


class SpacingEstimator:
    """A node's reporting interval estimated as the median spacing of its recent readings."""

    def __init__(self, window: int = SPACING_WINDOW) -> None:
        self._spacings: deque[float] = deque(maxlen=window)
        self._last: float | None = None
        self._median: float | None = None
        self._added = 0  # spacings added since the median was last computed

    def add(self, epoch_s: float) -> None:
        if self._last is not None and epoch_s > self._last:
            self._spacings.append(epoch_s - self._last)
            self._added += 1
        self._last = epoch_s

    @property
    def count(self) -> int:
        """How many spacings the estimate rests on."""
        return len(self._spacings)

    def median(self, max_age: int = 0) -> float | None:
        """The median spacing; computed again only when more than ``max_age`` spacings came
        since the last time (a caller asking for every reading can afford a slightly old one)."""
        if self._median is None or self._added > max_age:
            self._median = statistics.median(self._spacings) if self._spacings else None
            self._added = 0
        return self._median


@dataclass(frozen=True)
class Completeness:
    """Readings a period should have had, the share it had, and whether its mean counts."""

    expected: float | None
    completeness: float | None
    valid: bool


def judge(n: int, seconds: float, interval_s: float | None) -> Completeness:
    """``n`` readings over ``seconds`` from a node that reports every ``interval_s`` seconds.

    Completeness is capped at 1 (a node may report faster than its registered interval); with
    no known interval nothing can be judged and the mean is not valid.
    """
    if interval_s is None or not interval_s > 0:
        return Completeness(None, None, False)
    expected = seconds / interval_s
    share = min(n / expected, 1.0)
    return Completeness(expected, share, n >= MIN_COMPLETENESS * expected)
