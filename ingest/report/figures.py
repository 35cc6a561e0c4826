"""Shared plumbing of the report's plots: a figure without pyplot's global state, rendered by
Agg to a PNG ``data:`` URI that the HTML embeds, so the report needs no other file."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import date

import matplotlib

matplotlib.use("Agg")  # no display: reports are made on servers

from matplotlib.figure import Figure

DPI = 110
# Width of a full-width plot on an A4 page with 15 mm margins, in inches.
PAGE_WIDTH_IN = 7.2
MISSING_COLOUR = "#d9d9d9"
LIMIT_COLOUR = "#b2182b"
EU_COLOUR = "#2166ac"


@dataclass(frozen=True)
class Plot:
    """One embedded image: its id (stable, for tests and links), title, caption and data."""

    key: str
    title: str
    caption: str
    uri: str


def new_figure(height_in: float, width_in: float = PAGE_WIDTH_IN) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def to_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def empty_figure(message: str, height_in: float = 1.2) -> Figure:
    """A small figure that says why there is nothing to plot (never a silent gap)."""
    figure = new_figure(height_in)
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#555555")
    return figure


def day_label(day: date) -> str:
    return day.strftime("%d %b")
