"""``commons node simulate``: prepare each node's flash, start and supervise its process, show
progress through the backfill, stop every process by PID, and summarise.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from commons.boards import board_path, load_board
from commons.dynsec import BrokerUnreachableError, DynsecError
from commons.home import StackInfo, commons_home, load_stack
from commons.sim.build import node_heap, node_path
from commons.sim.monitor import Monitor, MonitorError, NodeSeen
from commons.sim.nodefolder import LIVE_DAYS, ClockPlan, NodeSpec, prepare, provisioning_file
from commons.sim.supervisor import NodeProcess, stop_all

AREAS = ("Riverside", "Old Town", "Hillcrest")
DEFAULT_SPEED = 360.0
STATUS_EVERY_S = 300
POLL_S = 0.5
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class SimulateOptions:
    count: int = 3
    duration: float | None = None  # real seconds once live (None: until interrupted)
    interval: int = 60  # the nodes' sample interval, seconds of their own time
    backfill_hours: float = 0.0
    speed: float = DEFAULT_SPEED  # node clock speed while backfilling
    seed: int = 1
    kind: str = "air"
    status_s: int = STATUS_EVERY_S
    prefix: str | None = None  # node ids: <prefix>-1, ... (default: sim-<kind>)
    pm_sensor: str = "sds011"
    wifi_outages: tuple[int, int] | None = None
    heap: str | None = None  # -X heapsize= of each node (default: build.node_heap())
    mic: Path | None = None  # noise nodes: a WAV recording instead of street noise


class _Terminated(Exception):
    pass


def default_nodes(options: SimulateOptions) -> list[NodeSpec]:
    rng = random.Random(options.seed)
    prefix = options.prefix or f"sim-{options.kind}"
    return [
        NodeSpec(
            node_id=f"{prefix}-{i + 1}",
            area=AREAS[i % len(AREAS)],
            traffic=round(rng.uniform(0.2, 1.0), 2),
            seed=options.seed * 1000 + i + 1,
            pm_sensor=options.pm_sensor,
            wifi_outages=options.wifi_outages,
            mic_wav=options.mic,
        )
        for i in range(options.count)
    ]


def _credentials(home: Path, stack: StackInfo, spec: NodeSpec) -> dict[str, Any] | None:
    """The node's provisioning file, made as ``commons node add`` does when it is missing."""
    try:
        from gateway.nodes import NodeAdmin
    except ImportError:  # a tree without node accounts: anonymous broker
        return provisioning_file(home, spec.node_id)
    try:
        NodeAdmin(stack).ensure(spec.node_id, spec.area)
    except Exception as exc:
        click.echo(
            f"  {spec.node_id}: no MQTT credentials ({exc}); connecting anonymously", err=True
        )
    return provisioning_file(home, spec.node_id)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _wait(seconds: float, until: Callable[[], bool]) -> None:
    """Pace the run (not a synchronisation): return after ``seconds`` or when ``until()``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        time.sleep(min(POLL_S, max(0.0, end - time.monotonic())))


class Simulation:
    """Simulated nodes: their folders written, processes started and supervised, stopped by PID.

    ``start()``, then ``backfill()`` (progress until the nodes' clocks have caught up), then
    ``stop()``, which returns the summary (also written to ``$COMMONS_HOME/sim/summary.json``).
    """

    def __init__(
        self,
        options: SimulateOptions,
        nodes: list[NodeSpec] | None = None,
        home: Path | None = None,
        echo: Callable[[str], None] = click.echo,
    ) -> None:
        self.options = options
        self.home = home or commons_home()
        self.stack = load_stack(self.home)
        self.nodes = nodes or default_nodes(options)
        self.echo = echo
        self.sim_dir = self.home / "sim"
        now = time.time()
        self.clock = ClockPlan.backfill(
            now, options.backfill_hours, options.backfill_hours * 3600 / options.speed
        )
        self.heap = options.heap or node_heap()
        self.monitor: Monitor | None = None
        self.procs: list[NodeProcess] = []
        self._started = time.monotonic()

    def start(self) -> None:
        options = self.options
        board = load_board(board_path(options.kind))
        until = (
            self.clock.caught_up_at() + options.duration
            if options.duration is not None
            else time.time() + LIVE_DAYS * 86400
        )
        for spec in self.nodes:
            prepare(
                self.sim_dir / spec.node_id,
                spec,
                board,
                self.stack,
                self.clock,
                base=_credentials(self.home, self.stack, spec),
                sample_s=options.interval,
                status_s=options.status_s,
                until=until,
            )
        path = node_path(self.sim_dir / ".build")
        try:
            self.monitor = Monitor(self.stack, [n.node_id for n in self.nodes])
        except (MonitorError, OSError, DynsecError, BrokerUnreachableError) as exc:
            self.echo(f"  no MQTT monitor ({exc}): the summary will lack published counts")
        self.procs = [
            NodeProcess(spec.node_id, self.sim_dir / spec.node_id, path, self.heap)
            for spec in self.nodes
        ]
        self.echo(
            f"  {len(self.procs)} simulated {options.kind} nodes running the firmware "
            f"(micropython, heap {self.heap}), flash folders in {self.sim_dir}"
        )
        self._started = time.monotonic()
        for proc in self.procs:
            proc.start()

    def any_alive(self) -> bool:
        return any(p.alive() for p in self.procs)

    def backfill(self) -> None:
        """Show progress until the nodes' clocks have caught up with real time."""
        if self.options.backfill_hours > 0:
            _backfill_progress(self.clock, self.procs)

    def published(self) -> dict[str, NodeSeen]:
        return self.monitor.snapshot() if self.monitor is not None else {}

    def stop(self) -> dict[str, Any]:
        stop_all(self.procs)
        seen = self.monitor.snapshot() if self.monitor is not None else None
        if self.monitor is not None:
            self.monitor.close()
        summary = _summary(self.procs, seen, time.monotonic() - self._started)
        (self.sim_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def simulate(
    options: SimulateOptions,
    nodes: list[NodeSpec] | None = None,
    home: Path | None = None,
    echo: Callable[[str], None] = click.echo,
) -> dict[str, Any]:
    """Run the nodes to the end of ``options.duration`` (or Ctrl-C); return the summary."""
    sim = Simulation(options, nodes, home, echo)
    try:
        with _sigterm_raises():
            sim.start()
            sim.backfill()
            if options.duration is None:
                echo("Live; Ctrl-C to stop")
                while sim.any_alive():
                    time.sleep(POLL_S)  # waiting for Ctrl-C, not a synchronisation
            else:
                _wait(options.duration, lambda: not sim.any_alive())
    except (KeyboardInterrupt, _Terminated):
        echo("\nStopping.")
    finally:
        summary = sim.stop()
    print_summary(summary, echo)
    return summary


def _backfill_progress(clock: ClockPlan, procs: list[NodeProcess]) -> None:
    behind = clock.real_start - clock.start
    hours = behind / 3600
    total = round(behind)
    with tqdm(
        total=total, desc=f"backfill ({hours:g} h at {clock.speed:g}x)", unit="s",
        unit_scale=True, file=sys.stderr, disable=None,
    ) as bar:  # fmt: skip
        end = clock.caught_up_at()
        while time.time() < end and any(p.alive() for p in procs):
            virtual = clock.start + clock.speed * (time.time() - clock.real_start)
            bar.update(max(0, min(round(virtual - clock.start), total) - bar.n))
            time.sleep(POLL_S)  # progress display pacing, not a synchronisation
        bar.update(total - bar.n)


def _summary(
    procs: list[NodeProcess], seen: dict[str, NodeSeen] | None, elapsed: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"elapsed_s": round(elapsed, 1), "nodes": {}}
    for proc in procs:
        stats = proc.stats
        entry: dict[str, Any] = {
            "boots": stats.boots,
            "resets": dict(stats.resets),
            "crashes": stats.crashes,
            "memory_errors": stats.memory_errors,
            "state": stats.state,
            "console": str(proc.console),
            "heap_min_collected": proc.heap_min_collected(),
        }
        if seen is not None:
            node = seen[proc.node_id]
            entry.update(
                readings=len(node.seqs),
                messages=node.readings,
                seqs=sorted(node.seqs),
                heap_min=node.heap_min,
                statuses=node.statuses,
                reset_causes=node.reset_causes,
                first_ts=node.first_ts,
                last_ts=node.last_ts,
            )
        out["nodes"][proc.node_id] = entry
    return out


def print_summary(summary: dict[str, Any], echo: Callable[[str], None]) -> None:
    """Per node: readings published, lowest free heap (as its status messages reported it, and
    after a collection, from its console), boots and resets."""

    def size(value: object) -> str:
        return f"{value} B" if isinstance(value, int) else "?"

    echo("")
    echo(f"{'node':20} {'readings':>8} {'heap: status':>13} {'after gc':>10} {'boots':>5}  resets")
    for node_id, e in summary["nodes"].items():
        resets = ", ".join(f"{k} {v}" for k, v in sorted(e["resets"].items())) or "-"
        if e["memory_errors"]:
            resets += f" (MemoryError x{e['memory_errors']})"
        echo(
            f"{node_id:20} {e.get('readings', '?')!s:>8} {size(e.get('heap_min')):>13} "
            f"{size(e.get('heap_min_collected')):>10} {e['boots']:>5}  {resets}"
            + (f"  [{e['state']}]" if e["state"] not in ("killed", "running") else "")
        )
