"""The generated dashboards as Grafana reads them: the SDK's models, panels, determinism.

- Each JSON file loads back into grafana-foundation-sdk's ``Dashboard`` model and encodes to the
  same JSON, so every key is one the SDK's dashboard schema knows (the two keys of Grafana's
  time-region annotations, which the SDK does not model, excepted: dashboards/regions.py);
  panel options and field configs decode into their panel plugin's models; every value has the
  type the SDK's models give it (tests/sdk_schema.py).
- Every panel has a title; every data panel the InfluxDB datasource and at least one raw
  InfluxQL query that is bounded in time; no public dashboard has a template variable.
- Building twice gives the same bytes, and the committed files are what the code generates.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import geomap, stat, table, text, timeseries
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel, RowPanel
from harness import RunCommons
from sdk_schema import schema_errors

from dashboards import influxql
from dashboards.boards import PUBLIC_TAG, uid_for
from dashboards.build import GENERATED_DIR, PROVISIONING_DIR, build_all, build_example
from dashboards.city import CityDescriptionError, from_description
from dashboards.influxql import DATASOURCE_UID, InfluxQuery
from dashboards.regions import EXTENSION_KEYS
from dashboards.standards import AQI_PM25_2024, WHO_2021_PM10_24H, WHO_2021_PM25_24H
from ingest.registry import Location, Registry

OPTIONS = {
    "timeseries": timeseries.Options,
    "stat": stat.Options,
    "table": table.Options,
    "text": text.Options,
    "geomap": geomap.Options,
}
# Grafana's built-in macros and InfluxDB alias patterns.
GRAFANA_NAMES = {"timeFilter", "__interval", "__interval_ms", "tag_node", "col"}
FIELD_CONFIGS = {"timeseries": timeseries.FieldConfig}


def committed() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(GENERATED_DIR.glob("*.json"))}


def _without_extensions(data: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    for annotation in copy.get("annotations", {}).get("list", []):
        for key in EXTENSION_KEYS:
            annotation.get("target", {}).pop(key, None)
    return copy


def test_the_committed_set() -> None:
    names = set(committed())
    assert names == {
        "city.json",
        "area-hillcrest.json",
        "area-old-town.json",
        "area-riverside.json",
        "operator.json",
    }


@pytest.mark.parametrize("name", sorted(committed()))
def test_loads_back_into_the_sdk_models(name: str) -> None:
    influxql.register()
    data = committed()[name]
    model = Dashboard.from_json(data)
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    assert again == _without_extensions(data)
    assert model.panels
    for panel in model.panels:
        if isinstance(panel, RowPanel):
            continue
        assert isinstance(panel.options, OPTIONS[panel.type_val]), panel.title
        custom = FIELD_CONFIGS.get(panel.type_val)
        if custom is not None:
            assert isinstance(panel.field_config.defaults.custom, custom), panel.title
        for target in panel.targets or []:
            assert isinstance(target, InfluxQuery), panel.title


@pytest.mark.parametrize("name", sorted(committed()))
def test_every_value_has_the_type_the_sdk_schema_gives_it(name: str) -> None:
    influxql.register()
    assert schema_errors(Dashboard.from_json(committed()[name]), name) == []


def test_the_schema_check_finds_wrong_values() -> None:
    influxql.register()
    data = committed()["area-riverside.json"]
    stat_panel = next(p for p in data["panels"] if p["type"] == "stat")
    series = next(p for p in data["panels"] if p["type"] == "timeseries")
    data["graphTooltip"] = 7
    stat_panel["fieldConfig"]["defaults"]["thresholds"]["mode"] = "bogus"
    series["options"]["legend"]["placement"] = "middle"
    series["fieldConfig"]["defaults"]["custom"]["lineWidth"] = "thick"
    errors = "\n".join(schema_errors(Dashboard.from_json(data)))
    for wrong in ("graph_tooltip", "thresholds.mode", "legend.placement", "line_width"):
        assert wrong in errors, errors
    series["targets"][0]["resultFormat"] = "xml"
    with pytest.raises(ValueError, match="ResultFormat"):
        Dashboard.from_json(data)


@pytest.mark.parametrize("name", sorted(committed()))
def test_every_panel_has_a_title_a_datasource_and_queries(name: str) -> None:
    influxql.register()
    model = Dashboard.from_json(committed()[name])
    ids = []
    for panel in model.panels or []:
        assert panel.title, f"{name}: a panel without a title"
        ids.append(panel.id_val)
        if isinstance(panel, RowPanel) or panel.type_val == "text":
            continue
        assert isinstance(panel, Panel)
        assert panel.datasource is not None and panel.datasource.uid == DATASOURCE_UID
        assert panel.datasource.type_val == "influxdb"
        assert panel.targets, f"{name}: {panel.title!r} has no query"
        ref_ids = [t.ref_id for t in panel.targets if isinstance(t, InfluxQuery)]
        assert len(set(ref_ids)) == len(panel.targets)
        for target in panel.targets:
            assert isinstance(target, InfluxQuery)
            assert target.query.startswith("SELECT ")
            assert "$timeFilter" in target.query or "time > now() - " in target.query
    assert len(set(ids)) == len(ids), f"{name}: panel ids repeat"


@pytest.mark.parametrize("name", sorted(committed()))
def test_public_dashboards_have_no_template_variables(name: str) -> None:
    data = committed()[name]
    public = PUBLIC_TAG in data["tags"]
    assert public == (name != "operator.json")
    if public:
        assert not data["templating"].get("list")
        # Only Grafana's InfluxDB macros and alias patterns: no variable of the dashboard's own.
        used = set(re.findall(r"\$\{?(\w+)", json.dumps(data)))
        assert used <= GRAFANA_NAMES, used - GRAFANA_NAMES


def test_thresholds_are_the_reference_values() -> None:
    city, riverside = committed()["city.json"], committed()["area-riverside.json"]
    pm_map = next(p for p in city["panels"] if p["type"] == "geomap" and "PM2.5" in p["title"])
    steps = pm_map["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [b.lower for b in AQI_PM25_2024]
    assert [s["value"] for s in steps][1:] == [9.1, 35.5, 55.5, 125.5, 225.5]
    lines = {
        p["title"].split(" ")[0]: p["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"]
        for p in riverside["panels"]
        if p["type"] == "timeseries" and p["title"].startswith("PM")
    }
    assert lines == {"PM2.5": WHO_2021_PM25_24H, "PM10": WHO_2021_PM10_24H}
    assert (WHO_2021_PM25_24H, WHO_2021_PM10_24H) == (15.0, 45.0)


def test_long_ranges_read_hourly_data_and_raw_panels_are_bounded() -> None:
    for name, data in committed().items():
        for panel in data["panels"]:
            for target in panel.get("targets", []):
                query = target["query"]
                if '"forever".' in query:
                    assert panel["interval"] == "1h", (name, panel["title"])
                elif "$timeFilter" in query and "GROUP BY time(" in query:
                    assert panel.get("timeFrom") in ("48h", "7d"), (name, panel["title"])


def test_building_twice_gives_the_same_bytes_and_the_committed_files(tmp_path: Path) -> None:
    first = build_example(tmp_path / "one")
    second = build_example(tmp_path / "two")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    for path in first:
        assert path.read_bytes() == (GENERATED_DIR / path.name).read_bytes(), (
            f"{path.name} differs from the committed copy: run "
            "'commons dashboards build --example' and commit dashboards/generated/"
        )


def test_uids_are_stable_and_fit_grafana() -> None:
    assert uid_for("area Old Town") == "commons-area-old-town"
    long = uid_for("area " + "A very long neighbourhood name " * 3)
    assert len(long) <= 40 and long == uid_for("area " + "A very long neighbourhood name " * 3)


def test_build_from_a_registry_on_the_command_line(tmp_path: Path, run_commons: RunCommons) -> None:
    registry = tmp_path / "registry.sqlite"
    exact = Location(51.123456, -2.654321)
    with Registry(registry) as nodes:
        nodes.add("north-air-1", "North End", exact)
        nodes.add("quay-air-1", "The Quay", Location(51.2, -2.5))
        nodes.add("loose-air-1")  # no area: not on any neighbourhood's dashboard
    out = tmp_path / "out"
    done = run_commons("dashboards", "build", "--registry", str(registry), "--out", str(out))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["area-north-end.json", "area-the-quay.json", "city.json", "operator.json"]
    assert done.stdout.split() == [str(out / n) for n in _build_order(names)]
    everything = "".join(p.read_text() for p in out.glob("*.json"))
    assert "51.123456" not in everything and "loose-air-1" not in everything
    # The same registry through the function the demo calls.
    again = build_all(registry, tmp_path / "again")
    assert [p.read_bytes() for p in again] == [(out / p.name).read_bytes() for p in again]
    missing = run_commons("dashboards", "build", "--registry", str(tmp_path / "none.sqlite"))
    assert missing.returncode != 0 and "no node registry" in missing.stderr


def _build_order(names: list[str]) -> list[str]:
    areas = sorted(n for n in names if n.startswith("area-"))
    return ["city.json", *areas, "operator.json"]


def test_provisioning_points_at_the_datasource_the_dashboards_use() -> None:
    datasource = (PROVISIONING_DIR / "datasources" / "commons.yaml").read_text()
    assert f"uid: {DATASOURCE_UID}" in datasource
    assert "type: influxdb" in datasource and "version: InfluxQL" in datasource
    assert "dbName: commons" in datasource
    assert "${COMMONS_INFLUX_READ_USER}" in datasource
    assert "${COMMONS_INFLUX_READ_PASSWORD}" in datasource
    provider = (PROVISIONING_DIR / "dashboards" / "commons.yaml").read_text()
    assert "type: file" in provider and "path: ${COMMONS_DASHBOARDS_DIR}" in provider


def test_a_bad_city_description_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "city.toml"
    path.write_text('[[node]]\nid = "ok-air-1"\narea = "North"\n\n[[node]]\nid = "x"\n')
    with pytest.raises(CityDescriptionError) as caught:
        from_description(path)
    assert caught.value.where == "node[1]" and str(path) in str(caught.value)


def test_the_example_city_is_the_demo_city_at_its_public_locations() -> None:
    from commons.demo import DEMO_LOCATIONS, DEMO_NODES
    from dashboards.city import EXAMPLE_CITY, from_description
    from ingest.registry import coarsen

    example = {node.id: node for node in from_description(EXAMPLE_CITY).nodes}
    assert set(example) == {node.node_id for node in DEMO_NODES}
    for node in DEMO_NODES:
        assert example[node.node_id].area == node.area
        assert example[node.node_id].public == coarsen(DEMO_LOCATIONS[node.node_id])
        assert example[node.node_id].kinds == (node.kind.value,)


def test_an_area_gets_panels_only_for_what_its_nodes_measure() -> None:
    from dashboards.area import area_dashboard
    from dashboards.city import City, PublicNode

    def titles(city: City, area: str) -> list[str]:
        board = area_dashboard(city, area)
        return [str(panel.title) for panel in board.panels or [] if hasattr(panel, "title")]

    air_only = City("t", (PublicNode("a-1", "North", None, 60, ("air",)),))
    assert not any("Noise" in t for t in titles(air_only, "North"))
    assert any("PM2.5" in t for t in titles(air_only, "North"))
    noise_only = City("t", (PublicNode("n-1", "North", None, 60, ("noise",)),))
    assert not any("PM" in t or "Temperature" in t for t in titles(noise_only, "North"))
    assert any("Noise" in t for t in titles(noise_only, "North"))
    # Not known: both kinds of panel, as before the registry knew kinds.
    unknown = City("t", (PublicNode("u-1", "North", None, 60),))
    both = titles(unknown, "North")
    assert any("Noise" in t for t in both) and any("PM10" in t for t in both)
