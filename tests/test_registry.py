"""The node registry: locations kept private, only coarsened public ones leave it."""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from harness import (
    Publisher,
    RunCommons,
    influx_for,
    node_credentials,
    rows,
    running_gateway,
)
from hypothesis import given
from hypothesis import strategies as st

from commons.home import StackInfo
from commons.procs import wait_until
from ingest.registry import (
    DEFAULT_GRID_M,
    Location,
    NodeLookup,
    Registry,
    RegistryError,
    coarsen,
)

# Metres per degree of latitude, as an independent check of the grid's size.
M_PER_DEG = 111_320.0

lats = st.floats(min_value=-80.0, max_value=80.0, allow_nan=False)
lons = st.floats(min_value=-179.99, max_value=179.99, allow_nan=False)


def _distance_m(a: Location, b: Location) -> float:
    """Equirectangular distance: accurate to well under 1% over a few hundred metres."""
    mean_lat = math.radians((a.lat + b.lat) / 2)
    dy = (a.lat - b.lat) * M_PER_DEG
    dx = (a.lon - b.lon) * M_PER_DEG * math.cos(mean_lat)
    return math.hypot(dx, dy)


@given(lats, lons)
def test_the_public_location_is_within_half_a_cell_diagonal(lat: float, lon: float) -> None:
    exact = Location(lat, lon)
    public = coarsen(exact)
    # Half the diagonal of a 100 m cell, plus the rounding of the public coordinates.
    assert _distance_m(exact, public) <= DEFAULT_GRID_M * math.sqrt(2) / 2 * 1.01 + 2


@given(lats, lons)
def test_every_location_of_a_cell_maps_to_its_centre(lat: float, lon: float) -> None:
    public = coarsen(Location(lat, lon))
    # The cell's centre is its own public location, and nearby points share it.
    assert coarsen(public) == public
    assert coarsen(Location(public.lat + 0.0001, public.lon - 0.0001)) == public


def test_the_grid_is_about_the_requested_size() -> None:
    paris = Location(48.8566, 2.3522)
    centres = {coarsen(Location(paris.lat + i * 1e-5, paris.lon)) for i in range(2000)}
    lat_steps = sorted({c.lat for c in centres})
    spacing = [(b - a) * M_PER_DEG for a, b in itertools.pairwise(lat_steps)]
    assert spacing and all(abs(s - 100.0) < 1.0 for s in spacing)
    lon_centres = sorted(
        {coarsen(Location(paris.lat, paris.lon + i * 1e-5)).lon for i in range(3000)}
    )
    steps = [
        (b - a) * M_PER_DEG * math.cos(math.radians(paris.lat))
        for a, b in itertools.pairwise(lon_centres)
    ]
    assert steps and all(abs(s - 100.0) < 2.0 for s in steps)
    assert len({coarsen(paris, 500.0), coarsen(Location(48.858, 2.353), 500.0)}) == 1


def test_bad_locations_and_grids_are_refused(tmp_path: Path) -> None:
    with Registry(tmp_path / "r.sqlite") as registry:
        registry.add("node-1", "north")
        with pytest.raises(RegistryError, match="latitude 91"):
            registry.set_location("node-1", Location(91.0, 0.0))
        with pytest.raises(RegistryError, match="longitude"):
            registry.set_location("node-1", Location(0.0, float("nan")))
        with pytest.raises(RegistryError, match="grid"):
            registry.set_location("node-1", Location(1.0, 1.0), grid_m=0)
        with pytest.raises(RegistryError, match="not registered"):
            registry.set_location("node-2", Location(1.0, 1.0))
        assert registry.node("node-1").location is None


def test_locations_are_kept_changed_and_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with Registry(path) as registry:
        added = registry.add("node-1", "north", Location(48.85661, 2.35222), interval=60)
        assert added.location == Location(48.85661, 2.35222)
        assert added.public == coarsen(Location(48.85661, 2.35222))
        assert added.public != added.location
        assert added.interval == 60
        moved = registry.set_location("node-1", Location(48.87, 2.36), grid_m=250)
        assert moved.public == coarsen(Location(48.87, 2.36), 250)
        assert moved.grid_m == 250
    with Registry(path) as registry:
        assert registry.node("node-1").public == moved.public
        registry.set_location("node-1", None)
        assert registry.node("node-1").public is None
        assert registry.area_names() == ["north"]


def test_what_a_node_measures_is_kept_and_checked(tmp_path: Path) -> None:
    with Registry(tmp_path / "r.sqlite") as registry:
        registry.add("node-1", "north")
        assert registry.node("node-1").kinds == ()
        node = registry.set_hardware("node-1", ("noise", "air"), "pms5003")
        assert (node.kinds, node.pm_sensor) == (("air", "noise"), "pms5003")
        with pytest.raises(RegistryError, match="kind 'co2'"):
            registry.set_hardware("node-1", ("co2",))
        with pytest.raises(RegistryError, match="PM sensor 'sps30'"):
            registry.set_hardware("node-1", ("air",), "sps30")
        assert registry.node("node-1").pm_sensor == "pms5003"


def test_a_registry_from_before_locations_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE nodes (id TEXT PRIMARY KEY, area TEXT, added REAL NOT NULL)")
    db.execute("INSERT INTO nodes VALUES ('old-node', 'south', 1.0)")
    db.commit()
    db.close()
    with Registry(path) as registry:
        old = registry.node("old-node")
        assert (old.area, old.location, old.public) == ("south", None, None)
        registry.set_location("old-node", Location(51.5, -0.12))
    lookup = NodeLookup(path)
    info = lookup.info("old-node")
    assert info is not None and info.public == coarsen(Location(51.5, -0.12))
    assert not hasattr(info, "location")


@pytest.mark.integration
def test_only_the_public_location_reaches_influxdb(stack: StackInfo, tmp_path: Path) -> None:
    database = f"t_{uuid.uuid4().hex[:10]}"
    influx = influx_for(stack, database)
    node = f"loc-{uuid.uuid4().hex[:6]}"
    exact = Location(45.764043, 4.835659)
    with Registry(tmp_path / "registry.sqlite") as registry:
        registry.add(node, "Presqu'ile", exact)
    public = coarsen(exact)
    ts = int(time.time()) - 60
    with running_gateway(stack, tmp_path, database):
        publisher = Publisher(stack, node_credentials(stack, node))
        status = {
            "v": 1,
            "ts": ts,
            "seq": 1,
            "fw": "t",
            "flags": [],
            "uptime": 5,
            "state": "online",
        }
        publisher.publish_json(f"commons/v1/{node}/status", status)
        air = {"v": 1, "ts": ts, "seq": 2, "fw": "t", "flags": [], "pm2_5": 3.0}
        publisher.publish_json(f"commons/v1/{node}/air", air)
        publisher.flush()
        publisher.close()
        wait_until(
            lambda: (
                len(rows(influx, "SELECT * FROM node_status")) == 1
                and len(rows(influx, "SELECT * FROM air")) == 1
            ),
            timeout=30,
            what="status and air points in InfluxDB",
        )
    stored = rows(influx, 'SELECT * FROM node_status GROUP BY "node", "area"')
    assert len(stored) == 1
    assert stored[0]["lat"] == public.lat and stored[0]["lon"] == public.lon
    assert stored[0]["area"] == "Presqu'ile"
    everything = json.dumps(rows(influx, "SELECT * FROM node_status, air"))
    assert str(exact.lat) not in everything and str(exact.lon) not in everything


@pytest.mark.integration
def test_node_add_and_locate_from_the_command_line(
    stack: StackInfo, run_commons: RunCommons
) -> None:
    node = f"cli-{uuid.uuid4().hex[:6]}"
    added = run_commons(
        "node", "add", node, "--area", "Old Town", "--lat", "48.1", "--lon", "11.5",
        "--kind", "air", "--pm-sensor", "pms5003",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = json.loads(run_commons("node", "list", "--json").stdout)
    entry = next(n for n in listed if n["node"] == node)
    assert entry["location"] == {"lat": 48.1, "lon": 11.5}
    assert (entry["kinds"], entry["pm_sensor"]) == (["air"], "pms5003")
    public = coarsen(Location(48.1, 11.5))
    assert entry["public"] == {"lat": public.lat, "lon": public.lon}
    moved = run_commons("node", "locate", node, "--lat", "48.2", "--lon", "11.6", "--grid", "500")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["public"] == {
        "lat": coarsen(Location(48.2, 11.6), 500).lat,
        "lon": coarsen(Location(48.2, 11.6), 500).lon,
    }
    half = run_commons("node", "locate", node, "--lat", "48.2")
    assert half.returncode == 2 and "--lon" in half.stderr
    unknown = run_commons("node", "locate", "no-such-node", "--lat", "1", "--lon", "1")
    assert unknown.returncode == 1 and "not registered" in unknown.stderr
    changed = run_commons("node", "set", node, "--kind", "noise", "--interval", "30")
    assert changed.returncode == 0, changed.stderr
    described = json.loads(changed.stdout)
    # Given values change, the rest stays: the PM sensor is still the one given at add.
    assert (described["kinds"], described["pm_sensor"]) == (["noise"], "pms5003")
    assert (described["area"], described["interval"]) == ("Old Town", 30.0)
    assert run_commons("node", "set", node).returncode == 2
    assert run_commons("node", "set", node, "--interval", "-1").returncode == 2
    assert run_commons("node", "set", "no-such-node", "--area", "X").returncode == 1
    cleared = run_commons("node", "locate", node, "--clear")
    assert json.loads(cleared.stdout)["public"] is None
    assert run_commons("node", "remove", node).returncode == 0
