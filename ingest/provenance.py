"""What every export says about itself: licence, attribution, query, software, calibrations,
time zone and generation time.

The same record goes into the file where its format has room (CSV ``#`` comment lines,
Parquet schema metadata, a GeoJSON top-level member) and, always, into a sidecar
``FILE.meta.json`` written once the data is complete (it adds the row and node counts).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from commons import __version__
from commons.contract import AIR_FIELDS, NOISE_FIELDS, STATUS_FIELDS, Flag
from ingest.export_time import iso_utc
from ingest.exportconfig import ExportSettings

TITLE = "Sensor Commons data export"
SOFTWARE = "sensor-commons"
SIDECAR_SUFFIX = ".meta.json"
_UNITS = {spec.name: spec.unit for spec in (*AIR_FIELDS, *NOISE_FIELDS, *STATUS_FIELDS)}
_DERIVED_UNIT_SUFFIXES = ("_corrected", "_min", "_max")


def unit(column: str) -> str | None:
    """The unit of a value column (means, corrected values and bounds keep their field's)."""
    if column in _UNITS:
        return _UNITS[column]
    for suffix in _DERIVED_UNIT_SUFFIXES:
        if column.endswith(suffix) and column.removesuffix(suffix) in _UNITS:
            return _UNITS[column.removesuffix(suffix)]
    if column in ("lday", "levening", "lnight", "lden"):
        return "dB(A)"
    if column == "nowcast_pm25":
        return "µg/m³"
    return None


@dataclass(frozen=True)
class Provenance:
    settings: ExportSettings
    generated: datetime
    fmt: str
    level: str  # raw, hourly, daily
    measurements: Sequence[str]
    filters: dict[str, Any]  # start, end, nodes, area, bbox as given
    queries: Sequence[str]
    calibrations: Sequence[dict[str, Any]]  # every calibration loaded, described
    columns: Sequence[str]
    indicators: bool = False
    notes: Sequence[str] = field(default=())

    @property
    def calibration_tags(self) -> list[str]:
        return [f"{c['id']}@{c['version']}" for c in self.calibrations]

    def to_json(self) -> dict[str, Any]:
        units = {c: u for c in self.columns if (u := unit(c)) is not None}
        return {
            "title": TITLE,
            "licence": {"id": self.settings.licence, "url": self.settings.licence_url},
            "attribution": self.settings.attribution,
            "generated": iso_utc(self.generated),
            "software": {"name": SOFTWARE, "version": __version__},
            "time_zone": str(self.settings.tz),
            "format": self.fmt,
            "aggregate": self.level,
            "indicators": self.indicators,
            "measurements": list(self.measurements),
            "filters": self.filters,
            "queries": list(self.queries),
            "calibrations": list(self.calibrations),
            "calibration_versions": self.calibration_tags,
            "columns": list(self.columns),
            "units": units,
            "flags": {
                "column": "flags: the names of the bits set in qa, ';'-joined",
                "bits": {flag.value: flag.bit for flag in Flag},
            },
            "location": "public locations only: the centre of each node's grid cell",
            "notes": list(self.notes),
        }

    def header_lines(self) -> list[str]:
        """The ``#`` comment lines at the top of a CSV export."""
        url = self.settings.licence_url
        lines = [
            f"# {TITLE}",
            f"# licence: {self.settings.licence}" + (f" {url}" if url else ""),
            f"# attribution: {self.settings.attribution}",
            f"# exported: {iso_utc(self.generated)}",
            f"# software: {SOFTWARE} {__version__}",
            f"# time zone: {self.settings.tz} (times are RFC 3339 with their UTC offset)",
            f"# aggregate: {self.level}" + (" with indicators" if self.indicators else ""),
            "# calibrations: " + (", ".join(self.calibration_tags) or "none"),
            "# units: message contract v1; flags: QA flags decoded from qa, ';'-joined",
        ]
        lines.extend(f"# note: {note}" for note in self.notes)
        lines.extend(f"# query: {q}" for q in self.queries)
        return [one_line(line) for line in lines]


def one_line(text: str) -> str:
    """``text`` with line breaks escaped, so a filter or licence given on the command line
    cannot end a comment line early (stored tag values never hold line breaks)."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + SIDECAR_SUFFIX)


def write_sidecar(
    out: Path,
    provenance: Provenance,
    rows: int,
    nodes: int,
    firmware: Mapping[str, Iterable[str]] | None = None,
) -> Path:
    """``FILE.meta.json`` next to ``out``, written atomically; returns its path.

    ``firmware``: per node, the firmware versions of the readings the export read.
    """
    path = sidecar_path(out)
    record = {**provenance.to_json(), "file": out.name, "rows": rows, "nodes": nodes}
    if firmware is not None:
        record["firmware"] = {node: sorted(versions) for node, versions in firmware.items()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", "utf-8")
    temporary.replace(path)
    return path
