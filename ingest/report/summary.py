"""The key numbers of a report and their plain-language summary.

Daily air limits are counted with :func:`ingest.indicators.exceedance_days` on valid days only;
invalid (incomplete) days are counted separately and named, never dropped without a word.
Noise over the whole period follows END Annex I: Lday, Levening and Lnight are the energy means
of the valid daily levels, and Lden is formed from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ingest import indicators as ind
from ingest.aggregate import Row
from ingest.report.collect import ReportData

# The daily limits a report counts, in the order of its tables.
REPORT_LIMITS = (
    ind.WHO_2021_PM25_24H,
    ind.EU_2030_PM25_DAILY,
    ind.WHO_2021_PM10_24H,
    ind.EU_2030_PM10_DAILY,
)
POLLUTANT_LABEL = {ind.Pollutant.PM2_5: "PM2.5", ind.Pollutant.PM10: "PM10"}


@dataclass(frozen=True)
class AirNode:
    node: str
    days: int  # days with any reading
    valid_days: int
    mean_pm25: float | None  # mean of the valid daily means
    max_pm25: float | None
    mean_pm10: float | None
    max_pm10: float | None
    exceedances: dict[str, ind.Exceedances]
    # Invalid days whose (incomplete) mean was above a limit: not counted, but named.
    invalid_above: dict[str, int]


@dataclass(frozen=True)
class NoiseNode:
    node: str
    days: int
    valid_days: int  # days with a daily Lden
    lday: float | None
    levening: float | None
    lnight: float | None
    lden: float | None
    days_lden_above: int  # days whose Lden is at or above the WHO road-traffic value
    who: ind.NoiseComparison


@dataclass(frozen=True)
class AreaDays:
    """Distinct days on which at least one node's valid daily mean exceeded a limit."""

    limit: ind.DailyLimit
    days: tuple[date, ...]


@dataclass(frozen=True)
class Summary:
    air: tuple[AirNode, ...]
    noise: tuple[NoiseNode, ...]
    area_days: tuple[AreaDays, ...]
    sentences: tuple[str, ...]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _value(row: Row, name: str) -> float | None:
    value = row.get(name)
    return None if value is None else float(value)


def _air_node(node: str, rows: list[Row]) -> AirNode:
    daily = [
        ind.DailyMean(
            row["time"].date(), _value(row, "pm2_5"), _value(row, "pm10"), bool(row["valid"])
        )
        for row in rows
    ]
    valid = [d for d in daily if d.valid]
    pm25 = [d.pm2_5 for d in valid if d.pm2_5 is not None]
    pm10 = [d.pm10 for d in valid if d.pm10 is not None]
    invalid_above = {}
    for limit in REPORT_LIMITS:
        values = [d.pm2_5 if limit.pollutant is ind.Pollutant.PM2_5 else d.pm10 for d in daily]
        invalid_above[limit.key] = sum(
            1
            for d, v in zip(daily, values, strict=True)
            if not d.valid and v is not None and limit.exceeded(v)
        )
    return AirNode(
        node=node,
        days=len(daily),
        valid_days=len(valid),
        mean_pm25=_mean(pm25),
        max_pm25=max(pm25, default=None),
        mean_pm10=_mean(pm10),
        max_pm10=max(pm10, default=None),
        exceedances=ind.exceedance_days(daily, REPORT_LIMITS),
        invalid_above=invalid_above,
    )


def _energy(values: list[float]) -> float | None:
    return ind.energy_mean(values) if values else None


def _noise_node(node: str, rows: list[Row]) -> NoiseNode:
    periods = {}
    for name in ("lday", "levening", "lnight"):
        periods[name] = _energy([float(row[name]) for row in rows if row.get(name) is not None])
    ld, le, ln = periods["lday"], periods["levening"], periods["lnight"]
    period_lden = (
        ind.lden(ld, le, ln) if ld is not None and le is not None and ln is not None else None
    )
    daily_lden = [float(row["lden"]) for row in rows if row.get("lden") is not None]
    return NoiseNode(
        node=node,
        days=len(rows),
        valid_days=len(daily_lden),
        lday=ld,
        levening=le,
        lnight=ln,
        lden=period_lden,
        days_lden_above=sum(1 for v in daily_lden if v >= ind.WHO_2018_ROAD_LDEN_DB),
        who=ind.compare_who_road(period_lden, ln),
    )


def _by_node(rows: Sequence[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(str(row["node"]), []).append(row)
    return dict(sorted(out.items()))


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"


def _limit_name(limit: ind.DailyLimit) -> str:
    if limit.key.startswith("who"):
        return f"the WHO 2021 24-hour guideline of {limit.value:g} µg/m³"
    allowed = limit.allowed_per_year
    tolerated = f" (which tolerates {allowed} such days a year)" if allowed is not None else ""
    return f"the EU daily limit from 2030 of {limit.value:g} µg/m³{tolerated}"


def _air_sentences(air: Sequence[AirNode], area_days: Sequence[AreaDays]) -> list[str]:
    if not air:
        return ["No air-quality readings were recorded in this period."]
    node_days = sum(n.days for n in air)
    valid = sum(n.valid_days for n in air)
    invalid = node_days - valid
    out = [
        f"{_nodes(len(air))} measured particulate matter on {node_days} node-days; "
        f"{valid} of them were complete enough to count (at least 75 % of the expected "
        f"readings)"
        + (
            f" and {invalid} {'was' if invalid == 1 else 'were'} incomplete: shown, but not "
            "counted below."
            if invalid
            else "."
        )
    ]
    # A limit with the same pollutant and value as one before it (WHO and EU 2030 PM10 are
    # both 45 µg/m³) is named in the same sentence instead of a second one.
    same: dict[tuple[str, float], list[ind.DailyLimit]] = {}
    for entry in area_days:
        same.setdefault((entry.limit.pollutant, entry.limit.value), []).append(entry.limit)
    for entry in area_days:
        limit = entry.limit
        group = same[(limit.pollutant, limit.value)]
        if group[0] is not limit:
            continue
        name = POLLUTANT_LABEL[limit.pollutant]
        what = _limit_name(limit) + "".join(
            f", which is also {_limit_name(other)}".replace(f" of {other.value:g} µg/m³", "")
            for other in group[1:]
        )
        if not entry.days:
            out.append(f"{name}: no valid daily mean was above {what}.")
        else:
            nodes_over = [n.node for n in air if n.exceedances[limit.key].count]
            node_days_over = sum(n.exceedances[limit.key].count for n in air)
            out.append(
                f"{name}: on {_days(len(entry.days))} the daily mean of at least one node was "
                f"above {what} ({node_days_over} node-days, at {_nodes(len(nodes_over))}: "
                f"{', '.join(nodes_over)})."
            )
        above = sum(n.invalid_above[limit.key] for n in air)
        if above:
            out.append(
                f"A further {_days(above)} with incomplete data had a {name} mean above "
                f"{limit.value:g} µg/m³: shown, but not counted."
            )
    return out


def _noise_sentences(noise: Sequence[NoiseNode]) -> list[str]:
    if not noise:
        return ["No noise readings were recorded in this period."]
    known = [n for n in noise if n.lden is not None]
    if not known:
        return [
            f"{_nodes(len(noise))} measured noise, but no day had enough readings in each of "
            "the day, evening and night periods to give an Lden."
        ]
    lden_over = [n.node for n in known if n.who.who_lden_exceeded]
    lnight_over = [n.node for n in noise if n.who.who_lnight_exceeded]
    out = [
        f"Noise: at {len(lden_over)} of {_nodes(len(known))} with an Lden for the period, it was "
        f"at or above the WHO 2018 road-traffic value of {ind.WHO_2018_ROAD_LDEN_DB:g} dB"
        + (f" ({', '.join(lden_over)})." if lden_over else "."),
        f"Lnight was at or above the WHO 2018 road-traffic value of "
        f"{ind.WHO_2018_ROAD_LNIGHT_DB:g} dB at {len(lnight_over)} of "
        f"{_nodes(sum(1 for n in noise if n.lnight is not None))}"
        + (f" ({', '.join(lnight_over)})." if lnight_over else "."),
    ]
    return out


def summarise(data: ReportData) -> Summary:
    air = tuple(_air_node(node, rows) for node, rows in _by_node(data.air_daily).items())
    noise = tuple(_noise_node(node, rows) for node, rows in _by_node(data.noise_daily).items())
    area_days = tuple(
        AreaDays(
            limit,
            tuple(sorted({day for n in air for day in n.exceedances[limit.key].days})),
        )
        for limit in REPORT_LIMITS
    )
    sentences = (*_air_sentences(air, area_days), *_noise_sentences(noise))
    return Summary(air, noise, area_days, sentences)
