"""Where and how well the area was measured: completeness per node and day, and a map of the
nodes at their public (coarsened) locations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from matplotlib.colors import ListedColormap
from matplotlib.ticker import MaxNLocator

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
# Lengths a scale bar may have, in metres; metres per degree of latitude (mean, WGS 84).
SCALE_BAR_M = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
M_PER_DEG_LAT = 111_320.0
# Width : height of the map's extent.
MAP_RATIO = 1.3


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
    figure = new_figure(3.5, 4.6)
    axes = figure.add_subplot()
    axes.scatter(lons, lats, s=40, color="#2b8cbe", edgecolor="black", zorder=3)
    for site, lat, lon in zip(placed, lats, lons, strict=True):
        axes.annotate(site.node, (lon, lat), textcoords="offset points", xytext=(5, 5), fontsize=8)
    # One degree of longitude is cos(latitude) times as long as one of latitude. The extent
    # is widened in one direction to the plot's proportions, so the aspect is true and the
    # plot keeps its shape.
    mid_lat, mid_lon = (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2
    stretch = 1 / max(math.cos(math.radians(mid_lat)), 1e-6)
    half_h = (max(lats) - min(lats)) / 2 + MAP_MARGIN_DEG
    half_w = ((max(lons) - min(lons)) / 2) / stretch + MAP_MARGIN_DEG  # in degrees of latitude
    half_h = max(half_h, half_w / MAP_RATIO)
    half_w = half_h * MAP_RATIO
    axes.set_xlim(mid_lon - half_w * stretch, mid_lon + half_w * stretch)
    axes.set_ylim(mid_lat - half_h, mid_lat + half_h)
    axes.set_aspect(stretch, adjustable="box")
    axes.xaxis.set_major_locator(MaxNLocator(5))
    # A scale bar of about a fifth of the width, bottom left.
    width_m = 2 * half_w * M_PER_DEG_LAT
    metres = max([m for m in SCALE_BAR_M if m <= width_m / 5], default=SCALE_BAR_M[0])
    x0 = mid_lon - half_w * stretch * 0.9
    y0 = mid_lat - half_h * 0.88
    x1 = x0 + metres / M_PER_DEG_LAT * stretch
    axes.plot([x0, x1], [y0, y0], color="black", lw=2.5, solid_capstyle="butt")
    label = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres} m"
    axes.text((x0 + x1) / 2, y0, label, ha="center", va="bottom", fontsize=8)
    axes.set_xlabel("longitude (°)")
    axes.set_ylabel("latitude (°)")
    axes.ticklabel_format(useOffset=False)
    axes.grid(alpha=0.3)
    return Plot("map", title, caption, to_data_uri(figure))
