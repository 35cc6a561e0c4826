"""SIGTERM at any moment ends the gateway cleanly, and loses nothing.

The gateway's signal handler only sets a flag (gateway/stopflag.py): a handler that took a
lock, or logged, could hang against the code it interrupted. These tests stop the real
gateway with SIGTERM at random moments, from just after it was spawned to the middle of a
stream of readings, and check each time that it exits by itself within a deadline, with
its uplink process, and in the end that every reading is stored exactly once.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from harness import GatewayProcess, Publisher, air_payload, influx_for, rows, wait_for_count

from commons.home import StackInfo
from commons.procs import wait_until
from gateway.stopflag import StopFlag
from ingest.influx import InfluxHTTP

EXIT_DEADLINE_S = 30.0


def test_stop_flag_set_by_a_signal_ends_a_wait() -> None:
    flag = StopFlag()
    assert not flag.wait(0.05)
    previous = signal.signal(signal.SIGUSR1, flag.on_signal)
    try:
        signal.raise_signal(signal.SIGUSR1)
        assert flag.wait(5.0)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert flag.is_set() and flag.signum == signal.SIGUSR1


def _stored_seqs(influx: InfluxHTTP, node: str) -> list[int]:
    q = f"SELECT seq FROM air WHERE node = '{node}'"
    return sorted(int(r["seq"]) for r in rows(influx, q))


def _terminate(gateway: GatewayProcess) -> int:
    """SIGTERM; the gateway and its uplink must be gone by themselves within the deadline."""
    assert gateway.proc is not None
    try:
        children = gateway.children()
    except FileNotFoundError:
        children = []
    gateway.proc.send_signal(signal.SIGTERM)
    try:
        code = gateway.proc.wait(EXIT_DEADLINE_S)
    except subprocess.TimeoutExpired:
        gateway.proc.kill()
        gateway.proc.wait(10)
        pytest.fail(f"the gateway did not end within {EXIT_DEADLINE_S:.0f} s of SIGTERM")
    gateway.proc = None
    wait_until(
        lambda: not any(child.alive() for child in children),
        EXIT_DEADLINE_S,
        "the stopped gateway's uplink process to exit",
    )
    return code


@pytest.mark.integration
@pytest.mark.fault
def test_sigterm_at_random_moments_ends_the_gateway_cleanly(
    stack: StackInfo, tmp_path: Path
) -> None:
    rng = random.Random(20261126)
    database = f"s_{uuid.uuid4().hex[:10]}"
    influx = influx_for(stack, database)
    nodes = [f"st-{i}" for i in range(3)]
    per_node = 1500
    stops = 24
    t0 = int(time.time()) - 3 * 3600
    gateway = GatewayProcess(stack, tmp_path, database)
    done = threading.Event()
    # The gateway's persistent session exists before the first reading is published.
    gateway.start()
    publisher = Publisher(stack)

    def publish() -> None:
        for i in range(per_node):
            for n, node in enumerate(nodes):
                publisher.publish_json(f"commons/v1/{node}/air", air_payload(i, t0 + i, pm10=i + n))
            if i % 20 == 19:
                done.wait(0.05)  # pacing: readings keep flowing across the stops
        publisher.flush()
        done.set()

    thread = threading.Thread(target=publish)
    thread.start()
    codes = []
    try:
        for round_ in range(stops):
            if round_ % 4 == 2:
                # Stopped while it starts: forking its uplink, opening the queue, connecting.
                gateway.start(wait=False)
                wait_until(lambda: gateway.log_text() != "", 30, "the gateway's first log line")
                time.sleep(rng.uniform(0.0, 0.5))  # the random moment itself, not a wait
            elif round_ % 4 == 3:
                # Stopped anywhere from the interpreter's start on.
                gateway.start(wait=False)
                time.sleep(rng.uniform(0.0, 1.0))  # the random moment itself, not a wait
            else:
                if gateway.proc is None:
                    gateway.start()
                floor = gateway.counters()["received"] + rng.randint(5, 300)

                def took_in(floor: int = floor) -> bool:
                    return done.is_set() or gateway.counters()["received"] >= floor

                wait_until(took_in, 60, "the gateway to take in messages")
            codes.append(_terminate(gateway))
            log = gateway.log_text()
            assert "Traceback" not in log, log
        thread.join()
        publisher.close()
        gateway.start()
        wait_for_count(influx, "air", per_node * len(nodes), timeout=180)
    finally:
        done.set()
        gateway.stop()
    # Once Python runs the gateway's code, SIGTERM ends it with status 0; before its handler
    # is installed, the default action ends it (-SIGTERM) with nothing opened yet.
    assert all(code in (0, -signal.SIGTERM) for code in codes), codes
    assert codes.count(0) >= stops - stops // 4, codes
    for node in nodes:
        assert _stored_seqs(influx, node) == list(range(per_node)), node
