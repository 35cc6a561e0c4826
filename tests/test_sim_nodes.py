"""Simulated nodes end to end: the real firmware under the unix port, on the real stack.

``commons node simulate`` → real Mosquitto → the gateway → real InfluxDB: every reading the
nodes published is stored once, in order, with its timestamp from the node's (accelerated)
clock. A node lives through a day in its reduced heap without a MemoryError, and a node whose
watchdog is not fed is reset and comes back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from harness import RunCommons, influx_for, rows, running_gateway

from commons.home import StackInfo
from commons.micropython import FIRMWARE_DIR
from commons.procs import wait_until
from commons.sim.nodefolder import NodeSpec
from commons.sim.run import SUMMARY_FILE, SimulateOptions, simulate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (FIRMWARE_DIR / "main.py").exists(), reason="firmware/main.py is not there yet"
    ),
]


def _quiet(line: str) -> None:
    pass


def test_every_published_reading_is_stored_once(
    stack: StackInfo, commons_home: Path, run_commons: RunCommons, tmp_path: Path
) -> None:
    database = "sim_e2e"
    registry = commons_home / "registry.sqlite"
    (tmp_path / "gateway").mkdir()
    with running_gateway(stack, tmp_path / "gateway", database, gateway__registry=str(registry)):
        influx = influx_for(stack, database)
        started = time.time()
        proc = run_commons(
            "node", "simulate", "--count", "3", "--backfill", "1", "--speed", "360",
            "--duration", "5", "--seed", "11",
            timeout=180,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        summary = json.loads((commons_home / "sim" / SUMMARY_FILE).read_text())
        published = {node: set(e["seqs"]) for node, e in summary["nodes"].items()}
        assert len(published) == 3
        for node, seqs in published.items():
            # An hour at one reading a minute, then a few seconds live.
            assert len(seqs) >= 20, (node, summary["nodes"][node])
            assert summary["nodes"][node]["memory_errors"] == 0

        def stored() -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {}
            for row in rows(influx, 'SELECT "seq", "pm2_5" FROM "air" GROUP BY "node"'):
                out.setdefault(row["node"], []).append(row)
            return out

        def complete() -> bool:
            have = stored()
            return all(
                seqs <= {int(r["seq"]) for r in have.get(n, [])} for n, seqs in published.items()
            )

        wait_until(complete, 60, "every published reading in InfluxDB", poll=0.5)
        for node, points in stored().items():
            if node not in published:
                continue
            seqs = [int(p["seq"]) for p in points]
            assert len(seqs) == len(set(seqs)), f"{node}: a reading stored twice"
            assert seqs == sorted(seqs), f"{node}: timestamps out of order with seq"
            first = points[0]["time"]
            # The history came with the node's clock, which started an hour back (booting
            # takes real CPU time, which is minutes on a clock running 360 times faster).
            assert first < started - 900
            assert all(p["pm2_5"] is not None and p["pm2_5"] >= 0 for p in points)


def test_a_day_in_the_reduced_heap(stack: StackInfo, commons_home: Path) -> None:
    options = SimulateOptions(
        count=1, backfill_hours=24, speed=720, duration=0, seed=5, prefix="sim-heap"
    )
    summary = simulate(options, home=commons_home, echo=_quiet)
    node = summary["nodes"]["sim-heap-1"]
    assert node["memory_errors"] == 0 and node["crashes"] == 0, node
    # At 720 times real speed the firmware's 10 s MQTT timeouts are 14 ms of real time: on a
    # busy machine a reconnect can starve its watchdog once. Memory must hold regardless.
    assert sum(node["resets"].values()) <= 1, node
    assert node["readings"] >= 1200  # a reading a minute for 24 h, minus boot and warm-up
    assert node["heap_min"] is not None and node["heap_min"] > 0
    print(f"lowest free heap reported over a simulated day: {node['heap_min']} B")


def test_watchdog_reset_restarts_the_node(stack: StackInfo, commons_home: Path) -> None:
    spec = NodeSpec("sim-wdt-1", "Test", 0.5, 99, faults=(("i2c_hang_at_s", 120.0),))
    options = SimulateOptions(count=1, backfill_hours=2, speed=360, duration=0, seed=9)
    summary = simulate(options, nodes=[spec], home=commons_home, echo=_quiet)
    node = summary["nodes"]["sim-wdt-1"]
    assert node["resets"].get("WDT") == 1, node
    assert node["boots"] == 2
    assert node["crashes"] == 0
    console = Path(node["console"]).read_text()
    assert "the I2C bus hangs" in console and "watchdog timeout" in console
    # The node came back and said why it had reset.
    assert "watchdog" in node["reset_causes"], node
    assert node["readings"] > 10


def _tone_wav(path: Path, level_db: float, seconds: int = 3, rate: int = 48000) -> Path:
    """A 1 kHz tone of ``level_db`` SPL as a -26 dBFS INMP441 would record it (16-bit PCM)."""
    import math
    import struct
    import wave

    # 94 dB SPL peaks at (2^23 - 1) * 10^(-26/20) in 24-bit counts (REFERENCE 1.6): in 16 bits,
    # 256 times less.
    peak = 8388607 * 10 ** ((level_db - 94.0 - 26.0) / 20) / 256
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(
                struct.pack("<h", round(peak * math.sin(2 * math.pi * 1000 * i / rate)))
                for i in range(seconds * rate)
            )
        )
    return path


def test_noise_nodes_measure_street_noise_and_a_recording_into_influxdb(
    stack: StackInfo, commons_home: Path, tmp_path: Path
) -> None:
    database = "sim_noise_e2e"
    (tmp_path / "gateway").mkdir()
    street = NodeSpec("sim-noise-street", "Test", 1.0, 21)
    tone = NodeSpec("sim-noise-tone", "Test", 0.5, 22, mic_wav=_tone_wav(tmp_path / "t.wav", 80))
    registry = commons_home / "registry.sqlite"
    with running_gateway(stack, tmp_path / "gateway", database, gateway__registry=str(registry)):
        influx = influx_for(stack, database)
        started = time.time()
        # An hour of history at 360x (about 10 s), then live; a reading every 5 s of sound.
        options = SimulateOptions(
            kind="noise", count=2, backfill_hours=1, speed=360, interval=5, duration=12, seed=21
        )
        summary = simulate(options, nodes=[street, tone], home=commons_home, echo=_quiet)
        published = {node: set(e["seqs"]) for node, e in summary["nodes"].items()}
        for node, entry in summary["nodes"].items():
            assert entry["memory_errors"] == 0 and entry["crashes"] == 0, (node, entry)
            assert len(published[node]) >= 3, (node, entry)

        def stored() -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {}
            q = 'SELECT "seq", "laeq", "la90", "lafmax", "period", "qa" FROM "noise" GROUP BY node'
            for row in rows(influx, q):
                out.setdefault(row["node"], []).append(row)
            return out

        def complete() -> bool:
            have = stored()
            return all(
                seqs <= {int(r["seq"]) for r in have.get(n, [])} for n, seqs in published.items()
            )

        wait_until(complete, 60, "every published noise reading in InfluxDB", poll=0.5)
        points = stored()
        for node in published:
            seqs = [int(p["seq"]) for p in points[node]]
            assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs), node
            assert all(p["period"] == 5 for p in points[node]), points[node]
        # The street: the node's clock started an hour back; levels of a busy road.
        assert points["sim-noise-street"][0]["time"] < started - 600
        for p in points["sim-noise-street"]:
            assert 35 < p["la90"] <= p["laeq"] <= p["lafmax"] < 90, p
        # The recording: an 80 dB tone, measured by the firmware's meter, history and live.
        for p in points["sim-noise-tone"]:
            assert p["laeq"] == pytest.approx(80.0, abs=0.5), p
            assert p["qa"] == 0, p


def test_simulate_refuses_a_recording_the_meter_cannot_take(
    stack: StackInfo, run_commons: RunCommons, tmp_path: Path
) -> None:
    wav = _tone_wav(tmp_path / "low.wav", 80, seconds=1, rate=16000)
    proc = run_commons(
        "node", "simulate", "--kind", "noise", "--count", "1", "--duration", "0",
        "--mic", str(wav), "--seed", "31",
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "sample rate 16000 Hz not supported; supported rates: 44100, 48000 Hz" in proc.stderr
    proc = run_commons("node", "simulate", "--mic", str(wav), timeout=60)
    assert proc.returncode == 2 and "a recording needs --kind noise" in proc.stderr
