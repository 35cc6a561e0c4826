"""Where and how well the area was measured: completeness per node and day, and a map of the
nodes at their public (coarsened) locations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from matplotlib.colors import ListedColormap

from ingest.means import MIN_COMPLETENESS
from ingest.report.collect import ReportData, Site
from ingest.report.figures import (
    MISSING_COLOUR,
    Plot,
    day_label,
    empty_figure,
    new_figure,
    to_data_uri,
)

# Completeness from 0 to 100 % in six steps: reds below 75 % would alarm; a sequential ramp.
COMPLETENESS_COLOURS = ("#fde0dd", "#fa9fb5", "#c994c7", "#74a9cf", "#2b8cbe", "#045a8d")
# Margin around the nodes on the map, in degrees of latitude (about 300 m).
MAP_MARGIN_DEG = 0.003


def completeness_grid(data: ReportData) -> Plot:
    title = "Completeness per node and day"
    caption = (
        "Share of the readings a node should have sent each local day, given its reporting "
        f"interval. A day counts only from {MIN_COMPLETENESS:.0%}; days below are marked \u00d7. "
        "Grey: no readings."
    )
    lines: list[tuple[str, dict[date, tuple[float, bool]]]] = []
    for measurement, rows in (("air", data.air_daily), ("noise", data.noise_daily)):
        by_node: dict[str, dict[date, tuple[float, bool]]] = {}
        for row in rows:
            share = row.get("completeness")
            by_node.setdefault(str(row["node"]), {})[row["time"].date()] = (
                0.0 if share is None else float(share),
                bool(row["valid"]),
            )
        lines.extend((f"{node} ({measurement})", days) for node, days in sorted(by_node.items()))
    if not lines:
        return Plot("completeness", title, caption, to_data_uri(empty_figure("No readings.")))
    days = list(data.days)
    figure = new_figure(1.0 + 0.3 * len(lines))
    axes = figure.add_subplot()
    matrix = [[days_of[d][0] if d in days_of else math.nan for d in days] for _, days_of in lines]
    colours = ListedColormap(COMPLETENESS_COLOURS).with_extremes(bad=MISSING_COLOUR)
    image = axes.imshow(
        matrix, aspect="auto", cmap=colours, vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    for y, (_, days_of) in enumerate(lines):
        for x, day in enumerate(days):
            if day in days_of and not days_of[day][1]:
                axes.text(x, y, "\u00d7", ha="center", va="center", fontsize=8, color="black")
    axes.set_yticks(range(len(lines)), [name for name, _ in lines], fontsize=8)
    step = max(1, len(days) // 14)
    axes.set_xticks(range(0, len(days), step), [day_label(d) for d in days[::step]], fontsize=7)
    bar = figure.colorbar(image, ax=axes, pad=0.01, format=lambda v, _: f"{v:.0%}")
    bar.set_label("completeness")
    return Plot("completeness", title, caption, to_data_uri(figure))


def node_map(sites: Sequence[Site]) -> Plot:
    title = "Nodes of the area (public locations)"
    placed = [s for s in sites if s.public is not None]
    unplaced = [s.node for s in sites if s.public is None]
    caption = (
        "Each node at its public location: the centre of the grid cell (about 100 m) that "
        "holds it, never its exact address. No background map: the report is made offline "
        "without map tiles, so this is a plain longitude/latitude plot at true proportions."
        + (f" Without a public location: {', '.join(unplaced)}." if unplaced else "")
    )
    if not placed:
        message = "No node of this area has a public location."
        return Plot("map", title, caption, to_data_uri(empty_figure(message)))
    lats = [s.public.lat for s in placed if s.public is not None]
    lons = [s.public.lon for s in placed if s.public is not None]
    figure = new_figure(4.2, 5.2)
    axes = figure.add_subplot()
    axes.scatter(lons, lats, s=40, color="#2b8cbe", edgecolor="black", zorder=3)
    for site, lat, lon in zip(placed, lats, lons, strict=True):
        axes.annotate(site.node, (lon, lat), textcoords="offset points", xytext=(5, 5), fontsize=8)
    mid_lat = (min(lats) + max(lats)) / 2
    stretch = 1 / max(math.cos(math.radians(mid_lat)), 1e-6)
    axes.set_xlim(min(lons) - MAP_MARGIN_DEG * stretch, max(lons) + MAP_MARGIN_DEG * stretch)
    axes.set_ylim(min(lats) - MAP_MARGIN_DEG, max(lats) + MAP_MARGIN_DEG)
    # One degree of longitude is cos(latitude) times as long as one of latitude.
    axes.set_aspect(stretch, adjustable="datalim")
    axes.set_xlabel("longitude (°)")
    axes.set_ylabel("latitude (°)")
    axes.ticklabel_format(useOffset=False)
    axes.grid(alpha=0.3)
    return Plot("map", title, caption, to_data_uri(figure))
