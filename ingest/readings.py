"""Readings of one node and measurement, streamed out of InfluxDB in constant memory.

Each node's readings are read in time windows (:data:`WINDOW`), each window one chunked
InfluxQL query ordered by time, so neither the server nor this process ever holds more than
a chunk; the windows cover only the span between the node's first and last reading in the
range. Rows come out as dicts: ``time`` (tz-aware UTC), ``node``, ``area`` and every stored
field that has a value (a field a reading does not carry is absent, never invented).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.export_time import as_utc, iso_utc
from ingest.influx import InfluxHTTP, quote_ident, quote_string
from ingest.schema import RAW_RP, TAG_AREA, TAG_NODE

log = logging.getLogger(__name__)

Row = dict[str, Any]
# Rows per chunk of the /query answer. Each chunk is one JSON line, and requests'
# iter_lines joins a long line from 512-byte pieces at a cost that grows with the square of
# its length: at 10,000 rows per chunk the transfer took 7x longer than at 1,000 (measured on
# InfluxDB 1.6.7, 300,000 air readings).
CHUNK_SIZE = 1000
# Time span of one query: bounds what the server gathers for one statement.
WINDOW = timedelta(days=31)
# Every reading of every exported measurement carries the qa bitmask: its first and last
# values give the span of a node's readings.
PRESENT_FIELD = "qa"


def source(database: str, measurement: str, rp: str = RAW_RP) -> str:
    return f"{quote_ident(database)}.{quote_ident(rp)}.{quote_ident(measurement)}"


def node_condition(node: str, start: datetime, end: datetime, area: str | None = None) -> str:
    parts = [
        f"{quote_ident(TAG_NODE)} = {quote_string(node)}",
        f"time >= {quote_string(iso_utc(start))}",
        f"time < {quote_string(iso_utc(end))}",
    ]
    if area is not None:
        parts.append(f"{quote_ident(TAG_AREA)} = {quote_string(area)}")
    return " AND ".join(parts)


def span(
    influx: InfluxHTTP,
    measurement: str,
    node: str,
    start: datetime,
    end: datetime,
    area: str | None = None,
) -> tuple[datetime, datetime] | None:
    """The first reading's time and one second past the last one's, within ``[start, end)``;
    None when the node has no reading there."""
    src = source(influx.database, measurement)
    where = node_condition(node, start, end, area)
    field = quote_ident(PRESENT_FIELD)
    q = "; ".join(f"SELECT {f}({field}) FROM {src} WHERE {where}" for f in ("first", "last"))
    times: list[int] = []
    for result in influx.query(q):
        for series in result.get("series", []):
            times.extend(int(values[0]) for values in series.get("values", []))
    if len(times) != 2:
        return None
    return datetime.fromtimestamp(times[0], UTC), datetime.fromtimestamp(times[1] + 1, UTC)


def windows(
    start: datetime, end: datetime, width: timedelta = WINDOW
) -> Iterator[tuple[datetime, datetime]]:
    moment = as_utc(start)
    end = as_utc(end)
    while moment < end:
        stop = min(moment + width, end)
        yield moment, stop
        moment = stop


def window_query(database: str, measurement: str, condition: str) -> str:
    return f"SELECT * FROM {source(database, measurement)} WHERE {condition} ORDER BY time ASC"


def node_readings(
    influx: InfluxHTTP,
    measurement: str,
    node: str,
    start: datetime,
    end: datetime,
    *,
    area: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    window: timedelta = WINDOW,
    on_rows: Callable[[int], object] = lambda n: None,
) -> Iterator[Row]:
    """``node``'s readings of ``measurement`` in ``[start, end)``, in time order.

    ``on_rows(n)`` is called after each chunk with its number of rows (progress).
    """
    covered = span(influx, measurement, node, start, end, area)
    if covered is None:
        return
    for window_start, window_end in windows(covered[0], covered[1], window):
        q = window_query(
            influx.database, measurement, node_condition(node, window_start, window_end, area)
        )
        for series in influx.stream(q, chunk_size=chunk_size):
            columns: list[str] = series["columns"]
            values_list: list[list[Any]] = series.get("values", [])
            for values in values_list:
                row: Row = {
                    name: value
                    for name, value in zip(columns, values, strict=True)
                    if value is not None
                }
                row["time"] = datetime.fromtimestamp(row["time"], UTC)
                row.setdefault(TAG_AREA, None)
                yield row
            on_rows(len(values_list))


def count_readings(influx: InfluxHTTP, measurements: tuple[str, ...], where: str) -> int:
    """How many readings a condition holds (for a progress bar's total)."""
    sources = ", ".join(source(influx.database, m) for m in measurements)
    q = f"SELECT count({quote_ident(PRESENT_FIELD)}) FROM {sources} WHERE {where}"
    total = 0
    for series in influx.series(q):
        column = series["columns"].index("count")
        total += sum(int(values[column] or 0) for values in series.get("values", []))
    return total
