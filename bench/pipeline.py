"""Benchmark: readings through broker → gateway → InfluxDB, against a bare subscriber.

Both consumers drain the same number of readings that the broker holds for their
persistent sessions, so the publisher's speed does not enter the figures:

1. baseline: a bare paho subscriber that only parses the JSON (the ceiling for a Python
   MQTT consumer), from connect to the last message;
2. pipeline: ``commons gateway run`` — validation, line protocol, durable SQLite queue with
   manual acknowledgement, batched writes — from process start until InfluxDB holds every
   reading.

Authentication and ACLs are on, as in the field: each of the ``NODES`` nodes publishes with
its own credentials, and both consumers connect with a gateway role's credentials.

Prints both rates and their ratio; the target is a ratio of at least 0.5.

    python bench/pipeline.py [--count 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from tqdm import tqdm

from commons import access
from commons.dynsec import Credentials, Dynsec
from commons.home import StackInfo
from commons.procs import wait_until
from commons.stack import Stack
from commons.tlsgen import write_private
from gateway.nodes import NodeAdmin
from ingest.dbinit import init_database
from ingest.influx import InfluxHTTP

HERE = Path(__file__).resolve().parent
COMMONS = Path(sys.executable).parent / "commons"
NODES = 20


def _admin(info: StackInfo) -> Dynsec:
    assert info.mqtt.admin is not None
    account = info.mqtt.admin
    return Dynsec(info.mqtt.host, info.mqtt.port, Credentials(account.username, account.password()))


def node_clients(info: StackInfo) -> list[mqtt.Client]:
    """One connected client per node, each with its own credentials (``commons node add``)."""
    nodes = NodeAdmin(info)
    clients = []
    for n in range(NODES):
        credentials = nodes.ensure(f"bench-{n:03d}")
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{n}-{uuid.uuid4().hex[:6]}"
        )
        client.username_pw_set(credentials.username, credentials.password)
        client.max_inflight_messages_set(500 // NODES + 1)
        client.connect(info.mqtt.host, info.mqtt.port)
        client.loop_start()
        clients.append(client)
    return clients


def gateway_account(info: StackInfo, name: str) -> Credentials:
    with _admin(info) as dynsec:
        return access.add_gateway(dynsec, name)


def publish(info: StackInfo, count: int) -> None:
    """``count`` air readings from ``NODES`` nodes, QoS 1, each acknowledged by the broker."""
    clients = node_clients(info)
    t0 = int(time.time()) - count // NODES - 60
    infos: list[mqtt.MQTTMessageInfo] = []
    bar = tqdm(total=count, desc="published", unit="msg", file=sys.stderr)
    for i in range(count):
        node = f"bench-{i % NODES:03d}"
        client = clients[i % NODES]
        payload = {
            "v": 1,
            "ts": t0 + i // NODES,
            "seq": i // NODES,
            "fw": "bench",
            "flags": [],
            "pm1": 4.2,
            "pm2_5": 7.5 + i % 13,
            "pm10": 12.1,
            "temp": 11.3,
            "rh": 64.0,
            "pres": 1012.4,
        }
        infos.append(client.publish(f"commons/v1/{node}/air", json.dumps(payload), qos=1))
        if len(infos) >= 5000:
            for sent in infos:
                sent.wait_for_publish(120)
            bar.update(len(infos))
            infos.clear()
    for sent in infos:
        sent.wait_for_publish(120)
    bar.update(len(infos))
    bar.close()
    for client in clients:
        client.disconnect()
        client.loop_stop()


def bare_subscriber(info: StackInfo, count: int) -> float:
    client_id = f"bench-bare-{uuid.uuid4().hex[:8]}"
    account = gateway_account(info, client_id)
    env = {
        **os.environ,
        "BENCH_MQTT_USERNAME": account.username,
        "BENCH_MQTT_PASSWORD": account.password,
    }
    host, port = info.mqtt.host, str(info.mqtt.port)
    script = [sys.executable, str(HERE / "bare_subscriber.py"), host, port, client_id]
    subprocess.run([*script, str(count), "--prepare"], check=True, timeout=60, env=env)
    publish(info, count)
    done = subprocess.run(
        [*script, str(count)], check=True, timeout=600, capture_output=True, text=True, env=env
    )
    result = json.loads(done.stdout)
    assert result["received"] == count, result
    return float(result["seconds"])


def memory_bytes(pid: int, field: str = "Rss") -> int:
    """Memory of ``pid`` and its children (the uplink process) from /proc: ``Rss``, or
    ``Pss`` (shared pages divided among the processes that share them)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in rollup.splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1]) * 1024
    return total


def rss_bytes(pid: int) -> int:
    return memory_bytes(pid, "Rss")


class RssSampler:
    """Samples a process tree's resident memory in the background; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def count_air(influx: InfluxHTTP) -> int:
    series = influx.series('SELECT count("qa") FROM "air"')
    return int(series[0]["values"][0][1]) if series else 0


def gateway_pipeline(info: StackInfo, count: int) -> tuple[float, int, int, int]:
    """Seconds until every reading is stored; peak RSS during that; RSS and PSS once
    drained."""
    home, host, port, url = info.home, info.mqtt.host, info.mqtt.port, info.influx.url
    database = f"bench_{uuid.uuid4().hex[:8]}"
    gateway_id = f"bench-{uuid.uuid4().hex[:6]}"
    account = gateway_account(info, gateway_id)
    password_file = home / f"{gateway_id}.password"
    write_private(password_file, account.password.encode())
    influx = InfluxHTTP(url, database)
    init_database(influx)
    config = home / f"{gateway_id}.toml"
    log_path = home / f"{gateway_id}.log"
    config.write_text(
        f'[gateway]\nid = "{gateway_id}"\ndata_dir = "{home / gateway_id}"\n'
        f'registry = "{home / "registry.sqlite"}"\n'
        # Each synthetic node publishes thousands of readings at once, far beyond a real
        # node's rate: the per-node limit would (rightly) refuse them.
        "node_rate = 1e9\nnode_burst = 1e9\n"
        f'[mqtt]\nhost = "{host}"\nport = {port}\nclient_id = "bench-{database}"\n'
        f'username = "{account.username}"\npassword_file = "{password_file}"\n'
        f'[influx]\nurl = "{url}"\ndatabase = "{database}"\n'
    )
    log = log_path.open("ab")
    argv = [str(COMMONS), "gateway", "run", "--config", str(config)]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    # First run: create the gateway's persistent session, then stop.
    first = start()
    wait_until(lambda: b"subscribed to" in log_path.read_bytes(), 30, "the gateway to subscribe")
    first.terminate()
    first.wait(30)
    publish(info, count)
    started = time.perf_counter()
    gateway = start()
    sampler = RssSampler(gateway.pid)
    try:
        with tqdm(total=count, desc="in InfluxDB", unit="pt", file=sys.stderr) as bar:

            def stored() -> bool:
                n = count_air(influx)
                bar.update(n - bar.n)
                return n >= count

            wait_until(stored, 3600, "every reading in InfluxDB", poll=0.1)
        elapsed = time.perf_counter() - started
        peak = sampler.stop()
        after = rss_bytes(gateway.pid)
        after_pss = memory_bytes(gateway.pid, "Pss")
    finally:
        sampler.stop()
        gateway.terminate()
        gateway.wait(30)
        log.close()
    assert count_air(influx) == count
    return elapsed, peak, after, after_pss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="Rounds of baseline and pipeline, alternated; medians are reported "
        "(a shared machine's speed drifts between runs).",
    )
    args = parser.parse_args()
    bare_runs: list[float] = []
    pipe_runs: list[float] = []
    peak_rss = after_rss = after_pss = 0
    with tempfile.TemporaryDirectory(prefix="commons-bench-") as tmp:
        home = Path(tmp)
        stack = Stack(home)
        info = stack.up()
        try:
            for _ in range(args.repeat):
                bare_runs.append(bare_subscriber(info, args.count))
                pipe_s, peak, after, pss = gateway_pipeline(info, args.count)
                pipe_runs.append(pipe_s)
                peak_rss, after_rss, after_pss = max(peak_rss, peak), after, pss
        finally:
            stack.down()
    bare_rates = sorted(args.count / s for s in bare_runs)
    pipe_rates = sorted(args.count / s for s in pipe_runs)
    ratios = sorted(
        args.count / p / (args.count / b) for b, p in zip(bare_runs, pipe_runs, strict=True)
    )
    bare_rate, pipe_rate = statistics.median(bare_rates), statistics.median(pipe_rates)

    def spread(rates: list[float]) -> str:
        return f"({rates[0]:.0f} to {rates[-1]:.0f} over {len(rates)} runs)"

    print(f"readings per run:           {args.count}")
    print(f"bare subscriber (baseline): {bare_rate:10.0f} msg/s  {spread(bare_rates)}")
    print(f"gateway → InfluxDB:         {pipe_rate:10.0f} msg/s  {spread(pipe_rates)}, all stored")
    print(
        f"ratio of medians:           {pipe_rate / bare_rate:10.2f}  (target ≥ 0.50; "
        f"per round {ratios[0]:.2f} to {ratios[-1]:.2f})"
    )
    print(f"gateway RSS, peak in drain: {peak_rss / 2**20:10.1f} MiB (ingress + uplink)")
    print(f"gateway RSS, once drained:  {after_rss / 2**20:10.1f} MiB")
    print(f"gateway PSS, once drained:  {after_pss / 2**20:10.1f} MiB (shared pages split)")


if __name__ == "__main__":
    main()
