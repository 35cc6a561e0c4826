"""Planner reports: one area over one period, as self-contained HTML or as PDF.

:func:`write_report` reads the area's readings (``collect``), computes its key numbers
(``summary``, from ``ingest.aggregate`` and ``ingest.indicators``), draws the plots
(``plots_*``), renders the HTML (``render``) and, for a ``.pdf``, prints it with headless
Chromium (``pdf``). See ``docs/report.md``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ingest.influx import InfluxHTTP
from ingest.registry import Registry
from ingest.report.collect import (
    EmptyPeriodError,
    ReportData,
    ReportError,
    ReportRequest,
    UnknownAreaError,
    collect,
)
from ingest.report.pdf import (
    ChromiumFailedError,
    ChromiumMissingError,
    PdfError,
    find_chromium,
    html_to_pdf,
)
from ingest.report.render import PLOT_KEYS, render_html

FORMATS = (".html", ".pdf")


class UnknownFormatError(ReportError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: the report's file name must end in .html or .pdf")
        self.path = path


def write_html(data: ReportData, out: Path) -> None:
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(render_html(data), encoding="utf-8")
    partial.replace(out)


def write_report(
    influx: InfluxHTTP, registry: Registry, request: ReportRequest, out: Path
) -> ReportData:
    """Make the report of ``request`` as ``out`` (HTML or PDF by its suffix)."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise UnknownFormatError(out)
    if suffix == ".pdf":
        find_chromium()  # before the work: a missing Chromium is known at once
    data = collect(influx, registry, request)
    if suffix == ".html":
        write_html(data, out)
    else:
        with tempfile.TemporaryDirectory(prefix="commons-report-") as folder:
            html = Path(folder) / "report.html"
            write_html(data, html)
            html_to_pdf(html, out)
    return data


__all__ = [
    "PLOT_KEYS",
    "ChromiumFailedError",
    "ChromiumMissingError",
    "EmptyPeriodError",
    "PdfError",
    "ReportData",
    "ReportError",
    "ReportRequest",
    "UnknownAreaError",
    "UnknownFormatError",
    "collect",
    "render_html",
    "write_report",
]
