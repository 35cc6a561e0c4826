"""Panel builders shared by the dashboards: every data panel gets the InfluxDB datasource,
a title and its queries; thresholds come from :mod:`dashboards.standards`."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dashboard_b
from grafana_foundation_sdk.builders import geomap, stat, table, text, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
)
from grafana_foundation_sdk.models.geomap import TooltipMode
from grafana_foundation_sdk.models.text import TextMode

from dashboards.influxql import Query, datasource
from dashboards.standards import Band

# Smallest $__interval of panels on hourly data: one hour, so a bucket never splits an hour.
HOURLY_MIN_INTERVAL = "1h"
# Smallest $__interval of panels on raw readings: the shortest reporting interval in use.
RAW_MIN_INTERVAL = "1m"
# Raw-reading panels always show this much, whatever the dashboard's range (panel time override).
RAW_WINDOW = "48h"


def thresholds(bands: tuple[Band, ...]) -> dashboard_b.ThresholdsConfig:
    return (
        dashboard_b.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=b.lower, color=b.color) for b in bands])
    )


def guideline(value: float) -> dashboard_b.ThresholdsConfig:
    """A single dashed line at ``value`` (green below, red from it)."""
    return thresholds((Band(None, "below", "green"), Band(value, "guideline", "red")))


def timeseries_panel(
    title: str, queries: list[Query], unit: str, hourly: bool, description: str
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .unit(unit)
        .interval(HOURLY_MIN_INTERVAL if hourly else RAW_MIN_INTERVAL)
        .span_nulls(False)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .height(8)
        .span(12)
    )
    if not hourly:
        panel = panel.time_from(RAW_WINDOW)
    for i, query in enumerate(queries):
        panel = panel.with_target(query.ref_id(chr(ord("A") + i)))
    return panel


def with_guideline(panel: timeseries.Panel, value: float) -> timeseries.Panel:
    return panel.thresholds(guideline(value)).thresholds_style(
        common_b.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED)
    )


def right_axis(panel: timeseries.Panel, field_regexp: str, unit: str) -> timeseries.Panel:
    """Series whose name matches ``field_regexp`` on a right-hand axis with their own unit."""
    return panel.override_by_regexp(
        field_regexp,
        [
            DynamicConfigValue(id_val="custom.axisPlacement", value=common.AxisPlacement.RIGHT),
            DynamicConfigValue(id_val="unit", value=unit),
        ],
    )


def stat_panel(
    title: str, query: Query, unit: str, bands: tuple[Band, ...], description: str
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .unit(unit)
        .decimals(1)
        .thresholds(thresholds(bands))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(query.ref_id("A"))
        .height(6)
        .span(12)
    )


def join_by_node(mode: str = "outer") -> DataTransformerConfig:
    """Grafana's "Join by field" transformation on the ``node`` column of table results."""
    return DataTransformerConfig(id_val="joinByField", options={"byField": "node", "mode": mode})


def table_panel(title: str, queries: list[Query], description: str) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .with_transformation(join_by_node())
        .show_header(True)
        .height(8)
        .span(24)
    )
    for i, query in enumerate(queries):
        panel = panel.with_target(query.table().ref_id(chr(ord("A") + i)))
    return panel


def text_panel(title: str, markdown: str, height: int = 6) -> text.Panel:
    return (
        text.Panel().title(title).mode(TextMode.MARKDOWN).content(markdown).height(height).span(24)
    )


def marker_layer(name: str, field: str) -> common_b.MapLayerOptions:
    """Markers at each row's ``lat``/``lon``, coloured by ``field`` through the panel's
    thresholds. The SDK types a layer's ``config`` as a free object; its parts are SDK models."""
    config = {
        "showLegend": True,
        "style": {
            "color": common.ColorDimensionConfig(field=field, fixed="grey"),
            "opacity": 0.9,
            "size": common.ScaleDimensionConfig(fixed=10, min_val=6, max_val=14),
            "symbol": common.ResourceDimensionConfig(
                mode=common.ResourceDimensionMode.FIXED, fixed="img/icons/marker/circle.svg"
            ),
        },
    }
    return (
        common_b.MapLayerOptions()
        .type("markers")
        .name(name)
        .config(config)
        .location(
            common_b.FrameGeometrySource()
            .mode(common.FrameGeometrySourceMode.COORDS)
            .latitude("lat")
            .longitude("lon")
        )
        .tooltip(True)
    )


def map_panel(
    title: str,
    queries: list[Query],
    layer_name: str,
    field: str,
    unit: str,
    bands: tuple[Band, ...],
    description: str,
) -> geomap.Panel:
    panel = (
        geomap.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .unit(unit)
        .thresholds(thresholds(bands))
        .view(geomap.MapViewConfig().id("fit").zoom(13))
        .controls(geomap.ControlsOptions().show_zoom(True).show_attribution(True))
        .basemap(common_b.MapLayerOptions().type("default").name("Basemap"))
        .layers([marker_layer(layer_name, field)])
        .tooltip(geomap.TooltipOptions().mode(TooltipMode.DETAILS))
        .with_transformation(join_by_node("inner"))
        .height(12)
        .span(12)
    )
    for i, query in enumerate(queries):
        panel = panel.with_target(query.table().ref_id(chr(ord("A") + i)))
    return panel
