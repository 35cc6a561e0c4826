"""Noise plot: Lden and Lnight per node over the period against the WHO 2018 values."""

from __future__ import annotations

from collections.abc import Sequence

from ingest import indicators as ind
from ingest.report.figures import LIMIT_COLOUR, Plot, empty_figure, new_figure, to_data_uri
from ingest.report.summary import NoiseNode

BAR_WIDTH = 0.38
# The x axis has room for at least this many nodes.
MIN_SLOTS = 4


def lden_bars(noise: Sequence[NoiseNode]) -> Plot:
    title = "Lden and Lnight per node"
    caption = (
        "Over the whole period (END Annex I: energy means of the valid daily Lday, Levening and "
        f"Lnight). Red lines: WHO 2018 road-traffic values, Lden {ind.WHO_2018_ROAD_LDEN_DB:g} dB "
        f"(solid) and Lnight {ind.WHO_2018_ROAD_LNIGHT_DB:g} dB (dashed). A node without a "
        "valid day, evening or night has no bar."
    )
    if not noise:
        return Plot("lden", title, caption, to_data_uri(empty_figure("No noise readings.")))
    figure = new_figure(3.0)
    axes = figure.add_subplot()
    positions = range(len(noise))
    lden = [n.lden if n.lden is not None else 0.0 for n in noise]
    lnight = [n.lnight if n.lnight is not None else 0.0 for n in noise]
    bars = axes.bar(
        [p - BAR_WIDTH / 2 for p in positions], lden, BAR_WIDTH, label="Lden", color="#4d4d4d"
    )
    night = axes.bar(
        [p + BAR_WIDTH / 2 for p in positions], lnight, BAR_WIDTH, label="Lnight", color="#878787"
    )
    for container, nodes_values in (
        (bars, [n.lden for n in noise]),
        (night, [n.lnight for n in noise]),
    ):
        labels = ["" if v is None else f"{v:.1f}" for v in nodes_values]
        axes.bar_label(container, labels, fontsize=7, padding=2)
    axes.axhline(ind.WHO_2018_ROAD_LDEN_DB, color=LIMIT_COLOUR, lw=1.2, label="WHO Lden")
    axes.axhline(
        ind.WHO_2018_ROAD_LNIGHT_DB, color=LIMIT_COLOUR, lw=1.2, ls="--", label="WHO Lnight"
    )
    axes.set_xticks(list(positions), [n.node for n in noise], fontsize=8)
    top = max([*lden, *lnight, ind.WHO_2018_ROAD_LDEN_DB])
    # Decibels have no natural zero: the axis starts below the quietest bar and the WHO line.
    present = [v for v in (*lden, *lnight) if v > 0] or [ind.WHO_2018_ROAD_LNIGHT_DB]
    bottom = max(0.0, 10 * ((min(*present, ind.WHO_2018_ROAD_LNIGHT_DB) - 10) // 10))
    axes.set_ylim(bottom, top + 8)
    # A few nodes: keep the bars narrow and centred rather than spread over the page.
    centre, half = (len(noise) - 1) / 2, max(len(noise), MIN_SLOTS) / 2
    axes.set_xlim(centre - half, centre + half)
    axes.set_ylabel("dB(A)")
    axes.legend(fontsize=8, ncols=4, loc="upper right")
    axes.grid(axis="y", alpha=0.3)
    return Plot("lden", title, caption, to_data_uri(figure))
