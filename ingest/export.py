"""Exports for planners: readings as CSV, streamed from InfluxDB in constant memory.

The file starts with ``#`` comment lines that carry the licence, the attribution, the exact
InfluxQL queries, the export time and the software version, then one header row and one row
per reading. Columns are fixed, so files from different exports line up: time (ISO 8601 UTC),
measurement, node, area, every air and noise field of the contract, then seq, fw, qa and the
flags decoded from qa (``;``-joined). Values are written exactly as stored; a field a
measurement does not have is left empty.
"""

from __future__ import annotations

import csv
import functools
import logging
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from tqdm import tqdm

from commons import __version__
from commons.contract import AIR_FIELDS, NOISE_FIELDS, Kind, flags_from_bitmask
from ingest.influx import InfluxHTTP, quote_ident, quote_string
from ingest.schema import MEASUREMENT, RAW_RP, TAG_AREA, TAG_NODE

log = logging.getLogger(__name__)

DEFAULT_LICENCE = "ODbL-1.0"
LICENCE_URLS = {
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
    "ODC-By-1.0": "https://opendatacommons.org/licenses/by/1-0/",
    "PDDL-1.0": "https://opendatacommons.org/licenses/pddl/1-0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}
ATTRIBUTION = "Sensor Commons contributors"
# Rows per chunk of the /query answer. Each chunk is one JSON line, and requests'
# iter_lines joins a long line from 512-byte pieces at a cost that grows with the square of
# its length: at 10,000 rows per chunk the transfer took 7x longer than at 1,000 (measured on
# InfluxDB 1.6.7, 300,000 air readings).
EXPORT_CHUNK_SIZE = 1000

# The measurements of readings, in export order.
EXPORTED_MEASUREMENTS = (MEASUREMENT[Kind.AIR], MEASUREMENT[Kind.NOISE])
VALUE_COLUMNS = tuple(spec.name for spec in (*AIR_FIELDS, *NOISE_FIELDS))
COLUMNS = (
    "time",
    "measurement",
    TAG_NODE,
    TAG_AREA,
    *VALUE_COLUMNS,
    "seq",
    "fw",
    "qa",
    "flags",
)
# Stored columns that are not copied as they are: the time is formatted, tags are columns.
_STORED_COLUMNS = frozenset((*VALUE_COLUMNS, "seq", "fw", "qa", TAG_NODE, TAG_AREA))


class ExportRangeError(ValueError):
    """The time range of an export is empty or reversed."""

    def __init__(self, start: datetime, end: datetime) -> None:
        super().__init__(f"start {iso_utc(start)} is not before end {iso_utc(end)}")
        self.start = start
        self.end = end


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` (fractions of a second only when there are some)."""
    moment = as_utc(moment)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return moment.strftime(pattern)


def _time_cell(epoch_s: int | float) -> str:
    return iso_utc(datetime.fromtimestamp(epoch_s, UTC))


def _where(start: datetime, end: datetime, node: str | None, area: str | None) -> str:
    parts = [f"time >= {quote_string(iso_utc(start))}", f"time < {quote_string(iso_utc(end))}"]
    if node is not None:
        parts.append(f"{quote_ident(TAG_NODE)} = {quote_string(node)}")
    if area is not None:
        parts.append(f"{quote_ident(TAG_AREA)} = {quote_string(area)}")
    return " AND ".join(parts)


def _source(database: str, measurement: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(RAW_RP)}.{quote_ident(measurement)}"


def export_queries(
    database: str, start: datetime, end: datetime, node: str | None, area: str | None
) -> list[str]:
    """The InfluxQL of an export: one query per measurement, in export order."""
    where = _where(start, end, node, area)
    return [f"SELECT * FROM {_source(database, m)} WHERE {where}" for m in EXPORTED_MEASUREMENTS]


def count_query(
    database: str, start: datetime, end: datetime, node: str | None, area: str | None
) -> str:
    """A cheap row count for the progress bar: every reading carries ``qa``."""
    where = _where(start, end, node, area)
    sources = ", ".join(_source(database, m) for m in EXPORTED_MEASUREMENTS)
    return f"SELECT count({quote_ident('qa')}) FROM {sources} WHERE {where}"


def header_lines(licence: str, queries: Sequence[str], exported_at: datetime) -> list[str]:
    """The ``#`` comment lines at the top of an export."""
    url = LICENCE_URLS.get(licence)
    lines = [
        "# Sensor Commons data export",
        f"# licence: {licence}" + (f" {url}" if url else ""),
        f"# attribution: {ATTRIBUTION}",
        f"# exported: {iso_utc(exported_at)}",
        f"# software: sensor-commons {__version__}",
        "# time: the reading's timestamp in UTC; units of the values: message contract v1",
        "# flags: QA flags decoded from the qa bitmask, ';'-joined",
    ]
    lines.extend(f"# query: {q}" for q in queries)
    return [_one_line(line) for line in lines]


def _one_line(text: str) -> str:
    """``text`` with line breaks escaped, so a filter or licence given on the command line
    cannot end a comment line early (stored tag values never hold line breaks)."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _approximate_rows(influx: InfluxHTTP, q: str) -> int:
    total = 0
    for series in influx.series(q):
        column = series["columns"].index("count")
        total += sum(int(values[column] or 0) for values in series.get("values", []))
    return total


def _chunks(
    influx: InfluxHTTP, q: str, measurement: str, chunk_size: int
) -> Iterator[list[list[object]]]:
    """CSV rows of one query, one list per chunk of the answer (at most ``chunk_size``)."""
    skipped: set[str] = set()
    for series in influx.stream(q, chunk_size=chunk_size):
        columns: list[str] = series["columns"]
        index = {name: i for i, name in enumerate(columns)}
        unknown = set(columns) - _STORED_COLUMNS - {"time"} - skipped
        if unknown:
            # Fields newer than this exporter: named in the log rather than silently lost.
            log.warning("%s: fields not in the export's columns: %s", measurement, sorted(unknown))
            skipped |= unknown
        time_at = index["time"]
        qa_at = index.get("qa")
        picks = [index.get(name) for name in (TAG_NODE, TAG_AREA, *VALUE_COLUMNS, "seq", "fw")]
        rows: list[list[object]] = []
        for values in series.get("values", []):
            row: list[object] = [_time_cell(values[time_at]), measurement]
            row.extend(_cell(values[i]) if i is not None else "" for i in picks)
            qa = values[qa_at] if qa_at is not None else None
            row.append(_cell(qa))
            row.append(_flags_text(int(qa)) if qa is not None else "")
            rows.append(row)
        yield rows


@functools.lru_cache(maxsize=1024)
def _flags_text(qa: int) -> str:
    # Few distinct bitmasks occur; decoding each once keeps the per-row cost down.
    return ";".join(flags_from_bitmask(qa))


def _cell(value: Any) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    return value


def export_csv(
    influx: InfluxHTTP,
    out: IO[str],
    start: datetime,
    end: datetime,
    node: str | None = None,
    area: str | None = None,
    licence: str = DEFAULT_LICENCE,
    progress: bool = False,
    chunk_size: int = EXPORT_CHUNK_SIZE,
) -> int:
    """Write the readings of ``[start, end)`` as CSV to ``out``; return the number of rows.

    ``node`` and ``area`` narrow the export to one node or one neighbourhood. Naive datetimes
    are taken as UTC. With ``progress``, a bar on standard error shows rows written against an
    approximate total, when standard error is a terminal.
    """
    if as_utc(start) >= as_utc(end):
        raise ExportRangeError(start, end)
    queries = export_queries(influx.database, start, end, node, area)
    for line in header_lines(licence, queries, datetime.now(UTC).replace(microsecond=0)):
        out.write(line + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)

    show = progress and sys.stderr.isatty()
    total = (
        _approximate_rows(influx, count_query(influx.database, start, end, node, area))
        if show
        else None
    )
    rows = 0
    with tqdm(total=total, disable=not show, file=sys.stderr, unit=" rows") as bar:
        for measurement, q in zip(EXPORTED_MEASUREMENTS, queries, strict=True):
            log.debug("%s", q)
            for chunk in _chunks(influx, q, measurement, chunk_size):
                writer.writerows(chunk)
                rows += len(chunk)
                bar.update(len(chunk))
    out.flush()
    return rows
