"""The InfluxQL of every panel: raw readings for recent ranges, hourly aggregates for long ones.

Raw readings live in the default retention policy (``raw``), hourly aggregates in
``"forever"."<measurement>_1h"`` (ingest/dbinit.py). Sound levels are never averaged
arithmetically: they are combined as energy means weighted by each reading's ``period``
(REFERENCE.md §1.4), with the subquery ingest/dbinit.py uses for the hourly aggregate.
"""

from __future__ import annotations

from dashboards.influxql import ident
from ingest.dbinit import hourly_measurement
from ingest.schema import HOURLY_RP, TAG_NODE

TIME_FILTER = "$timeFilter"
INTERVAL = "$__interval"
INTERVAL_MS = "$__interval_ms"


def source(measurement: str, hourly: bool) -> str:
    if hourly:
        return f"{ident(HOURLY_RP)}.{ident(hourly_measurement(measurement))}"
    return ident(measurement)


def _where(condition: str | None) -> str:
    return f"{condition} AND {TIME_FILTER}" if condition else TIME_FILTER


def _group(by_node: bool) -> str:
    return f"time({INTERVAL}), {ident(TAG_NODE)}" if by_node else f"time({INTERVAL})"


def mean_over_time(
    measurement: str,
    fields: list[str],
    condition: str | None,
    hourly: bool,
    by_node: bool,
) -> str:
    """Arithmetic means per ``$__interval`` (air and status values)."""
    select = ", ".join(f"mean({ident(f)}) AS {ident(f)}" for f in fields)
    return (
        f"SELECT {select} FROM {source(measurement, hourly)} WHERE {_where(condition)} "
        f"GROUP BY {_group(by_node)} fill(null)"
    )


def energy_mean_over_time(
    field: str, condition: str | None, hourly: bool, by_node: bool, measurement: str = "noise"
) -> str:
    """LAeq per ``$__interval``: ``10·lg(Σ periodᵢ·10^(Lᵢ/10) / Σ periodᵢ)``.

    On hourly data ``period`` is the seconds the hour's readings covered, so the combination is
    exact there too.
    """
    f, period = ident(field), ident("period")
    inner = (
        f"SELECT {period} * pow(10, {f} / 10) AS {ident('energy')}, "
        f"{period} + 0 * {f} AS {ident('seconds')} "
        f"FROM {source(measurement, hourly)} WHERE {_where(condition)}"
        + (f" GROUP BY {ident(TAG_NODE)}" if by_node else "")
    )
    return (
        f"SELECT 10 * log10(sum({ident('energy')}) / sum({ident('seconds')})) AS {f} "
        f"FROM ({inner}) WHERE {TIME_FILTER} GROUP BY {_group(by_node)} fill(null)"
    )


def per_node(select: str, measurement: str, condition: str | None, since: str | None) -> str:
    """One row per node over the range (``since``: a fixed ``now() - X`` window instead)."""
    window = f"time > now() - {since}" if since else TIME_FILTER
    where = f"{condition} AND {window}" if condition else window
    return f"SELECT {select} FROM {ident(measurement)} WHERE {where} GROUP BY {ident(TAG_NODE)}"
