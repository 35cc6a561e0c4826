"""One public dashboard per neighbourhood: its air and its noise, explained for residents."""

from __future__ import annotations

from grafana_foundation_sdk.models import units
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import queries as q
from dashboards.boards import Board
from dashboards.city import City
from dashboards.influxql import Query, ident, tag_is
from dashboards.panels import (
    right_axis,
    stat_panel,
    text_panel,
    timeseries_panel,
    with_guideline,
)
from dashboards.regions import end_periods
from dashboards.standards import WHO_2021_PM10_24H, WHO_2021_PM25_24H, Band
from ingest.schema import TAG_AREA

PM_UNIT = units.MicrogramPerCubicMeter
NOISE_UNIT = "suffix: dB(A)"
NODE_ALIAS = "$tag_node"


def explanation(area: str, node_count: int, air: bool = True, noise: bool = True) -> str:
    pm25, pm10 = f"{WHO_2021_PM25_24H:g}", f"{WHO_2021_PM10_24H:g}"
    sensors = "1 sensor" if node_count == 1 else f"{node_count} sensors"
    dust = f"""\
- **PM2.5 and PM10** are fine dust in the air, in micrograms per cubic metre (µg/m³): smoke, \
traffic, heating, pollen. Less is better. The dashed lines are the World Health Organization's \
2021 guidelines for the average over a whole day: {pm25} µg/m³ for PM2.5 and {pm10} µg/m³ for \
PM10. A short peak above the line is common; a day whose average is above it is not healthy. \
The boxes at the top show each sensor's average over the last 24 hours.
"""
    sound = """\
- **Noise** is in dB(A), the average sound level over each period (LAeq). +10 dB sounds about \
twice as loud. Day (07-19), evening (19-23) and night (23-07) are shaded: the quiet of the \
night matters most for sleep.
"""
    climate = """\
- **Temperature and humidity** help read the dust: in fog or very humid air (above about 70 %) \
low-cost dust sensors read too high.
"""
    bullets = (dust if air else "") + (sound if noise else "") + (climate if air else "")
    return f"""\
**{area}**: {sensors} run by residents. Each line is one sensor; its place on the \
city map is rounded to about 100 m.

{bullets}
The upper row shows every reading of the last 48 hours; the lower row shows hourly averages \
over the range chosen at the top right. These are citizen measurements, not official ones."""


def area_dashboard(city: City, area: str) -> Dashboard:
    nodes = city.in_area(area)
    in_area = tag_is(TAG_AREA, area)
    # Panels only for what the area's nodes measure (both where the registry does not say).
    air, noise = city.measures(area, "air"), city.measures(area, "noise")
    what = " and ".join(name for name, has in (("air", air), ("noise", noise)) if has)
    board = Board(
        title=f"{area}: {what}",
        name=f"area {area}",
        public=True,
        description=f"{what.capitalize()} measured by residents' sensors in {area}.",
    )
    about = explanation(area, len(nodes), air, noise)
    board.add(text_panel(f"About this dashboard: {area}", about, 7))

    for field, label, limit in (
        ("pm2_5", "PM2.5", WHO_2021_PM25_24H),
        ("pm10", "PM10", WHO_2021_PM10_24H),
    ):
        if not air:
            break
        board.add(
            stat_panel(
                f"{label}, average of the last 24 hours (WHO 24-h guideline {limit:g} µg/m³)",
                Query(
                    q.per_node(f"mean({ident(field)}) AS {ident(field)}", "air", in_area, "24h")
                ).alias(NODE_ALIAS),
                PM_UNIT,
                (Band(None, "below the guideline", "green"), Band(limit, "above", "red")),
                f"Each sensor's mean {label} over the last 24 hours, against the WHO 2021 "
                "24-hour guideline level.",
            )
        )

    noise_panels: list[int] = []
    for hourly in (False, True):
        board.row(
            "Over the chosen range: hourly averages"
            if hourly
            else "Now: every reading of the last 48 hours"
        )
        when = "hourly averages" if hourly else "last 48 hours"
        if air:
            _air_panels(board, in_area, hourly, when)
        if noise:
            noise_panels.append(
                board.add(
                    timeseries_panel(
                        f"Noise LAeq ({when})",
                        [
                            Query(
                                q.energy_mean_over_time("laeq", in_area, hourly, by_node=True)
                            ).alias(NODE_ALIAS)
                        ],
                        NOISE_UNIT,
                        hourly,
                        "Equivalent continuous sound level LAeq per sensor in dB(A), "
                        "energy-averaged over each interval. Shaded: day 07-19, evening 19-23, "
                        "night 23-07 (EU Environmental Noise Directive periods, viewer's local "
                        "time).",
                    )
                )
            )
    if noise_panels:
        board.builder.annotations(end_periods(noise_panels))
    return board.build()


def _air_panels(board: Board, in_area: str, hourly: bool, when: str) -> None:
    for field, label, limit in (
        ("pm2_5", "PM2.5", WHO_2021_PM25_24H),
        ("pm10", "PM10", WHO_2021_PM10_24H),
    ):
        panel = timeseries_panel(
            f"{label} ({when})",
            [
                Query(q.mean_over_time("air", [field], in_area, hourly, by_node=True)).alias(
                    NODE_ALIAS
                )
            ],
            PM_UNIT,
            hourly,
            f"{label} per sensor in µg/m³; dashed: WHO 2021 24-hour guideline ({limit:g}).",
        )
        board.add(with_guideline(panel, limit))
    climate = timeseries_panel(
        f"Temperature and humidity ({when})",
        [
            Query(q.mean_over_time("air", ["temp"], in_area, hourly, by_node=True)).alias(
                f"{NODE_ALIAS} temperature"
            ),
            Query(q.mean_over_time("air", ["rh"], in_area, hourly, by_node=True)).alias(
                f"{NODE_ALIAS} humidity"
            ),
        ],
        units.Celsius,
        hourly,
        "Air temperature (°C, left) and relative humidity (%, right) per sensor.",
    )
    board.add(right_axis(climate, ".* humidity$", units.Humidity))
