"""A day in the city: a session-scoped database holding 24 hours of history from nodes in two
neighbourhoods, delivered through the real gateway, with its hourly aggregates computed.

The air nodes are the real simulator (``commons node simulate --backfill 24 --speed 3600``,
the firmware under the MicroPython unix port) publishing to the stack's Mosquitto. The
simulator has no noise node yet (``--kind noise`` is not among its choices), so the day's noise
readings and the noise nodes' status messages are published over MQTT by a Python publisher
following the contract (payload version 1), each noise node with its own credentials, through
the same gateway. Every node is in a registry of its own with an area and a public location, as
``commons node add --area --lat --lon`` makes it; the gateway reads it to tag points.

Request the ``cityday`` fixture; tests get a :class:`CityDay`.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from harness import COMMONS, Publisher, node_credentials, rows, running_gateway

from commons.contract import Kind, topic_for
from commons.home import StackInfo
from commons.procs import wait_until
from ingest.dbinit import HOUR_S, hour_start, init_database, recompute_hours
from ingest.influx import InfluxHTTP
from ingest.registry import Location, Registry

DATABASE = "cityday"
HISTORY_H = 24
SPEED = 3600
SIM_SEED = 21
# What `commons node simulate --count 2` names its nodes and where it puts them.
AIR_NODES = {"sim-air-1": "Riverside", "sim-air-2": "Old Town"}
NOISE_NODES = {"city-noise-1": "Riverside", "city-noise-2": "Old Town"}
AIR_INTERVAL_S = 60
NOISE_PERIOD_S = 300
STATUS_EVERY_S = 300
LOCATIONS = {
    "sim-air-1": Location(51.45046, -2.59781),
    "sim-air-2": Location(51.45493, -2.59202),
    "city-noise-1": Location(51.44958, -2.59477),
    "city-noise-2": Location(51.45577, -2.58917),
}
SIMULATE_TIMEOUT_S = 120.0
DELIVERY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class CityDay:
    stack: StackInfo
    influx: InfluxHTTP
    registry: Path
    start: int  # first second of history (UTC s)
    end: int  # when the history was complete
    readings: dict[str, int]  # air and noise readings stored, per node

    @property
    def areas(self) -> list[str]:
        return sorted(set(AIR_NODES.values()) | set(NOISE_NODES.values()))

    def nodes(self, kind: Kind | None = None, area: str | None = None) -> set[str]:
        table = {Kind.AIR: AIR_NODES, Kind.NOISE: NOISE_NODES}
        kinds = [kind] if kind is not None else [Kind.AIR, Kind.NOISE]
        return {n for k in kinds for n, a in table[k].items() if area is None or a == area}


def _register(path: Path) -> None:
    with Registry(path) as registry:
        for node_id, area in AIR_NODES.items():
            registry.add(node_id, area, LOCATIONS[node_id], interval=AIR_INTERVAL_S)
        for node_id, area in NOISE_NODES.items():
            registry.add(node_id, area, LOCATIONS[node_id], interval=NOISE_PERIOD_S)


def _noise_levels(rng: random.Random, ts: int, traffic: float) -> dict[str, float]:
    """A plausible street's noise: loud in the day, quiet at night, percentiles in order."""
    hour = (ts % 86400) / 3600
    diurnal = 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 3) / 24)  # lowest at 03:00
    la50 = 42 + 16 * diurnal * traffic + rng.gauss(0, 1.0)
    la90 = la50 - 4 - rng.random() * 2
    la10 = la50 + 4 + rng.random() * 3
    laeq = la50 + 2.5 + rng.random() * 2
    return {
        "period": float(NOISE_PERIOD_S),
        "laeq": round(laeq, 1),
        "lafmax": round(la10 + 8 + rng.random() * 6, 1),
        "lafmin": round(la90 - 2 - rng.random(), 1),
        "la10": round(la10, 1),
        "la50": round(la50, 1),
        "la90": round(la90, 1),
    }


def publish_noise_day(stack: StackInfo, registry: Path, start: int, end: int) -> int:
    """The noise nodes' readings and status messages from ``start`` to ``end``; returns the
    number of noise readings published (each acknowledged by the broker)."""
    published = 0
    for i, (node_id, area) in enumerate(sorted(NOISE_NODES.items())):
        rng = random.Random(SIM_SEED * 100 + i)
        credentials = node_credentials(stack, node_id, area, registry)
        publisher = Publisher(stack, credentials, client_id=node_id)
        try:
            for seq, ts in enumerate(range(start, end, NOISE_PERIOD_S), start=1):
                payload = {"v": 1, "ts": ts, "seq": seq, "fw": "test-noise-1", "flags": []}
                publisher.publish_json(
                    topic_for(node_id, Kind.NOISE),
                    {**payload, **_noise_levels(rng, ts, 1.0 - 0.3 * i)},
                )
                published += 1
                if (ts - start) % STATUS_EVERY_S == 0:
                    publisher.publish_json(
                        topic_for(node_id, Kind.STATUS),
                        {
                            "v": 1,
                            "ts": ts,
                            "uptime": ts - start,
                            "heap_free": 61000 - rng.randrange(2000),
                            "rssi": -60 - rng.randrange(15),
                            "buffered": 0,
                            "reset_cause": "power_on",
                            "state": "online",
                        },
                    )
        finally:
            publisher.close()
    return published


def _counts(influx: InfluxHTTP, measurement: str) -> dict[str, int]:
    return {
        r["node"]: int(r["count"])
        for r in rows(influx, f'SELECT count("qa") FROM "{measurement}" GROUP BY "node"')
    }


def _simulate(home: Path, log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(COMMONS), "node", "simulate", "--count", str(len(AIR_NODES)),
            "--backfill", str(HISTORY_H), "--speed", str(SPEED), "--duration", "0",
            "--interval", str(AIR_INTERVAL_S), "--seed", str(SIM_SEED),
        ],
        env={**os.environ, "COMMONS_HOME": str(home)},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def cityday(
    stack: StackInfo, commons_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CityDay]:
    # Imported here: every test session imports this module (conftest.py), few need the simulator.
    from commons.sim.run import SUMMARY_FILE

    workdir = tmp_path_factory.mktemp("cityday")
    registry = workdir / "registry.sqlite"
    _register(registry)
    influx = InfluxHTTP(stack.influx.url, DATABASE)
    init_database(influx)
    (workdir / "gateway").mkdir()
    with running_gateway(
        stack, workdir / "gateway", DATABASE, gateway__registry=str(registry)
    ) as gateway:
        started = int(time.time())
        start = started - HISTORY_H * HOUR_S
        with (workdir / "simulate.log").open("w+") as log:
            proc = _simulate(commons_home, log)
            try:
                noise = publish_noise_day(stack, registry, start, started)
                proc.wait(SIMULATE_TIMEOUT_S)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            log.seek(0)
            assert proc.returncode == 0, log.read()
        summary = json.loads((commons_home / "sim" / SUMMARY_FILE).read_text())
        published = {n: len(summary["nodes"][n]["seqs"]) for n in AIR_NODES}
        assert all(count > 0 for count in published.values()), summary

        def delivered() -> bool:
            air, noises = _counts(influx, "air"), _counts(influx, "noise")
            return (
                all(air.get(n, 0) >= c for n, c in published.items())
                and sum(noises.values()) >= noise
                and gateway.counters()["queued"] == 0
            )

        wait_until(delivered, DELIVERY_TIMEOUT_S, "the day's readings in InfluxDB", poll=0.3)
    end = int(time.time())
    hours = range(hour_start(start), end + 1, HOUR_S)
    for measurement in ("air", "noise", "node_status"):
        recompute_hours(influx, measurement, hours)
    readings = {**_counts(influx, "air"), **_counts(influx, "noise")}
    print(f"a day in the city: readings per node {readings}")
    yield CityDay(stack, influx, registry, start, end, readings)
