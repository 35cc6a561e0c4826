"""Air plots: daily PM means per node against the WHO lines, and a calendar of the area's
daily PM2.5 coloured by US EPA AQI category."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from matplotlib.patches import Patch, Rectangle

from ingest import indicators as ind
from ingest.aggregate import Row
from ingest.report.collect import WEEKDAYS, ReportData
from ingest.report.figures import (
    EU_COLOUR,
    LIMIT_COLOUR,
    MISSING_COLOUR,
    PAGE_WIDTH_IN,
    Plot,
    day_label,
    empty_figure,
    new_figure,
    to_data_uri,
)

# At most this many dates label the time axis.
MAX_DATE_TICKS = 10
# Above this many days the calendar's cells are too small for their numbers.
CALENDAR_TEXT_MAX_DAYS = 93
# Up to this many weeks the calendar is drawn as on a wall, a row per week, squares this big.
WALL_CALENDAR_MAX_WEEKS = 10
WALL_CELL_IN = 0.62
# Categories dark enough to need white text.
DARK_CATEGORIES = ("Very Unhealthy", "Hazardous")
# Side of a calendar square at most, in inches (a short period does not fill the page).
CALENDAR_CELL_MAX_IN = 0.42


def aqi_colour(category: ind.AqiCategory) -> str:
    return category.colour


def _series(rows: Sequence[Row], name: str) -> dict[str, list[tuple[date, float, bool]]]:
    out: dict[str, list[tuple[date, float, bool]]] = {}
    for row in rows:
        value = row.get(name)
        if value is not None:
            out.setdefault(str(row["node"]), []).append(
                (row["time"].date(), float(value), bool(row["valid"]))
            )
    return dict(sorted(out.items()))


def time_series(data: ReportData) -> Plot:
    title = "Daily mean PM2.5 and PM10 per node"
    caption = (
        "Daily means in local time. Filled markers: valid days (at least 75 % of the expected "
        "readings); hollow markers: incomplete days, shown but not counted. Red line: WHO 2021 "
        "24-hour guideline; blue dashed line: EU daily limit from 2030."
    )
    if not data.air_daily:
        return Plot("timeseries", title, caption, to_data_uri(empty_figure("No air readings.")))
    figure = new_figure(5.2)
    panels = (
        ("pm2_5", "PM2.5", ind.WHO_2021_PM25_24H, ind.EU_2030_PM25_DAILY),
        ("pm10", "PM10", ind.WHO_2021_PM10_24H, ind.EU_2030_PM10_DAILY),
    )
    axes_list = figure.subplots(2, 1, sharex=True)
    for axes, (name, label, who, eu) in zip(axes_list, panels, strict=True):
        for index, (node, points) in enumerate(_series(data.air_daily, name).items()):
            colour = f"C{index % 10}"
            axes.plot([p[0] for p in points], [p[1] for p in points], color=colour, lw=1.2)
            valid = [p for p in points if p[2]]
            invalid = [p for p in points if not p[2]]
            axes.plot(
                [p[0] for p in valid], [p[1] for p in valid], "o", color=colour, ms=4, label=node
            )
            axes.plot(
                [p[0] for p in invalid],
                [p[1] for p in invalid],
                "o",
                ms=5,
                markerfacecolor="white",
                markeredgecolor=colour,
            )
        axes.axhline(who.value, color=LIMIT_COLOUR, lw=1.2)
        axes.text(
            0.005,
            who.value,
            f" WHO {who.value:g}",
            color=LIMIT_COLOUR,
            va="bottom",
            fontsize=8,
            transform=axes.get_yaxis_transform(),
        )
        if eu.value != who.value:
            axes.axhline(eu.value, color=EU_COLOUR, lw=1.0, ls="--")
            axes.text(
                0.005,
                eu.value,
                f" EU 2030 {eu.value:g}",
                color=EU_COLOUR,
                va="bottom",
                fontsize=8,
                transform=axes.get_yaxis_transform(),
            )
        axes.set_ylabel(f"{label} (µg/m³)")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
    axes_list[0].legend(fontsize=8, ncols=4, loc="upper right")
    step = max(1, len(data.days) // MAX_DATE_TICKS)
    ticks = list(data.days[::step])
    axes_list[-1].set_xticks(ticks, [day_label(day) for day in ticks])
    figure.autofmt_xdate()
    return Plot("timeseries", title, caption, to_data_uri(figure))


def area_daily_pm25(data: ReportData) -> dict[date, tuple[float | None, bool]]:
    """Per local day: the mean of the nodes' valid daily PM2.5 means (None when no node had a
    valid day), and whether any node had readings that day."""
    valid: dict[date, list[float]] = {}
    seen: set[date] = set()
    for row in data.air_daily:
        day = row["time"].date()
        seen.add(day)
        if row["valid"] and row.get("pm2_5") is not None:
            valid.setdefault(day, []).append(float(row["pm2_5"]))
    out: dict[date, tuple[float | None, bool]] = {}
    for day in data.days:
        values = valid.get(day)
        out[day] = (sum(values) / len(values) if values else None, day in seen)
    return out


def calendar(data: ReportData) -> Plot:
    title = "Calendar of daily PM2.5 (US EPA AQI categories)"
    caption = (
        "Each square is a local day: the mean of the nodes' valid daily PM2.5 means (µg/m³), "
        "coloured by its US EPA AQI category (2024 breakpoints). Hatched grey: readings, but no "
        "node had a complete day; plain grey: no readings."
    )
    daily = area_daily_pm25(data)
    if not daily:
        return Plot("calendar", title, caption, to_data_uri(empty_figure("No days.")))
    first = data.days[0] - timedelta(days=data.days[0].weekday())
    weeks = (data.days[-1] - first).days // 7 + 1
    # A wall calendar (a row per week) for a few weeks; a strip (a column per week) for more.
    wall = weeks <= WALL_CALENDAR_MAX_WEEKS
    if wall:
        cell = WALL_CELL_IN
        figure = new_figure(weeks * cell + 1.1, 7 * cell + 1.2)
    else:
        cell = min(CALENDAR_CELL_MAX_IN, (PAGE_WIDTH_IN - 1.0) / weeks)
        figure = new_figure(7 * cell + 1.3, weeks * cell + 1.0)
    axes = figure.add_subplot()
    show_text = len(data.days) <= CALENDAR_TEXT_MAX_DAYS
    for day, (value, seen) in daily.items():
        week, weekday = (day - first).days // 7, day.weekday()
        x, y = (weekday, week) if wall else (week, weekday)
        category = None if value is None else ind.aqi_category(ind.aqi_pm25(value))
        face = MISSING_COLOUR if category is None else aqi_colour(category)
        hatch = "///" if category is None and seen else None
        axes.add_patch(
            Rectangle((x, y), 0.94, 0.94, facecolor=face, hatch=hatch, edgecolor="white", lw=0.5)
        )
        if show_text:
            dark = category is not None and category.name in DARK_CATEGORIES
            label = day.strftime("%d %b") if wall else str(day.day)
            text = label if value is None else f"{label}\n{value:.1f}"
            axes.text(
                x + 0.47,
                y + 0.47,
                text,
                ha="center",
                va="center",
                fontsize=8 if wall else 6,
                color="white" if dark else "black",
            )
    names = [(first + timedelta(weeks=w)).strftime("%d %b") for w in range(weeks)]
    if wall:
        axes.set_xlim(0, 7)
        axes.set_ylim(weeks, 0)
        axes.set_xticks([i + 0.47 for i in range(7)], WEEKDAYS, fontsize=8)
        axes.xaxis.tick_top()
        axes.set_yticks([w + 0.47 for w in range(weeks)], names, fontsize=8)
        axes.set_ylabel("week starting")
    else:
        axes.set_xlim(0, weeks)
        axes.set_ylim(7, 0)
        axes.set_yticks([i + 0.47 for i in range(7)], WEEKDAYS, fontsize=8)
        step = max(1, weeks // 12)
        axes.set_xticks([w + 0.47 for w in range(0, weeks, step)], names[::step], fontsize=7)
        axes.set_xlabel("week starting")
    axes.set_aspect("equal")
    axes.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        axes.spines[side].set_visible(False)
    handles = [Patch(facecolor=aqi_colour(c), label=c.name) for c in ind.AQI_CATEGORIES]
    handles.append(Patch(facecolor=MISSING_COLOUR, hatch="///", label="incomplete"))
    handles.append(Patch(facecolor=MISSING_COLOUR, label="no data"))
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=7)
    return Plot("calendar", title, caption, to_data_uri(figure))
