"""``commons demo``: the whole pipeline on this machine, left in place for a person to look at.

Stack (Mosquitto, InfluxDB) → database bootstrap → node registry in several neighbourhoods
→ the gateway service → simulated nodes publishing a day of history and then live readings
→ a planner export. Runs for ``--duration`` seconds or until interrupted.

Every node is the real firmware: a ``micropython`` process with emulated sensors
(commons/sim), its clock started a day back and running fast until it has caught up. Air nodes
take a reading a minute of their own time. Noise nodes measure the emulated microphone (street
noise on their clock) and report every ``--interval`` seconds (their period); while their
clocks run fast, the emulated microphone hands out at most a few times real time of audio, so
each history reading measures its period's worth of sound taken in short stretches over one to
a few hours of the node's day (docs/noise-simulation.md); live readings measure every sample.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from commons.contract import Kind
from commons.dynsec import Credentials
from commons.home import StackInfo, commons_home
from commons.procs import DeadlineExceededError, ProcessRef, wait_until
from commons.sim.nodefolder import NodeSpec
from commons.sim.run import SimulateOptions, Simulation, print_summary
from commons.stack import Stack
from gateway.nodes import Hardware, NodeAdmin
from gateway.queue import DurableQueue
from ingest.dbinit import init_database
from ingest.export import export_csv
from ingest.influx import InfluxHTTP
from ingest.registry import Location, Registry

HISTORY_STEP_S = 300
HISTORY_H = 24
# The air nodes' clocks replay the day this many times faster than real time (about a minute),
# taking a reading every AIR_SAMPLE_S seconds of their own time.
AIR_SPEED = 1440.0
AIR_SAMPLE_S = 60


@dataclass(frozen=True)
class DemoNode:
    node_id: str
    area: str
    kind: Kind
    traffic: float  # site character: 0 park edge .. 1 busy road
    seed: int


DEMO_NODES = (
    DemoNode("riverside-air-1", "Riverside", Kind.AIR, traffic=1.0, seed=1),
    DemoNode("riverside-air-2", "Riverside", Kind.AIR, traffic=0.6, seed=2),
    DemoNode("riverside-noise-1", "Riverside", Kind.NOISE, traffic=1.0, seed=3),
    DemoNode("oldtown-air-1", "Old Town", Kind.AIR, traffic=0.8, seed=4),
    DemoNode("oldtown-noise-1", "Old Town", Kind.NOISE, traffic=0.7, seed=5),
    DemoNode("hillcrest-air-1", "Hillcrest", Kind.AIR, traffic=0.2, seed=6),
)


# Where the demo's nodes hang: plausible spots in a mid-sized European city (private, exact);
# only the centres of their ~100 m grid cells are published.
DEMO_LOCATIONS = {
    "riverside-air-1": Location(45.76412, 4.83566),
    "riverside-air-2": Location(45.76188, 4.83281),
    "riverside-noise-1": Location(45.76307, 4.83733),
    "oldtown-air-1": Location(45.76221, 4.82709),
    "oldtown-noise-1": Location(45.76049, 4.82653),
    "hillcrest-air-1": Location(45.77363, 4.82781),
}


class _Interrupted(Exception):
    pass


def _register(info: StackInfo) -> dict[str, Credentials]:
    """Each demo node registered with its own MQTT credentials, as ``commons node add`` does."""
    nodes = NodeAdmin(info)
    return {
        node.node_id: nodes.ensure(
            node.node_id,
            node.area,
            DEMO_LOCATIONS.get(node.node_id),
            hardware=Hardware(
                (node.kind.value,),
                # The simulation's air nodes carry the SDS011 (SimulateOptions' default).
                SimulateOptions.pm_sensor if node.kind is Kind.AIR else None,
            ),
        )
        for node in DEMO_NODES
    }


def _simulation(home: Path, kind: Kind, interval: int) -> Simulation:
    """The demo's nodes of ``kind`` as simulated nodes running the firmware."""
    specs = [
        NodeSpec(node.node_id, node.area, node.traffic, node.seed)
        for node in DEMO_NODES
        if node.kind is kind
    ]
    options = SimulateOptions(
        count=len(specs),
        backfill_hours=HISTORY_H,
        speed=AIR_SPEED,
        interval=interval,
        duration=None,
        kind=kind.value,
    )
    return Simulation(options, specs, home)


def _start_gateway(home: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = home / "gateway.log"
    offset = log.stat().st_size if log.exists() else 0
    commons = Path(sys.executable).parent / "commons"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(commons), "gateway", "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COMMONS_HOME": str(home)},
        )

    def subscribed() -> bool:
        if proc.poll() is not None:
            raise click.ClickException(f"the gateway exited; see {log}")
        with log.open("rb") as handle:
            handle.seek(offset)
            return b"subscribed to" in handle.read()

    wait_until(subscribed, 30, "the gateway to subscribe")
    return proc, log


def _counters(home: Path) -> dict[str, int]:
    queue = DurableQueue(home / "gateway" / "queue.sqlite")
    try:
        return queue.counters()
    finally:
        queue.close()


def _wait_stored(home: Path, baseline: int, expected: int) -> None:
    with tqdm(
        total=expected, desc="stored in InfluxDB", unit="message", file=sys.stderr, disable=None
    ) as bar:

        def stored() -> bool:
            counters = _counters(home)
            # The gateway's own status points count as written too: compare readings only.
            done = min(expected, counters["received"] - baseline)
            bar.update(done - bar.n)
            return done >= expected and counters["queued"] == 0

        wait_until(stored, 300, "the history to be stored", poll=0.25)


def _summary(influx: InfluxHTTP, since: datetime) -> list[str]:
    lines = []
    start = int(since.timestamp())
    pm = influx.series(
        f'SELECT mean("pm2_5"), max("pm2_5"), count("pm2_5") FROM "air" '
        f'WHERE time >= {start}s GROUP BY "area"'
    )
    for serie in pm:
        _, mean, peak, count = serie["values"][0]
        lines.append(
            f"  {serie['tags']['area']:10} PM2.5 mean {mean:5.1f} µg/m³, "
            f"max {peak:5.1f} ({count} readings)"
        )
    noise = influx.series(
        f'SELECT 10 * log10(mean("e")) FROM (SELECT pow(10, "laeq" / 10) AS "e" '
        f'FROM "noise" WHERE time >= {start}s) WHERE time >= {start}s GROUP BY "area"'
    )
    for serie in noise:
        lines.append(f"  {serie['tags']['area']:10} LAeq,24h {serie['values'][0][1]:5.1f} dB(A)")
    return lines


def run_demo(duration: float | None, interval: float) -> None:
    home = commons_home()
    echo = click.echo
    echo(f"Sensor Commons demo in {home}")
    logging.getLogger("ingest.dbinit").setLevel(logging.WARNING)
    info: StackInfo = Stack(home).up()
    echo(f"  MQTT broker  mqtt://{info.mqtt.host}:{info.mqtt.port}")
    echo(f"  InfluxDB     {info.influx.url} (database {info.influx.database})")
    influx = InfluxHTTP(info.influx.url, info.influx.database)
    init_database(influx)
    _register(info)
    areas = sorted({node.area for node in DEMO_NODES})
    echo(f"  {len(DEMO_NODES)} nodes in {len(areas)} neighbourhoods: {', '.join(areas)}")

    def interrupt(signum: int, frame: object) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGTERM, interrupt)
    proc, gateway_log = _start_gateway(home)
    gateway = ProcessRef.of(proc.pid)
    echo(f"  gateway      pid {proc.pid}, log {gateway_log}")
    # The noise nodes' period: the live interval (at least a second, the firmware's minimum).
    noise_period = max(1, round(interval))
    simulations = {
        "Air": _simulation(home, Kind.AIR, AIR_SAMPLE_S),
        "Noise": _simulation(home, Kind.NOISE, noise_period),
    }
    started = time.monotonic()
    now = int(time.time())
    history_start = now - now % HISTORY_STEP_S - HISTORY_H * 3600
    summaries: dict[str, dict[str, Any]] = {}
    try:
        baseline = _counters(home)["received"]
        for sim in simulations.values():
            sim.start()
        for sim in simulations.values():
            sim.backfill()  # the same clock plan: the second returns at once
        sent = sum(
            seen.readings for sim in simulations.values() for seen in sim.published().values()
        )
        _wait_stored(home, baseline, sent)
        echo(
            f"Live: each noise node reports every {noise_period} s, each air node every "
            f"{AIR_SAMPLE_S} s" + (f" for {duration:g} s" if duration else "; Ctrl-C to stop")
        )
        while duration is None or time.monotonic() - started < duration:
            remaining = 1.0 if duration is None else duration - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(min(1.0, remaining))  # the demo's own pacing, not a synchronisation
    except (KeyboardInterrupt, _Interrupted):
        echo("\nStopping.")
    finally:
        for name, sim in simulations.items():
            summaries[name] = sim.stop()
        try:
            wait_until(lambda: _counters(home)["queued"] == 0, 30, "the queue to drain")
        except DeadlineExceededError as exc:
            echo(f"  warning: {exc}; the gateway keeps it for its next run")
        gateway.stop()
        signal.signal(signal.SIGTERM, previous)
    _report(home, influx, history_start)
    for name, summary in summaries.items():
        echo("")
        echo(f"{name} nodes (the firmware under MicroPython; console logs in their folders):")
        print_summary(summary, echo)


def _report(home: Path, influx: InfluxHTTP, history_start: int) -> None:
    """Dashboards, planner exports and a report of the day, then where to look."""
    from dashboards.build import build_all
    from ingest.calibration import load as load_calibrations
    from ingest.export import READING_MEASUREMENTS, ExportRequest, Format, Level, export
    from ingest.exportconfig import ExportSettings
    from ingest.report import PdfError, ReportRequest, write_report
    from ingest.selection import Selection

    echo = click.echo
    exports = home / "exports"
    exports.mkdir(exist_ok=True)
    since = datetime.fromtimestamp(history_start, UTC)
    until = datetime.now(UTC) + timedelta(seconds=1)
    progress = sys.stderr.isatty()
    registry_path = home / "registry.sqlite"
    dashboards = build_all(registry_path, home / "dashboards")

    settings = ExportSettings.load()
    calibrations = load_calibrations()
    made: list[str] = []
    with Registry(registry_path) as registry:
        raw_csv = exports / f"demo-{since:%Y%m%d}.csv"
        with raw_csv.open("w", newline="") as out:
            rows = export_csv(influx, out, since, until, progress=progress, registry=registry)
        made.append(f"{raw_csv} ({rows} raw readings)")
        selection = Selection(since, until, READING_MEASUREMENTS)
        planners: tuple[tuple[Format, Level, str], ...] = (
            ("parquet", "hourly", "hourly.parquet"),
            ("geojson", "daily", "daily.geojson"),
        )
        for fmt, level, suffix in planners:
            path = exports / f"demo-{since:%Y%m%d}-{suffix}"
            request = ExportRequest(selection, fmt=fmt, level=level, indicators=True)
            result = export(
                influx, registry, request, settings, calibrations, path, progress=progress
            )
            made.append(f"{path} ({result.rows} {level} rows with indicators, + .meta.json)")
        reports = []
        for area in registry.area_names():
            name = area.lower().replace(" ", "-")
            suffix = ".pdf" if shutil.which("chromium") else ".html"
            path = exports / f"report-{name}{suffix}"
            request_r = ReportRequest(area, since, until, settings.tz)
            try:
                write_report(influx, registry, request_r, path)
            except PdfError as exc:
                echo(f"  warning: {area}: no PDF ({exc}); writing HTML")
                path = path.with_suffix(".html")
                write_report(influx, registry, request_r, path)
            reports.append(path)
    counters = _counters(home)
    echo("")
    echo("The last 24 hours by neighbourhood:")
    for line in _summary(influx, since):
        echo(line)
    echo("")
    echo(
        f"Gateway: {counters['received']} messages received, {counters['written']} points "
        f"written, {counters['rejected']} rejected, {counters['queued']} queued."
    )
    echo(f"Exports ({settings.licence}):")
    for line in made:
        echo(f"  {line}")
    echo("Planner reports:")
    for path in reports:
        echo(f"  {path}")
    echo(f"Dashboards: {len(dashboards)} Grafana dashboards in {home / 'dashboards'}")
    echo("  (load them with dashboards/provisioning/: docs/dashboards.md)")
    echo("")
    script = Path(sys.executable).parent / "commons"
    command = "commons" if shutil.which("commons") == str(script) else str(script)
    echo(f"Where to look next (with COMMONS_HOME={home}):")
    echo(f"  {command} stack status                      the services, still running")
    echo(f"  {command} gateway status --dead-letters 10  queue counters, rejected messages")
    echo(f"  {command} node list                         nodes, areas, public locations")
    echo(f"  {command} export --start <ISO> --end <ISO> --format parquet --out FILE")
    echo(f"  {command} report --area Riverside --start <ISO> --end <ISO> --out report.pdf")
    echo(f"  {command} stack down                        stop the services (data is kept)")
