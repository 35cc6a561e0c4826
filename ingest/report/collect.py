"""What a report shows, gathered from InfluxDB and the registry: daily means and indicators per
node (from :mod:`ingest.aggregate`), the daily cycle by local hour and weekday, and the area's
nodes at their public locations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from commons import __version__
from ingest.aggregate import Row, aggregate
from ingest.influx import InfluxHTTP
from ingest.means import EnergySum
from ingest.qa import flag_rows
from ingest.registry import Location, Registry
from ingest.report.source import raw_rows

AIR = "air"
NOISE = "noise"
DEFAULT_LICENCE = "ODbL-1.0"
ATTRIBUTION = "Sensor Commons contributors"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS = 24


class ReportError(Exception):
    """A report that cannot be made; the message says why and what to change."""


class UnknownAreaError(ReportError):
    def __init__(self, area: str, known: list[str]) -> None:
        names = ", ".join(known) if known else "none: register nodes with 'commons node add'"
        super().__init__(f"area {area!r} has no registered node (areas: {names})")
        self.area = area
        self.known = known


class EmptyPeriodError(ReportError):
    def __init__(self, area: str, start: datetime, end: datetime) -> None:
        span = f"{start.isoformat()} to {end.isoformat()}"
        if start >= end:
            super().__init__(f"the period {span} is empty: --end must be after --start")
        else:
            super().__init__(f"no air or noise readings of area {area!r} from {span}")
        self.area = area
        self.start = start
        self.end = end


@dataclass(frozen=True)
class ReportRequest:
    area: str
    start: datetime  # tz-aware, included
    end: datetime  # tz-aware, excluded
    tz: ZoneInfo
    licence: str = DEFAULT_LICENCE
    attribution: str = ATTRIBUTION


@dataclass(frozen=True)
class Site:
    """A node of the report: its public location only (None when it has none)."""

    node: str
    public: Location | None
    registered: bool = True


@dataclass
class CycleGrid:
    """Means by weekday (rows, Monday first) and local hour (columns) of valid hourly means:
    arithmetic for concentrations, energy means for sound levels."""

    energy: bool
    _sum: list[list[float]] = field(default_factory=lambda: [[0.0] * HOURS for _ in WEEKDAYS])
    _count: list[list[int]] = field(default_factory=lambda: [[0] * HOURS for _ in WEEKDAYS])
    _energy: list[list[EnergySum]] = field(
        default_factory=lambda: [[EnergySum() for _ in range(HOURS)] for _ in WEEKDAYS]
    )

    def add(self, local: datetime, value: float) -> None:
        day, hour = local.weekday(), local.hour
        self._count[day][hour] += 1
        if self.energy:
            self._energy[day][hour].add(value)
        else:
            self._sum[day][hour] += value

    def cells(self) -> list[list[float | None]]:
        out: list[list[float | None]] = []
        for day in range(len(WEEKDAYS)):
            row: list[float | None] = []
            for hour in range(HOURS):
                count = self._count[day][hour]
                if not count:
                    row.append(None)
                elif self.energy:
                    row.append(self._energy[day][hour].mean())
                else:
                    row.append(self._sum[day][hour] / count)
            out.append(row)
        return out

    @property
    def hours(self) -> int:
        return sum(sum(row) for row in self._count)


@dataclass(frozen=True)
class ReportData:
    request: ReportRequest
    generated: datetime
    software: str
    days: tuple[date, ...]  # every local day of the period
    sites: tuple[Site, ...]
    air_daily: tuple[Row, ...]  # per node and local day, with indicators
    noise_daily: tuple[Row, ...]
    pm25_cycle: CycleGrid
    laeq_cycle: CycleGrid

    @property
    def air_nodes(self) -> list[str]:
        return sorted({str(row["node"]) for row in self.air_daily})

    @property
    def noise_nodes(self) -> list[str]:
        return sorted({str(row["node"]) for row in self.noise_daily})


def local_days(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[date, ...]:
    """The local calendar days that ``[start, end)`` touches."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


def _fill_cycle(grid: CycleGrid, hourly: Iterable[Row], name: str, tz: ZoneInfo) -> None:
    for row in hourly:
        value = row.get(name)
        if row["valid"] and value is not None:
            grid.add(row["time"].astimezone(tz), float(value))


def collect(influx: InfluxHTTP, registry: Registry, request: ReportRequest) -> ReportData:
    """Read and aggregate everything the report shows (two passes over the raw readings of
    each measurement: daily means, then hourly means for the daily cycle)."""
    start, end, tz, area = request.start, request.end, request.tz, request.area
    if start >= end:
        raise EmptyPeriodError(area, start, end)
    registered = registry.nodes(area=area)
    if not registered:
        raise UnknownAreaError(area, registry.area_names())
    intervals = {node.id: node.interval for node in registered}

    def interval(node: str) -> float | None:
        return intervals.get(node)

    def daily(measurement: str) -> tuple[Row, ...]:
        # With the storage-side QA flags, as exports give them (values are not changed).
        rows = flag_rows(
            raw_rows(influx, measurement, area, start, end), measurement, interval=interval
        )
        return tuple(aggregate(rows, measurement, "daily", tz, indicators=True, interval=interval))

    air_daily, noise_daily = daily(AIR), daily(NOISE)
    if not air_daily and not noise_daily:
        raise EmptyPeriodError(area, start, end)
    pm25_cycle, laeq_cycle = CycleGrid(energy=False), CycleGrid(energy=True)
    for measurement, grid, name in ((AIR, pm25_cycle, "pm2_5"), (NOISE, laeq_cycle, "laeq")):
        rows = raw_rows(influx, measurement, area, start, end)
        _fill_cycle(grid, aggregate(rows, measurement, "hourly", tz, interval=interval), name, tz)

    sites = {node.id: Site(node.id, node.public) for node in registered}
    for row in (*air_daily, *noise_daily):
        # Data of the area from a node registered elsewhere now (or removed): shown, unplaced.
        sites.setdefault(str(row["node"]), Site(str(row["node"]), None, registered=False))
    return ReportData(
        request=request,
        generated=datetime.now(UTC).replace(microsecond=0),
        software=f"sensor-commons {__version__}",
        days=local_days(start, end, tz),
        sites=tuple(sites[name] for name in sorted(sites)),
        air_daily=air_daily,
        noise_daily=noise_daily,
        pm25_cycle=pm25_cycle,
        laeq_cycle=laeq_cycle,
    )
