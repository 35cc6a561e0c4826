"""The city overview (public): a map of every public node coloured by its current PM2.5 and
noise, the city's PM2.5, PM10 and LAeq over the chosen range, and which nodes are offline."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import queries as q
from dashboards.area import NOISE_UNIT, PM_UNIT
from dashboards.boards import Board
from dashboards.city import City
from dashboards.influxql import Query, ident
from dashboards.panels import (
    map_panel,
    table_panel,
    text_panel,
    timeseries_panel,
    with_guideline,
)
from dashboards.standards import AQI_PM25_2024, NOISE_BANDS, WHO_2021_PM25_24H
from ingest.schema import FIELD_LAT, FIELD_LON

# "Now" on the map: readings of the last hour (the PM2.5 mean, the latest noise period).
NOW_WINDOW = "1h"


def _locations() -> Query:
    """Each node's public location, from its status points (the gateway adds it)."""
    select = f"last({ident(FIELD_LAT)}) AS {ident(FIELD_LAT)}, last({ident(FIELD_LON)}) AS " + (
        f"{ident(FIELD_LON)}"
    )
    return Query(q.per_node(select, "node_status", None, None))


def city_dashboard(city: City) -> Dashboard:
    board = Board(
        title=f"{city.name}: the city's air and noise",
        name="city",
        public=True,
        description="Every public sensor on a map, and the city's air and noise over time.",
    )
    board.add(
        text_panel(
            "About this map",
            "Each dot is a resident's sensor, placed at the centre of its ~100 m square (never "
            "at the house). **Left**: fine dust PM2.5 over the last hour, coloured in the US EPA "
            "2024 air quality index bands (green good, yellow moderate, orange unhealthy for "
            "sensitive groups, red unhealthy, purple very unhealthy, maroon hazardous). "
            "**Right**: the latest noise level LAeq in dB(A), coloured in the EU noise "
            "directive's 5 dB reporting bands (from green below 55 dB to maroon from 75 dB). "
            "Grey or missing: no reading in the last hour (see the list of nodes below).",
            4,
        )
    )
    board.add(
        map_panel(
            "PM2.5 now (mean of the last hour, US EPA AQI 2024 bands)",
            [
                _locations(),
                Query(
                    q.per_node(
                        f"mean({ident('pm2_5')}) AS {ident('pm2_5')}", "air", None, NOW_WINDOW
                    )
                ),
            ],
            "PM2.5",
            "pm2_5",
            PM_UNIT,
            AQI_PM25_2024,
            "Mean PM2.5 of each air sensor over the last hour, at its public location.",
        )
    )
    board.add(
        map_panel(
            "Noise now (latest LAeq, dB(A))",
            [
                _locations(),
                Query(
                    q.per_node(
                        f"last({ident('laeq')}) AS {ident('laeq')}", "noise", None, NOW_WINDOW
                    )
                ),
            ],
            "Noise LAeq",
            "laeq",
            NOISE_UNIT,
            NOISE_BANDS,
            "The latest LAeq each noise sensor sent in the last hour, at its public location.",
        )
    )
    board.row("The city over the chosen range: hourly averages of all sensors")
    pm = timeseries_panel(
        "City PM2.5 and PM10 (hourly, mean of all sensors)",
        [
            Query(q.mean_over_time("air", ["pm2_5"], None, True, by_node=False)).alias("PM2.5"),
            Query(q.mean_over_time("air", ["pm10"], None, True, by_node=False)).alias("PM10"),
        ],
        PM_UNIT,
        True,
        "The mean over all air sensors of their hourly means; dashed: WHO 2021 24-hour "
        f"guideline for PM2.5 ({WHO_2021_PM25_24H:g} µg/m³).",
    )
    board.add(with_guideline(pm, WHO_2021_PM25_24H))
    board.add(
        timeseries_panel(
            "City noise LAeq (hourly, energy mean of all sensors)",
            [Query(q.energy_mean_over_time("laeq", None, True, by_node=False)).alias("LAeq")],
            NOISE_UNIT,
            True,
            "The energy mean over all noise sensors of their hourly LAeq, in dB(A).",
        )
    )
    board.add(
        table_panel(
            "Nodes: last heard from, and whether they said they went offline",
            [
                Query(
                    q.per_node(
                        f"last({ident('state')}) AS {ident('state')}", "node_status", None, None
                    )
                ),
            ],
            "One row per node: the time of its latest status and its state. A node whose "
            "connection dropped is marked offline by its broker's last will.",
        )
    )
    return board.build()
