"""The three kinds of dashboard: the city overview, one per neighbourhood, the operator's.

Public dashboards (city, areas) use no template variables, which Grafana's shared dashboards do
not support: each area's dashboard has its area written into its queries.

Two views of time (docs/dashboards.md): panels titled "last 48 hours" read every raw reading and
always show 48 hours, whatever the dashboard's range (a panel time override), so they stay fast;
panels titled "hourly" read the hourly aggregates of ``commons db init``'s continuous queries
over the dashboard's range, with ``$__interval`` never below one hour, so a year is ~9000 points
per series rather than half a million.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import dashboard as dashboard_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel

from dashboards.city import City, slug

UID_PREFIX = "commons-"
# Grafana's limit on a dashboard uid.
UID_MAX = 40
TAG = "sensor-commons"
PUBLIC_TAG = "public"
OPERATOR_TAG = "operator"


def uid_for(name: str) -> str:
    """A stable uid from a dashboard's name: ``commons-<slug>``, or a hash-shortened form when
    that would be longer than Grafana allows."""
    uid = UID_PREFIX + slug(name)
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return uid[: UID_MAX - 9].rstrip("-") + "-" + digest


@dataclass
class Board:
    """A dashboard being built: panels get ids in the order they are added."""

    title: str
    name: str
    public: bool
    description: str
    builder: dashboard_b.Dashboard = field(init=False)
    _next_id: int = 1

    def __post_init__(self) -> None:
        tags = [TAG, PUBLIC_TAG if self.public else OPERATOR_TAG]
        self.builder = (
            dashboard_b.Dashboard(self.title)
            .uid(uid_for(self.name))
            .description(self.description)
            .tags(tags)
            .timezone("browser")
            .time("now-7d", "now")
            .refresh("5m")
            .readonly()
        )

    def add(self, panel: cogbuilder.Builder[Panel]) -> int:
        panel_id = self._next_id
        self._next_id += 1
        built = panel.build()
        built.id_val = panel_id
        self.builder.with_panel(_Built(built))
        return panel_id

    def row(self, title: str) -> None:
        row = dashboard_b.Row(title).id(self._next_id)
        self._next_id += 1
        self.builder.with_row(row)

    def build(self) -> Dashboard:
        return self.builder.build()


class _Built(cogbuilder.Builder[Panel]):
    def __init__(self, panel: Panel) -> None:
        self._panel = panel

    def build(self) -> Panel:
        return self._panel


@dataclass(frozen=True)
class Generated:
    """One dashboard: its file name, whether it is meant to be public, the model."""

    file_name: str
    public: bool
    dashboard: Dashboard

    @property
    def uid(self) -> str:
        assert self.dashboard.uid is not None
        return self.dashboard.uid


def all_dashboards(city: City) -> list[Generated]:
    from dashboards.area import area_dashboard
    from dashboards.operator import operator_dashboard
    from dashboards.overview import city_dashboard

    out = [Generated("city.json", True, city_dashboard(city))]
    for area in city.areas():
        out.append(Generated(f"area-{slug(area)}.json", True, area_dashboard(city, area)))
    out.append(Generated("operator.json", False, operator_dashboard(city)))
    return out
