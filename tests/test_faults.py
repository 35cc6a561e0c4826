"""Fault injection on the real stack: every acknowledged reading arrives exactly once.

Each test drives real Mosquitto, real InfluxDB and the real gateway process through one
kind of fault and then checks, reading by reading (node and seq), what InfluxDB holds.
"""

from __future__ import annotations

import json
import random
import socket
import socketserver
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from harness import (
    GatewayProcess,
    Publisher,
    air_payload,
    influx_for,
    influxdb_stopped,
    node_credentials,
    rows,
    running_gateway,
    wait_for_count,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from commons.home import StackInfo
from commons.procs import wait_until
from gateway.queue import STAGE_RATE_LIMIT, DurableQueue

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def _database() -> str:
    return f"f_{uuid.uuid4().hex[:10]}"


def _stored_seqs(influx: Any, node: str) -> list[int]:
    return sorted(int(r["seq"]) for r in rows(influx, f"SELECT seq FROM air WHERE node = '{node}'"))


def test_sigkill_at_random_moments_many_times(stack: StackInfo, tmp_path: Path) -> None:
    rng = random.Random(20261126)
    database = _database()
    influx = influx_for(stack, database)
    nodes = [f"rk-{i}" for i in range(4)]
    per_node = 2000
    kills = 12
    t0 = int(time.time()) - 5 * 3600
    gateway = GatewayProcess(stack, tmp_path, database)
    gateway.start()
    done = threading.Event()
    try:
        publisher = Publisher(stack)

        def publish() -> None:
            for i in range(per_node):
                for n, node in enumerate(nodes):
                    publisher.publish_json(
                        f"commons/v1/{node}/air", air_payload(i, t0 + i, pm2_5=i + n)
                    )
            publisher.flush()
            done.set()

        thread = threading.Thread(target=publish)
        thread.start()
        for _ in range(kills):
            # A random amount of work between kills, from a few messages to a few hundred.
            floor = gateway.counters()["received"] + rng.randint(5, 400)
            wait_until(
                lambda f=floor: done.is_set() or gateway.counters()["received"] >= f,
                60,
                "the gateway to take in messages",
            )
            gateway.kill()
            gateway.start()
        thread.join()
        publisher.close()
        wait_for_count(influx, "air", per_node * len(nodes), timeout=180)
    finally:
        gateway.stop()
    for node in nodes:
        assert _stored_seqs(influx, node) == list(range(per_node)), node


class _SlowProxy(socketserver.ThreadingTCPServer):
    """A TCP proxy in front of InfluxDB that holds each answer back by ``delay`` seconds."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.delay = 0.0
        self.delayed = 0
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: _SlowProxy

    def handle(self) -> None:
        with socket.create_connection(self.server.upstream) as upstream:
            upstream.settimeout(30)
            self.request.settimeout(30)

            def pump_requests() -> None:
                try:
                    while data := self.request.recv(65536):
                        upstream.sendall(data)
                except OSError:
                    pass
                finally:
                    upstream.shutdown(socket.SHUT_WR)

            forward = threading.Thread(target=pump_requests, daemon=True)
            forward.start()
            try:
                while data := upstream.recv(65536):
                    if self.server.delay:
                        self.server.delayed += 1
                        # The fault itself: InfluxDB answering slowly.
                        time.sleep(self.server.delay)
                    self.request.sendall(data)
            except OSError:
                pass
            forward.join(5)


def test_influxdb_answering_slowly(stack: StackInfo, tmp_path: Path) -> None:
    database = _database()
    influx = influx_for(stack, database)
    host, port = stack.influx.url.removeprefix("http://").split(":")
    proxy = _SlowProxy((host, int(port)))
    serving = threading.Thread(target=proxy.serve_forever, daemon=True)
    serving.start()
    total = 3000
    t0 = int(time.time()) - 3 * 3600
    try:
        proxy.delay = 1.5  # longer than the gateway's write timeout: every write times out
        with running_gateway(
            stack,
            tmp_path,
            database,
            influx__url=f"http://127.0.0.1:{proxy.server_address[1]}",
            influx__timeout=0.5,
            influx__batch_size=500,
        ) as gateway:
            publisher = Publisher(stack)
            for i in range(total):
                publisher.publish_json("commons/v1/slow-1/air", air_payload(i, t0 + i, pm10=i))
            publisher.close()
            wait_until(lambda: gateway.counters()["retried"] >= 3, 60, "timeouts and retries")
            proxy.delay = 0.0
            wait_for_count(influx, "air", total, timeout=120)
            wait_until(lambda: gateway.counters()["queued"] == 0, 60, "the queue to drain")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert proxy.delayed > 0
    # Timed-out writes that InfluxDB did apply were written again: still once per reading.
    assert _stored_seqs(influx, "slow-1") == list(range(total))


def test_a_flooding_node_is_limited_and_the_others_are_unaffected(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = _database()
    influx = influx_for(stack, database)
    t0 = int(time.time()) - 2 * 3600
    flood = 3000
    normal_nodes = ["calm-1", "calm-2", "calm-3"]
    per_normal = 40  # within the burst: a well-behaved node
    with running_gateway(
        stack, tmp_path, database, gateway__node_rate=20.0, gateway__node_burst=50.0
    ) as gateway:
        flooder = Publisher(stack)
        calm = Publisher(stack)
        for i in range(flood):
            flooder.publish_json("commons/v1/flood-1/air", air_payload(i, t0 + i, pm1=i))
            if i % 50 == 0:
                k = i // 50
                for node in normal_nodes:
                    if k < per_normal:
                        calm.publish_json(f"commons/v1/{node}/air", air_payload(k, t0 + k))
        flooder.close()
        calm.close()
        total = flood + per_normal * len(normal_nodes)
        wait_until(
            lambda: gateway.counters()["received"] == total and gateway.counters()["queued"] == 0,
            60,
            "every message to be taken in and settled",
        )
    for node in normal_nodes:
        assert _stored_seqs(influx, node) == list(range(per_normal)), node
    queue = DurableQueue(gateway.queue_path)
    counters = queue.counters()
    samples = [d for d in queue.dead_letters(1000) if d.stage == STAGE_RATE_LIMIT]
    queue.close()
    stored_flood = len(_stored_seqs(influx, "flood-1"))
    assert counters["rate_limited"] > 0
    assert counters["rate_limited"] + stored_flood == flood
    assert samples and all("flood-1" in d.reason for d in samples)
    assert all(d.topic == "commons/v1/flood-1/air" for d in samples)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_hostile_payloads = st.one_of(
    st.binary(max_size=300),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["v", "ts", "seq", "fw", "flags", "pm2_5", "pm10", "rh", "x"]),
        _json_values,
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=4097, max_value=70_000).map(lambda n: b"{" + b" " * n + b"}"),
)
_hostile_nodes = st.text(
    # Characters the broker itself refuses in a topic name (wildcards, control characters,
    # surrogates, non-characters) would only get the hostile client disconnected.
    alphabet=st.characters(blacklist_characters="/+#", blacklist_categories=("Cs", "Cc", "Cn")),
    min_size=1,
    max_size=40,
)


def test_hostile_payloads_at_volume_cost_no_valid_reading(stack: StackInfo, tmp_path: Path) -> None:
    database = _database()
    influx = influx_for(stack, database)
    t0 = int(time.time()) - 3600
    sent = 0
    with running_gateway(stack, tmp_path, database) as gateway:
        publisher = Publisher(stack)
        steady = Publisher(stack)

        # Hypothesis draws the hostile messages; one gateway takes them all, each followed
        # by a valid reading from a steady node.
        @settings(max_examples=80, deadline=None, database=None, derandomize=True)
        @given(batch=st.lists(st.tuples(_hostile_nodes, _hostile_payloads), max_size=20))
        def publish_hostile(batch: list[tuple[str, bytes]]) -> None:
            nonlocal sent
            for node, payload in batch:
                publisher.publish(f"commons/v1/{node}/air", payload)
                steady.publish_json(
                    "commons/v1/steady-1/air", air_payload(sent, t0 + sent, pm2_5=sent)
                )
                sent += 1

        publish_hostile()
        publisher.close()
        steady.close()
        assert sent >= 100
        wait_until(
            lambda: (
                gateway.counters()["received"] == 2 * sent and gateway.counters()["queued"] == 0
            ),
            90,
            "every message to be taken in and settled",
        )
        assert gateway.proc is not None and gateway.proc.poll() is None
    assert _stored_seqs(influx, "steady-1") == list(range(sent))
    queue = DurableQueue(gateway.queue_path)
    counters = queue.counters()
    queue.close()
    # Every hostile message was either a (by chance) valid reading or dead-lettered.
    assert counters["rejected_write"] == 0
    assert counters["rejected_invalid"] <= sent
    assert counters["written"] >= sent


# About two minutes: long enough for the uplink's backoff to reach its cap (30 s) several
# times over and for a real backlog to build, short enough for the fault suite.
LONG_OUTAGE_S = 120.0
OUTAGE_NODES = 4
OUTAGE_RATE = 10.0  # readings per second and node, published all through the outage


def test_influxdb_stopped_for_minutes_while_nodes_keep_publishing(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = _database()
    influx = influx_for(stack, database)
    nodes = [f"lo-{i}" for i in range(OUTAGE_NODES)]
    t0 = int(time.time()) - 8 * 3600
    sent = [0] * OUTAGE_NODES
    stop = threading.Event()

    def publish(n: int, node: str) -> None:
        # Each node its own login, publishing at a steady pace and waiting for its PUBACKs.
        publisher = Publisher(stack, node_credentials(stack, node))
        start = time.monotonic()
        while not stop.is_set():
            i = sent[n]
            publisher.publish_json(f"commons/v1/{node}/air", air_payload(i, t0 + i, pm10=i))
            sent[n] = i + 1
            ahead = start + sent[n] / OUTAGE_RATE - time.monotonic()
            if ahead > 0:
                stop.wait(ahead)  # pacing, not synchronisation
        publisher.close()

    gateway = GatewayProcess(stack, tmp_path, database)
    gateway.start()
    threads = [
        threading.Thread(target=publish, args=(n, node), name=f"publish-{node}")
        for n, node in enumerate(nodes)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for_count(influx, "air", 50)  # flowing before the fault
        with influxdb_stopped(stack):
            outage_start = time.monotonic()
            # Halfway through, the gateway is killed too: what it queued must survive that.
            wait_until(
                lambda: time.monotonic() - outage_start >= LONG_OUTAGE_S / 2,
                LONG_OUTAGE_S,
                "half the outage",
                poll=0.5,
            )
            written_before_kill = gateway.counters()["written"]
            gateway.kill()
            gateway.start()
            wait_until(
                lambda: time.monotonic() - outage_start >= LONG_OUTAGE_S,
                LONG_OUTAGE_S,
                "the end of the outage",
                poll=0.5,
            )
            counters = gateway.counters()
            # Nothing was written meanwhile, and the uplink kept trying.
            assert counters["written"] == written_before_kill
            assert counters["retried"] >= 5
            assert counters["queued"] >= 0.9 * LONG_OUTAGE_S * OUTAGE_RATE * OUTAGE_NODES
        # Nodes keep publishing while the backlog drains, then stop.
        wait_until(
            lambda: gateway.counters()["queued"] < OUTAGE_RATE * OUTAGE_NODES,
            90,
            "the backlog to drain",
            poll=0.5,
        )
    finally:
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(60)
    try:
        total = sum(sent)
        wait_for_count(influx, "air", total, timeout=90)
    finally:
        gateway.stop()
    for n, node in enumerate(nodes):
        assert _stored_seqs(influx, node) == list(range(sent[n])), node
