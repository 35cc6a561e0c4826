"""Day, evening and night shaded on noise panels: Grafana's time-region annotations.

Grafana (10+) draws time regions from an annotation of its built-in ``grafana`` datasource whose
target has ``queryType: "timeRegions"`` and a ``timeRegion``. The SDK's ``AnnotationTarget``
models only the tag-query fields of that datasource, so this subclass adds the two keys; the
SDK's ``from_json`` reads such a target back without them (the tests allow exactly these two).
"""

from __future__ import annotations

from typing import Self

from grafana_foundation_sdk.builders import dashboard as dashboard_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models.dashboard import AnnotationQuery, AnnotationTarget, DataSourceRef

from dashboards.standards import END_PERIODS, Period

EXTENSION_KEYS = ("queryType", "timeRegion")
GRAFANA_DATASOURCE = DataSourceRef(type_val="datasource", uid="grafana")


class TimeRegionTarget(AnnotationTarget):
    def __init__(self, start: str, end: str, timezone: str = "browser") -> None:
        super().__init__(limit=100, type_val="dashboard")
        self.start = start
        self.end = end
        self.timezone = timezone

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload["queryType"] = "timeRegions"
        payload["timeRegion"] = {"from": self.start, "to": self.end, "timezone": self.timezone}
        return payload


class TimeRegion(cogbuilder.Builder[AnnotationTarget]):
    def __init__(self, start: str, end: str) -> None:
        self._internal = TimeRegionTarget(start, end)

    def build(self) -> AnnotationTarget:
        return self._internal

    def timezone(self, timezone: str) -> Self:
        self._internal.timezone = timezone
        return self


def period_annotation(period: Period, panel_ids: list[int]) -> dashboard_b.AnnotationQuery:
    return (
        dashboard_b.AnnotationQuery()
        .name(period.name)
        .datasource(GRAFANA_DATASOURCE)
        .enable(True)
        .hide(False)
        .icon_color(period.color)
        .filter(dashboard_b.AnnotationPanelFilter().exclude(False).ids(panel_ids))
        .target(TimeRegion(period.start, period.end))
    )


def end_periods(
    panel_ids: list[int],
) -> list[cogbuilder.Builder[AnnotationQuery]]:
    """Day 07-19, evening 19-23, night 23-07 (local time of the viewer's browser)."""
    return [period_annotation(p, panel_ids) for p in END_PERIODS]
