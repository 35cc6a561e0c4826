"""Raw readings of one area and time range from InfluxDB, as the rows :func:`aggregate` takes.

The query groups by node, so InfluxDB answers each node's readings in time order, one node
after another: the order :func:`ingest.aggregate.aggregate` needs. The answer is streamed in
chunks, so a long period never sits in memory as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from ingest.aggregate import Row
from ingest.influx import InfluxHTTP, quote_ident, quote_string
from ingest.schema import MEASURED_FIELDS, RAW_RP, TAG_AREA, TAG_NODE

# Rows per chunk of the /query answer (see ingest.export for why it is small).
CHUNK_SIZE = 1000


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_query(database: str, measurement: str, area: str, start: datetime, end: datetime) -> str:
    """The InfluxQL that reads ``measurement`` of ``area`` in ``[start, end)``, by node."""
    fields = ", ".join(quote_ident(name) for name in (*MEASURED_FIELDS[measurement], "qa"))
    source = f"{quote_ident(database)}.{quote_ident(RAW_RP)}.{quote_ident(measurement)}"
    return (
        f"SELECT {fields}, {quote_ident(TAG_AREA)} FROM {source}"
        f" WHERE time >= {quote_string(_rfc3339(start))} AND time < {quote_string(_rfc3339(end))}"
        f" AND {quote_ident(TAG_AREA)} = {quote_string(area)}"
        f" GROUP BY {quote_ident(TAG_NODE)}"
    )


def raw_rows(
    influx: InfluxHTTP, measurement: str, area: str, start: datetime, end: datetime
) -> Iterator[Row]:
    """Readings as rows: ``time`` (UTC), ``node``, ``area``, the fields, ``qa`` (int)."""
    q = raw_query(influx.database, measurement, area, start, end)
    for series in influx.stream(q, chunk_size=CHUNK_SIZE):
        node = str(series.get("tags", {}).get(TAG_NODE, ""))
        columns: list[str] = series["columns"]
        for values in series.get("values", []):
            row: Row = dict(zip(columns, values, strict=True))
            row["time"] = datetime.fromtimestamp(row["time"], UTC)
            row[TAG_NODE] = node
            row["qa"] = int(row.get("qa") or 0)
            yield row
