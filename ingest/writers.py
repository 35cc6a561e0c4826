"""Export writers: rows in, file out, one row (or one Parquet row group) in memory at a time.

Every writer consumes an iterator of :class:`Block` (one node's rows of one measurement, the
blocks sorted by node) and returns what it wrote. Columns are fixed before the first row, so
files of different exports line up; a value a row does not have is left empty (CSV), null
(Parquet, GeoJSON).

GeoJSON layout: one Feature per node that has rows, at the node's public location (a Point,
``[lon, lat]``; ``null`` geometry for a node that has no public location). Its properties are
``node``, ``area`` (of its first row), ``row_count``, and per measurement
``{"columns": [...], "rows": [[...], ...]}``: the node's time series as rows of values in the
order of the columns (pandas reads it as ``DataFrame(rows, columns=columns)``). Features are
written as their rows arrive, so a long series never sits in memory.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.export_time import UTC_NAMES, iso_utc
from ingest.provenance import Provenance
from ingest.selection import ExportNode

log = logging.getLogger(__name__)

Row = dict[str, Any]
# Rows per Parquet row group: bounds the rows held as Python objects before a group is written.
ROW_GROUP_ROWS = 16_384
PARQUET_METADATA_KEY = b"sensor_commons"

_STRING_COLUMNS = frozenset(
    {
        "measurement",
        "node",
        "area",
        "fw",
        "flags",
        "calibration",
        "aqi_category",
        "eaqi_band",
        "reset_cause",
        "state",
    }
)
_INT_COLUMNS = frozenset({"seq", "qa", "n", "aqi", "aqi_pm25", "aqi_pm10"})
_BOOL_COLUMNS = frozenset(
    {
        "valid",
        "who_pm25_exceeded",
        "who_pm10_exceeded",
        "eu2030_pm25_exceeded",
        "eu2030_pm10_exceeded",
    }
)


@dataclass(frozen=True)
class Block:
    node: ExportNode
    measurement: str
    rows: Iterator[Row]


@dataclass(frozen=True)
class Written:
    rows: int
    nodes: int


class _Extra:
    """Logs, once per name, the row keys a file has no column for (newer fields)."""

    def __init__(self, columns: Iterable[str]) -> None:
        self.known = set(columns)
        self.reported: set[str] = set()

    def check(self, row: Row) -> None:
        if len(row) <= len(self.known) and self.known.issuperset(row):
            return
        new = set(row) - self.known - self.reported
        if new:
            log.warning("values without a column in this export: %s", sorted(new))
            self.reported |= new


def time_formatter(tz: tzinfo) -> Callable[[datetime], str]:
    """RFC 3339 text of an instant in ``tz`` (``Z`` for UTC), decided once per export."""
    if str(tz) in UTC_NAMES:
        return iso_utc
    return lambda moment: moment.astimezone(tz).isoformat()


def write_csv(
    out: IO[str], provenance: Provenance, columns: Sequence[str], blocks: Iterable[Block]
) -> Written:
    """CSV after the provenance's ``#`` lines. Floats are written as ``repr`` does (the
    shortest text that reads back as the same float), None as an empty cell, booleans as
    True/False: the csv module's own conversions."""
    as_text = time_formatter(provenance.settings.tz)
    for line in provenance.header_lines():
        out.write(line + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    extra = _Extra(columns)
    at_time = list(columns).index("time")
    rows, nodes, last = 0, 0, None
    for block in blocks:
        for row in block.rows:
            extra.check(row)
            cells: list[Any] = [row.get(c) for c in columns]
            cells[at_time] = as_text(cells[at_time])
            writer.writerow(cells)
            rows += 1
            if block.node.id != last:
                nodes, last = nodes + 1, block.node.id
    out.flush()
    return Written(rows, nodes)


def arrow_type(column: str, tz: tzinfo) -> pa.DataType:
    if column == "time":
        return pa.timestamp("ms", tz=str(tz))  # Parquet has no seconds unit
    if column in _STRING_COLUMNS:
        return pa.string()
    if column in _INT_COLUMNS:
        return pa.int64()
    if column in _BOOL_COLUMNS:
        return pa.bool_()
    return pa.float64()


def arrow_schema(columns: Sequence[str], provenance: Provenance) -> pa.Schema:
    tz = provenance.settings.tz
    record = provenance.to_json()
    metadata = {
        PARQUET_METADATA_KEY: json.dumps(record, ensure_ascii=False).encode("utf-8"),
        b"licence": provenance.settings.licence.encode("utf-8"),
        b"attribution": provenance.settings.attribution.encode("utf-8"),
        b"software": f"{record['software']['name']} {record['software']['version']}".encode(),
        b"time_zone": str(tz).encode("utf-8"),
        b"generated": str(record["generated"]).encode("utf-8"),
        b"calibrations": ", ".join(provenance.calibration_tags).encode("utf-8"),
        b"query": "\n".join(provenance.queries).encode("utf-8"),
    }
    return pa.schema([pa.field(c, arrow_type(c, tz)) for c in columns], metadata=metadata)


def write_parquet(
    out: IO[bytes],
    provenance: Provenance,
    columns: Sequence[str],
    blocks: Iterable[Block],
    row_group_rows: int = ROW_GROUP_ROWS,
) -> Written:
    schema = arrow_schema(columns, provenance)
    extra = _Extra(columns)
    rows, nodes, last = 0, 0, None
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        batch: dict[str, list[Any]] = {c: [] for c in columns}
        pending = 0

        def flush() -> None:
            writer.write_table(pa.Table.from_pydict(batch, schema=schema))
            for values in batch.values():
                values.clear()

        for block in blocks:
            for row in block.rows:
                extra.check(row)
                for column in columns:
                    batch[column].append(row.get(column))
                pending += 1
                rows += 1
                if block.node.id != last:
                    nodes, last = nodes + 1, block.node.id
                if pending >= row_group_rows:
                    flush()
                    pending = 0
        if pending or rows == 0:
            flush()
    return Written(rows, nodes)


def write_geojson(
    out: IO[str],
    provenance: Provenance,
    columns: Mapping[str, Sequence[str]],
    blocks: Iterable[Block],
) -> Written:
    """``columns``: the row columns of each measurement (without ``node``)."""
    as_text = time_formatter(provenance.settings.tz)
    dump = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    out.write('{"type": "FeatureCollection",\n"metadata": ')
    out.write(dump(provenance.to_json()))
    out.write(',\n"features": [')
    rows = nodes = 0
    node_rows = 0
    current: str | None = None
    for block in blocks:
        first = next(block.rows, None)
        if first is None:
            continue
        if block.node.id != current:
            if current is not None:
                out.write(f'\n]}}, "row_count": {node_rows}}}}}')
            out.write(",\n" if nodes else "\n")
            out.write(_feature_head(block.node, first, dump))
            current, nodes, node_rows = block.node.id, nodes + 1, 0
            out.write(f"{dump(block.measurement)}: {{")
        else:
            out.write(f"\n]}}, {dump(block.measurement)}: {{")
        names = columns[block.measurement]
        at_time = list(names).index("time")
        out.write(f'"columns": {dump(list(names))}, "rows": [')
        separator = "\n"
        for row in _chain(first, block.rows):
            out.write(separator)
            cells: list[Any] = [row.get(c) for c in names]
            cells[at_time] = as_text(cells[at_time])
            out.write(dump(cells))
            separator = ",\n"
            node_rows += 1
            rows += 1
    if current is not None:
        out.write(f'\n]}}, "row_count": {node_rows}}}}}')
    out.write("\n]}\n")
    out.flush()
    return Written(rows, nodes)


def _feature_head(node: ExportNode, first: Row, dump: Any) -> str:
    geometry = (
        None
        if node.public is None
        else {"type": "Point", "coordinates": [node.public.lon, node.public.lat]}
    )
    return (
        f'{{"type": "Feature", "id": {dump(node.id)}, "geometry": {dump(geometry)}, '
        f'"properties": {{"node": {dump(node.id)}, "area": {dump(first.get("area"))}, '
    )


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest
