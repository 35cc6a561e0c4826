"""Owners' rights: ``commons node export`` hands over everything, ``node forget`` erases it.

The scene of ``exportscene`` (a database and ``$COMMONS_HOME`` of this module's own), with
hourly means in ``forever`` computed by the same statements the continuous queries run.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from exportscene import END, EXACT, START, Scene, make_scene, stored
from harness import RunCommons, admin

from commons import access
from commons.home import STACK_FILE, StackInfo, load_stack
from gateway.nodes import NodeAdmin
from ingest.dbinit import recompute_hours
from ingest.influx import InfluxHTTP
from ingest.owner import measurements, retention_policies, series_left, stored_points
from ingest.schema import HOURLY_RP

pytestmark = pytest.mark.integration


@pytest.fixture
def scene(stack: StackInfo, tmp_path: Path) -> Scene:
    scene = make_scene(stack, tmp_path)
    influx = scene.influx(stack.influx.url)
    hours = range(int(START.timestamp()), int(END.timestamp()), 3600)
    for measurement in ("air", "noise", "node_status"):
        recompute_hours(influx, measurement, hours)
    influx.close()
    return scene


@pytest.fixture
def influx(stack: StackInfo, scene: Scene) -> Iterator[InfluxHTTP]:
    client = scene.influx(stack.influx.url)
    yield client
    client.close()


def _points_everywhere(influx: InfluxHTTP, node: str) -> dict[tuple[str, str], int]:
    """(retention policy, measurement) → the node's points, for each pair that has some;
    every measurement of every retention policy is asked."""
    out = {}
    for rp in retention_policies(influx):
        for measurement in measurements(influx):
            series = influx.series(
                f'SELECT count(*) FROM "{influx.database}"."{rp}"."{measurement}" '
                f"WHERE \"node\" = '{node}'"
            )
            values = [v for s in series for row in s["values"] for v in row[1:] if v is not None]
            if max([0, *values]):
                out[(rp, measurement)] = max(values)
    return out


def test_node_export_hands_over_everything_the_node_sent(
    run_commons: RunCommons, scene: Scene, influx: InfluxHTTP, tmp_path: Path
) -> None:
    out = tmp_path / "mine.csv"
    done = run_commons("node", "export", scene.air, "--out", str(out), home=scene.home)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out, comment="#")
    assert set(frame["node"]) == {scene.air}
    air = frame[frame["measurement"] == "air"]
    assert list(air["pm2_5"]) == [r["pm2_5"] for r in stored(influx, "air", scene.air)]
    (status,) = frame[frame["measurement"] == "node_status"].to_dict("records")
    assert status["uptime"] == 60.0 and status["state"] == "online"
    assert (status["lat"], status["lon"]) == (
        scene.public[scene.air].lat,
        scene.public[scene.air].lon,
    )
    text = out.read_text()
    assert str(EXACT["a"].lat) not in text and str(EXACT["a"].lon) not in text
    meta = json.loads((tmp_path / "mine.csv.meta.json").read_text())
    assert meta["measurements"] == ["air", "noise", "node_status"]
    assert meta["rows"] == len(frame)

    # The format follows the file's suffix.
    done = run_commons(
        "node", "export", scene.air, "--out", str(tmp_path / "mine.parquet"), home=scene.home
    )
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(tmp_path / "mine.parquet")) == len(frame)


def test_node_forget_leaves_nothing_of_the_node(
    run_commons: RunCommons, scene: Scene, influx: InfluxHTTP
) -> None:
    nodes = NodeAdmin(load_stack(scene.home))
    nodes.add(scene.air)  # credentials on the broker for the registered node
    before = {node: _points_everywhere(influx, node) for node in scene.nodes}
    mine = before[scene.air]
    assert mine[(HOURLY_RP, "air_1h")] > 0 and mine[("raw", "air")] > 0
    assert mine[("raw", "node_status")] == 1

    done = run_commons("node", "forget", scene.air, home=scene.home)  # no answer: no
    assert done.returncode != 0
    assert _points_everywhere(influx, scene.air) == mine

    done = run_commons("node", "forget", scene.air, "--yes", home=scene.home)
    assert done.returncode == 0, done.stderr
    for (rp, measurement), points in mine.items():
        if points:
            assert f"deleted {rp}.{measurement}: {points} points" in done.stdout
    assert "credentials revoked" in done.stdout and "registry entry" in done.stdout

    after = _points_everywhere(influx, scene.air)
    assert after == {}, after
    assert series_left(influx, scene.air) == []
    assert stored_points(influx, scene.air) == []
    for node in scene.nodes:
        if node != scene.air:
            assert _points_everywhere(influx, node) == before[node], node
    with scene.registry() as registry:
        assert scene.air not in {n.id for n in registry.nodes()}
        assert scene.noise in {n.id for n in registry.nodes()}
    with admin(load_stack(scene.home)) as dynsec:
        assert scene.air not in access.node_clients(dynsec)

    done = run_commons("node", "forget", scene.air, "--yes", home=scene.home)
    assert done.returncode == 1
    assert scene.air in done.stderr


def test_node_forget_of_an_unregistered_node_with_data(
    run_commons: RunCommons, scene: Scene, influx: InfluxHTTP
) -> None:
    assert stored(influx, "air", scene.unregistered)
    done = run_commons("node", "forget", scene.unregistered, "--yes", home=scene.home)
    assert done.returncode == 0, done.stderr
    assert "not registered" in done.stdout
    assert _points_everywhere(influx, scene.unregistered) == {}
    assert stored(influx, "air", scene.south)


def test_node_forget_without_the_broker_says_credentials_were_not_revoked(
    run_commons: RunCommons, scene: Scene, influx: InfluxHTTP
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    description = json.loads((scene.home / STACK_FILE).read_text())
    description["mqtt"]["port"] = closed_port
    (scene.home / STACK_FILE).write_text(json.dumps(description))
    done = run_commons("node", "forget", scene.noise, "--yes", home=scene.home)
    assert done.returncode == 0, done.stderr
    assert "credentials NOT revoked" in done.stdout
    assert f"127.0.0.1:{closed_port}" in done.stderr
    assert _points_everywhere(influx, scene.noise) == {}
    with scene.registry() as registry:
        assert scene.noise not in {n.id for n in registry.nodes()}
    assert _points_everywhere(influx, scene.air)
