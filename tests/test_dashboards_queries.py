"""Every query of every generated panel, run against the real InfluxDB holding a day of city data.

The dashboards are generated from the registry of the day's nodes (two neighbourhoods, air
nodes running the firmware and noise nodes), the macros expanded as Grafana expands them
(tests/grafana_macros.py) with ``now()`` at the moment the day was complete, and each query
must return what its panel shows: data, the fields it names, and one series per node of the
right kind and area where it splits by node.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cityday import CityDay
from grafana_macros import expansion

from commons.contract import Kind
from dashboards.build import build_all

pytestmark = pytest.mark.integration

KINDS = {"air": {Kind.AIR}, "noise": {Kind.NOISE}, "node_status": {Kind.AIR, Kind.NOISE}}
# Status fields only air nodes send (noise nodes have no PM sensor).
AIR_STATUS_FIELDS = {"pm_hours"}
_SOURCES = re.compile(r"FROM ((?:\"\w+\"\.)?\"\w+\"(?:, (?:\"\w+\"\.)?\"\w+\")*)")
_MEASUREMENT = re.compile(r"\"(air|noise|node_status|gateway_status)(?:_1h)?\"$")


def _measurements(query: str) -> set[str]:
    names = set()
    for sources in _SOURCES.findall(query):
        for source in sources.split(", "):
            match = _MEASUREMENT.search(source)
            assert match, f"unknown measurement in {source!r}"
            names.add(match.group(1))
    return names


def _outer_aliases(query: str) -> list[str]:
    select = query[len("SELECT ") : query.index(" FROM ")]
    return re.findall(r" AS \"(\w+)\"", select)


def _splits_by_node(query: str) -> bool:
    return '"node"' in query[query.rindex("GROUP BY") :]


def expected_nodes(day: CityDay, query: str) -> set[str] | None:
    """The nodes the query should return one series each for (None: it does not split)."""
    if not _splits_by_node(query):
        return None
    kinds = set().union(*(KINDS[m] for m in _measurements(query)))
    if set(_outer_aliases(query)) <= AIR_STATUS_FIELDS:
        kinds = {Kind.AIR}
    area = re.search(r"\"area\" = '([^']*)'", query)
    nodes = {n for k in kinds for n in day.nodes(k, area.group(1) if area else None)}
    named = set(re.findall(r"\"node\" = '([^']*)'", query))
    return nodes & named if named else nodes


def _panels(tmp_path: Path, day: CityDay) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for path in build_all(day.registry, tmp_path / "dashboards"):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            if panel.get("targets"):
                out.append((path.name, dashboard, panel))
    return out


def test_every_panel_query_returns_its_series(cityday: CityDay, tmp_path: Path) -> None:
    panels = _panels(tmp_path, cityday)
    assert len({name for name, _, _ in panels}) == 2 + len(cityday.areas)
    checked = 0
    for name, dashboard, panel in panels:
        macros = expansion(dashboard, panel)
        for target in panel["targets"]:
            where = f"{name}: {panel['title']!r} {target['refId']}"
            query = macros.apply(target["query"], cityday.end)
            assert "$" not in query, f"{where}: unexpanded macro in {query}"
            series = cityday.influx.series(query)
            assert series, f"{where}: no data for {query}"
            aliases = _outer_aliases(target["query"])
            for serie in series:
                assert set(aliases) <= set(serie["columns"]), (where, serie["columns"])
                values = [
                    row[serie["columns"].index(a)] for row in serie["values"] for a in aliases
                ]
                assert any(v is not None for v in values), f"{where}: only nulls in {serie}"
            nodes = expected_nodes(cityday, target["query"])
            if nodes is not None:
                got = [s["tags"]["node"] for s in series]
                assert set(got) == nodes, f"{where}: nodes {sorted(got)}, want {sorted(nodes)}"
                if len(_measurements(target["query"])) == 1:
                    assert len(got) == len(nodes), f"{where}: more than one series per node"
            elif "gateway_status" in _measurements(target["query"]):
                assert all(s["tags"].get("gateway") for s in series), where
            else:
                assert len(series) == 1, f"{where}: {len(series)} series for a city-wide value"
            checked += 1
    print(f"{checked} panel queries returned their series")


def test_maps_join_location_and_reading_per_node(cityday: CityDay, tmp_path: Path) -> None:
    """The map's first query places every node; its second has a value for each node of its
    kind, on the same ``node`` key the panel's join uses."""
    for name, dashboard, panel in _panels(tmp_path, cityday):
        if panel["type"] != "geomap":
            continue
        macros = expansion(dashboard, panel)
        located, reading = (
            {
                s["tags"]["node"]: s
                for s in cityday.influx.series(macros.apply(t["query"], cityday.end))
            }
            for t in panel["targets"]
        )
        assert set(reading) <= set(located), name
        for serie in located.values():
            row = dict(zip(serie["columns"], serie["values"][0], strict=True))
            assert -90 <= row["lat"] <= 90 and -180 <= row["lon"] <= 180
        assert panel["transformations"][0]["options"]["byField"] == "node"
