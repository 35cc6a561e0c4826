"""The daily cycle: a heatmap of hour of day (local time) by weekday."""

from __future__ import annotations

import math

import matplotlib

from ingest.report.collect import HOURS, WEEKDAYS, CycleGrid
from ingest.report.figures import MISSING_COLOUR, Plot, empty_figure, new_figure, to_data_uri


def cycle_heatmap(
    key: str, grid: CycleGrid, quantity: str, unit: str, colour_map: str, how: str
) -> Plot:
    title = f"Daily cycle of {quantity} (hour of day \u00d7 weekday, local time)"
    caption = (
        f"Each cell is the {how} of the nodes' valid hourly means of {quantity} in that local "
        "hour on that weekday, over the whole period. Grey: no valid hour."
    )
    cells = grid.cells()
    values = [v for row in cells for v in row if v is not None]
    if not values:
        message = f"No valid hourly {quantity} means in this period."
        return Plot(key, title, caption, to_data_uri(empty_figure(message)))
    figure = new_figure(2.9)
    axes = figure.add_subplot()
    matrix = [[math.nan if v is None else v for v in row] for row in cells]
    colours = matplotlib.colormaps[colour_map].with_extremes(bad=MISSING_COLOUR)
    image = axes.imshow(matrix, aspect="auto", cmap=colours, interpolation="nearest")
    axes.set_yticks(range(len(WEEKDAYS)), WEEKDAYS, fontsize=8)
    axes.set_xticks(range(0, HOURS, 2), [f"{h:02d}" for h in range(0, HOURS, 2)], fontsize=8)
    axes.set_xlabel("hour of day (local time)")
    bar = figure.colorbar(image, ax=axes, pad=0.01)
    bar.set_label(f"{quantity} ({unit})")
    return Plot(key, title, caption, to_data_uri(figure))
