"""The report as one self-contained HTML file: the summary, the plots as PNG ``data:`` URIs and
the tables, from a Jinja template with print CSS (A4, a page per section)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from commons.contract import flags_from_bitmask
from ingest import indicators as ind
from ingest.exportconfig import LICENCE_URLS
from ingest.report.collect import ReportData
from ingest.report.figures import Plot
from ingest.report.plots_air import calendar, time_series
from ingest.report.plots_cycle import cycle_heatmap
from ingest.report.plots_noise import lden_bars
from ingest.report.plots_sites import completeness_grid, node_map
from ingest.report.summary import REPORT_LIMITS, Summary, summarise

TEMPLATE = "report.html.j2"
# The plots of a report, by key, in the order they appear.
PLOT_KEYS = ("timeseries", "calendar", "cycle_pm25", "cycle_laeq", "lden", "completeness", "map")


@dataclass(frozen=True)
class Coverage:
    """One line of the data-quality table."""

    node: str
    measurement: str
    days: int
    valid_days: int
    mean_completeness: float | None
    flags: tuple[str, ...]  # QA flags of any reading (the OR of the days' bitmasks)


def _coverage(data: ReportData) -> list[Coverage]:
    out = []
    for measurement, rows in (("air", data.air_daily), ("noise", data.noise_daily)):
        nodes = sorted({str(row["node"]) for row in rows})
        for node in nodes:
            mine = [row for row in rows if row["node"] == node]
            shares = [float(r["completeness"]) for r in mine if r.get("completeness") is not None]
            qa = 0
            for row in mine:
                qa |= int(row.get("qa") or 0)
            out.append(
                Coverage(
                    node,
                    measurement,
                    len(mine),
                    sum(1 for r in mine if r["valid"]),
                    sum(shares) / len(shares) if shares else None,
                    flags_from_bitmask(qa),
                )
            )
    return out


def plots(data: ReportData, summary: Summary) -> dict[str, Plot]:
    made = (
        time_series(data),
        calendar(data),
        cycle_heatmap("cycle_pm25", data.pm25_cycle, "PM2.5", "µg/m³", "YlOrRd", "mean"),
        cycle_heatmap("cycle_laeq", data.laeq_cycle, "LAeq", "dB(A)", "magma_r", "energy mean"),
        lden_bars(summary.noise),
        completeness_grid(data),
        node_map(data.sites),
    )
    return {plot.key: plot for plot in made}


def _number(value: float | None, digits: int = 1) -> str:
    return "\u2013" if value is None else f"{value:.{digits}f}"


def _period(data: ReportData) -> str:
    request = data.request
    start = request.start.astimezone(request.tz)
    end = request.end.astimezone(request.tz)
    last = (end - timedelta(microseconds=1)).date()
    if start.time() == datetime.min.time() and end.time() == datetime.min.time():
        return f"{start.day} {start:%B %Y} to {last.day} {last:%B %Y} (whole days)"
    return f"{start.day} {start:%B %Y %H:%M} to {end.day} {end:%B %Y %H:%M}"


def render_html(data: ReportData) -> str:
    summary = summarise(data)
    environment = Environment(
        loader=PackageLoader("ingest.report", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _number
    request = data.request
    return environment.get_template(TEMPLATE).render(
        title=f"Air quality and noise in {request.area}",
        area=request.area,
        period=_period(data),
        tz=request.tz.key,
        generated=data.generated.strftime("%Y-%m-%d %H:%M UTC"),
        software=data.software,
        licence=request.licence,
        licence_url=LICENCE_URLS.get(request.licence),
        attribution=request.attribution,
        summary=summary,
        limits=REPORT_LIMITS,
        plots=plots(data, summary),
        coverage=_coverage(data),
        sites=data.sites,
        days=len(data.days),
        who_lden=ind.WHO_2018_ROAD_LDEN_DB,
        who_lnight=ind.WHO_2018_ROAD_LNIGHT_DB,
    )
