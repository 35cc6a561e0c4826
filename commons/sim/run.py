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
    prefix: str = "sim-air"


class _Terminated(Exception):
    pass


def default_nodes(options: SimulateOptions) -> list[NodeSpec]:
    rng = random.Random(options.seed)
    return [
        NodeSpec(
            node_id=f"{options.prefix}-{i + 1}",
            area=AREAS[i % len(AREAS)],
            traffic=round(rng.uniform(0.2, 1.0), 2),
            seed=options.seed * 1000 + i + 1,
        )
        for i in range(options.count)
    ]


def _credentials(home: Path, stack: StackInfo, spec: NodeSpec) -> dict[str, Any] | None:
    """The node's provisioning file, made with ``commons node add`` semantics when missing."""
    base = provisioning_file(home, spec.node_id)
    if base is not None:
        return base
    try:
        from gateway.nodes import NodeAdmin
    except ImportError:  # a tree without node accounts: anonymous broker
        return None
    try:
        NodeAdmin(stack).add(spec.node_id, spec.area)
    except Exception as exc:
        click.echo(
            f"  {spec.node_id}: no MQTT credentials ({exc}); connecting anonymously", err=True
        )
        return None
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


def simulate(
    options: SimulateOptions,
    nodes: list[NodeSpec] | None = None,
    home: Path | None = None,
    echo: Callable[[str], None] = click.echo,
) -> dict[str, Any]:
    """Run the nodes; return (and write to ``$COMMONS_HOME/sim/summary.json``) the summary."""
    home = home or commons_home()
    stack = load_stack(home)
    nodes = nodes or default_nodes(options)
    board = load_board(board_path(options.kind))
    sim_dir = home / "sim"
    now = time.time()
    clock = ClockPlan.backfill(
        now, options.backfill_hours, options.backfill_hours * 3600 / options.speed
    )
    catch_up = clock.caught_up_at()
    until = catch_up + options.duration if options.duration is not None else now + LIVE_DAYS * 86400
    for spec in nodes:
        prepare(
            sim_dir / spec.node_id,
            spec,
            board,
            stack,
            clock,
            base=_credentials(home, stack, spec),
            sample_s=options.interval,
            status_s=options.status_s,
            until=until,
        )
    path = node_path(sim_dir / ".build")
    try:
        monitor: Monitor | None = Monitor(stack, [n.node_id for n in nodes])
    except (MonitorError, OSError) as exc:
        echo(f"  no MQTT monitor ({exc}): the summary will lack published counts")
        monitor = None
    procs = [NodeProcess(spec.node_id, sim_dir / spec.node_id, path, node_heap()) for spec in nodes]
    echo(
        f"{len(procs)} simulated {options.kind} nodes ({', '.join(n.node_id for n in nodes)}), "
        f"heap {node_heap()}, folders in {sim_dir}"
    )
    started = time.monotonic()
    try:
        with _sigterm_raises():
            for proc in procs:
                proc.start()
            if options.backfill_hours > 0:
                _backfill_progress(clock, procs)
            if options.duration is None:
                echo("Live; Ctrl-C to stop")
                while any(p.alive() for p in procs):
                    time.sleep(POLL_S)
            else:
                _wait(options.duration, lambda: not any(p.alive() for p in procs))
    except (KeyboardInterrupt, _Terminated):
        echo("\nStopping.")
    finally:
        stop_all(procs)
        if monitor is not None:
            monitor.close()
    summary = _summary(procs, monitor.snapshot() if monitor else None, time.monotonic() - started)
    (sim_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary, echo)
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


def _print_summary(summary: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo("")
    echo(f"{'node':20} {'readings':>8} {'min heap':>9} {'boots':>5}  resets")
    for node_id, e in summary["nodes"].items():
        heap = e.get("heap_min")
        resets = ", ".join(f"{k} {v}" for k, v in sorted(e["resets"].items())) or "-"
        if e["memory_errors"]:
            resets += f" (MemoryError x{e['memory_errors']})"
        echo(
            f"{node_id:20} {e.get('readings', '?')!s:>8} "
            f"{(f'{heap} B' if heap is not None else '?'):>9} {e['boots']:>5}  {resets}"
            + (f"  [{e['state']}]" if e["state"] not in ("killed", "running") else "")
        )
