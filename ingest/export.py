"""Exports for planners: readings or their hourly/daily means as CSV, Parquet or GeoJSON,
streamed from InfluxDB in constant memory.

The path of every row: InfluxDB (per node and time window, chunked; :mod:`ingest.readings`)
→ storage-side QA flags (:mod:`ingest.qa`) → hourly or daily means and indicators
(:mod:`ingest.aggregate`) → corrected values beside the raw ones (:mod:`ingest.calibration`)
→ the writer (:mod:`ingest.writers`). Nothing on the way holds more than one node-day.

Columns of CSV and Parquet: ``time`` (in the export's time zone, with its offset),
``measurement``, ``node``, ``area``, the value columns of each measurement at the level
(:func:`ingest.aggregate.columns`), ``seq`` and ``fw`` for raw readings, ``qa`` and
``flags`` (its bits by name, ``;``-joined), the corrected columns the loaded calibrations
produce (``<field>_corrected``) and ``calibration`` (``id@version``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from tqdm import tqdm

from commons.contract import STATUS_TEXT_FIELDS, Kind, flags_from_bitmask
from ingest import aggregate as agg
from ingest.calibration import CALIBRATION_COLUMN, Calibrations, Calibrator
from ingest.export_time import iso_utc
from ingest.exportconfig import ExportSettings
from ingest.influx import InfluxHTTP
from ingest.provenance import Provenance, write_sidecar
from ingest.qa import flag_node, rules_for
from ingest.readings import CHUNK_SIZE, count_readings, node_readings
from ingest.registry import Registry
from ingest.schema import FIELD_LAT, FIELD_LON, MEASUREMENT, TAG_AREA, TAG_NODE
from ingest.selection import ExportNode, Selection, resolve
from ingest.writers import Block, Written, write_csv, write_geojson, write_parquet

Level = Literal["raw", "hourly", "daily"]
Format = Literal["csv", "geojson", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "geojson", "parquet")
LEVELS: tuple[Level, ...] = ("raw", "hourly", "daily")
# The measurements of readings planners export, in export order.
READING_MEASUREMENTS = (MEASUREMENT[Kind.AIR], MEASUREMENT[Kind.NOISE])
STATUS_MEASUREMENT = MEASUREMENT[Kind.STATUS]
# Measurements the storage-side QA rules know (status points keep the node's own flags).
_QA_MEASUREMENTS = frozenset(READING_MEASUREMENTS)
_LEAD = ("time", "measurement", TAG_NODE, TAG_AREA)
_TAIL = ("qa", "flags")


class StdoutFormatError(ValueError):
    def __init__(self, fmt: str) -> None:
        super().__init__(f"--format {fmt} cannot go to standard output: give --out FILE")
        self.fmt = fmt


@dataclass(frozen=True)
class ExportRequest:
    selection: Selection
    fmt: Format = "csv"
    level: Level = "raw"
    indicators: bool = False
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ExportResult:
    rows: int
    nodes: int
    out: Path | None  # None: standard output
    sidecar: Path | None
    provenance: Provenance


def measurement_columns(measurement: str, level: Level, indicators: bool) -> list[str]:
    """Columns of one measurement at ``level`` (from :func:`ingest.aggregate.columns`)."""
    names = agg.columns(measurement, level, indicators)
    if measurement == STATUS_MEASUREMENT and level == "raw":
        at = names.index("seq")
        names[at:at] = [*STATUS_TEXT_FIELDS, FIELD_LAT, FIELD_LON]
    return names


def flat_columns(
    measurements: Sequence[str], level: Level, indicators: bool, calibrators: dict[str, Calibrator]
) -> list[str]:
    """One column list for every measurement of a CSV or Parquet export."""
    out: list[str] = list(_LEAD)
    for measurement in measurements:
        for name in measurement_columns(measurement, level, indicators):
            if name not in out and name not in _TAIL:
                out.append(name)
    out.extend(_TAIL)
    for measurement in measurements:
        for name in calibrators[measurement].columns:
            if name not in out and name != CALIBRATION_COLUMN:
                out.append(name)
    out.append(CALIBRATION_COLUMN)
    return out


def feature_columns(
    measurements: Sequence[str], level: Level, indicators: bool, calibrators: dict[str, Calibrator]
) -> dict[str, list[str]]:
    """Per measurement, the row columns of a GeoJSON feature (the node is the feature's)."""
    out: dict[str, list[str]] = {}
    for measurement in measurements:
        names = [n for n in measurement_columns(measurement, level, indicators) if n != TAG_NODE]
        names.append("flags")
        names.extend(calibrators[measurement].columns)
        out[measurement] = names
    return out


@functools.lru_cache(maxsize=1024)
def flags_text(qa: int) -> str:
    # Few distinct bitmasks occur; decoding each once keeps the per-row cost down.
    return ";".join(flags_from_bitmask(qa))


class Pipeline:
    """The rows of one node and measurement, from InfluxDB to the writer."""

    def __init__(
        self,
        influx: InfluxHTTP,
        selection: Selection,
        request: ExportRequest,
        settings: ExportSettings,
        calibrators: dict[str, Calibrator],
        chunk_size: int = CHUNK_SIZE,
        on_rows: Callable[[int], object] = lambda n: None,
    ) -> None:
        self.influx = influx
        self.selection = selection
        self.request = request
        self.settings = settings
        self.calibrators = calibrators
        self.chunk_size = chunk_size
        self.on_rows = on_rows
        # Per node, the firmware versions of the readings read (provenance; a few each).
        self.firmware: dict[str, set[str]] = {}

    def rows(self, node: ExportNode, measurement: str) -> Iterator[dict[str, Any]]:
        rows: Iterator[dict[str, Any]] = node_readings(
            self.influx,
            measurement,
            node.id,
            self.selection.start,
            self.selection.end,
            area=self.selection.area,
            chunk_size=self.chunk_size,
            on_rows=self.on_rows,
        )
        rows = _noting_firmware(rows, self.firmware.setdefault(node.id, set()))
        if measurement in _QA_MEASUREMENTS:
            rows = flag_node(
                rows, measurement, rules=rules_for(node.pm_sensor), interval=node.interval
            )
        if self.request.level != "raw":
            rows = agg.aggregate(
                rows,
                measurement,
                self.request.level,
                self.settings.tz,
                indicators=self.request.indicators,
                interval=lambda _: node.interval,
            )
        calibrator = self.calibrators[measurement]
        calibrated = bool(calibrator.fields)  # else the only column is an empty calibration
        for row in rows:
            if calibrated:
                row.update(calibrator.apply(row))
            else:
                row[CALIBRATION_COLUMN] = None
            row["measurement"] = measurement
            row["flags"] = flags_text(int(row.get("qa") or 0))
            yield row

    def blocks(self) -> Iterator[Block]:
        """Sorted by node, then measurement (in the selection's order), then time."""
        for node in self.selection.resolved or ():
            for measurement in self.selection.measurements:
                yield Block(node, measurement, self.rows(node, measurement))


def _noting_firmware(rows: Iterator[dict[str, Any]], seen: set[str]) -> Iterator[dict[str, Any]]:
    for row in rows:
        fw = row.get("fw")
        if fw is not None:
            seen.add(fw)
        yield row


def filters(selection: Selection) -> dict[str, Any]:
    return {
        "start": iso_utc(selection.start),
        "end": iso_utc(selection.end),
        "nodes": list(selection.nodes),
        "area": selection.area,
        "bbox": None if selection.bbox is None else str(selection.bbox),
    }


def export(
    influx: InfluxHTTP,
    registry: Registry | None,
    request: ExportRequest,
    settings: ExportSettings,
    calibrations: Calibrations,
    out: Path | None,
    *,
    stdout: IO[str] | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> ExportResult:
    """Write the export ``request`` asks for to ``out`` (atomically) and its sidecar, or to
    ``stdout`` when ``out`` is None (CSV and GeoJSON only; no sidecar).

    Raises :class:`ingest.selection.SelectionError` for filters that select nothing that
    exists, before anything is written.
    """
    if out is None and request.fmt == "parquet":
        raise StdoutFormatError(request.fmt)
    selection = resolve(request.selection, influx, registry)
    measurements = selection.measurements
    calibrators = {m: calibrations.calibrator(m) for m in measurements}
    flat = flat_columns(measurements, request.level, request.indicators, calibrators)
    provenance = Provenance(
        settings=settings,
        generated=datetime.now(UTC).replace(microsecond=0),
        fmt=request.fmt,
        level=request.level,
        measurements=measurements,
        filters=filters(selection),
        queries=selection.queries(influx.database),
        calibrations=calibrations.describe(),
        columns=flat,
        indicators=request.indicators,
        notes=request.notes,
    )
    show = progress and sys.stderr.isatty()
    total = count_readings(influx, measurements, selection.where()) if show else None
    with tqdm(total=total, disable=not show, file=sys.stderr, unit=" readings") as bar:
        pipeline = Pipeline(
            influx, selection, request, settings, calibrators, chunk_size, bar.update
        )
        if out is None:
            assert stdout is not None
            written = _write_text(stdout, request, provenance, pipeline, flat, calibrators)
            return ExportResult(written.rows, written.nodes, None, None, provenance)
        written = _write_file(out, request, provenance, pipeline, flat, calibrators)
    firmware = {node: versions for node, versions in pipeline.firmware.items() if versions}
    sidecar = write_sidecar(out, provenance, written.rows, written.nodes, firmware)
    return ExportResult(written.rows, written.nodes, out, sidecar, provenance)


def _write_text(
    stream: IO[str],
    request: ExportRequest,
    provenance: Provenance,
    pipeline: Pipeline,
    flat: list[str],
    calibrators: dict[str, Calibrator],
) -> Written:
    if request.fmt == "geojson":
        per_measurement = feature_columns(
            provenance.measurements, request.level, request.indicators, calibrators
        )
        return write_geojson(stream, provenance, per_measurement, pipeline.blocks())
    return write_csv(stream, provenance, flat, pipeline.blocks())


def _write_file(
    out: Path,
    request: ExportRequest,
    provenance: Provenance,
    pipeline: Pipeline,
    flat: list[str],
    calibrators: dict[str, Calibrator],
) -> Written:
    """Into a temporary file beside ``out``, renamed into place once complete."""
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if request.fmt == "parquet":
            with temporary.open("wb") as binary:
                written = write_parquet(binary, provenance, flat, pipeline.blocks())
        else:
            with temporary.open("w", encoding="utf-8", newline="") as text:
                written = _write_text(text, request, provenance, pipeline, flat, calibrators)
        temporary.replace(out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return written


def export_csv(
    influx: InfluxHTTP,
    out: IO[str],
    start: datetime,
    end: datetime,
    node: str | None = None,
    area: str | None = None,
    licence: str | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
    registry: Registry | None = None,
) -> int:
    """Raw readings of ``[start, end)`` as CSV to ``out`` (no sidecar); the number of rows.

    Settings (time zone, licence, attribution) and calibrations come from their default files.
    """
    from ingest.calibration import load

    selection = Selection(start, end, READING_MEASUREMENTS, (node,) if node else (), area)
    settings = ExportSettings.load().overridden(licence=licence)
    result = export(
        influx,
        registry,
        ExportRequest(selection),
        settings,
        load(),
        None,
        stdout=out,
        progress=progress,
        chunk_size=chunk_size,
    )
    return result.rows
