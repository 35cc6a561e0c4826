"""The gateway's durable path against the real Mosquitto and InfluxDB of the local stack."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from goldens import invalid_cases, valid_cases
from harness import (
    GatewayProcess,
    Publisher,
    air_payload,
    count_points,
    influx_for,
    influxdb_stopped,
    node_credentials,
    relay_credentials,
    rows,
    running_gateway,
    wait_for_count,
    watching_status,
)

from commons.contract import SUBSCRIPTION
from commons.home import StackInfo
from commons.procs import wait_until
from gateway.queue import DurableQueue
from ingest.registry import Registry

pytestmark = pytest.mark.integration


def _database() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def test_readings_from_several_publishers_arrive_exactly_and_value_by_value(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = _database()
    influx = influx_for(stack, database)
    registry = Registry(tmp_path / "registry.sqlite")
    registry.add("north-1", "north")
    registry.add("south-1", "south")
    registry.close()
    t0 = int(time.time()) - 3600
    per_node = 400
    nodes = ["north-1", "south-1", "east-1"]
    sent: dict[tuple[str, int], dict[str, float]] = {}
    with running_gateway(stack, tmp_path, database):
        publishers = [Publisher(stack, node_credentials(stack, node)) for node in nodes]

        def publish(node: str, publisher: Publisher) -> None:
            for i in range(per_node):
                values = {"pm2_5": round(i * 0.37, 2), "pm10": i + 3, "rh": 40 + i % 50}
                publisher.publish_json(f"commons/v1/{node}/air", air_payload(i, t0 + i, **values))
            publisher.flush()

        threads = [
            threading.Thread(target=publish, args=(node, pub))
            for node, pub in zip(nodes, publishers, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for node in nodes:
            for i in range(per_node):
                sent[(node, t0 + i)] = {
                    "pm2_5": round(i * 0.37, 2),
                    "pm10": float(i + 3),
                    "rh": float(40 + i % 50),
                    "seq": i,
                }
        for publisher in publishers:
            publisher.close()
        wait_for_count(influx, "air", len(sent))

    stored = rows(influx, 'SELECT pm2_5, pm10, rh, seq, qa, fw FROM air GROUP BY "node", "area"')
    assert len(stored) == len(sent)
    for row in stored:
        expected = sent[(row["node"], row["time"])]
        assert row["pm2_5"] == pytest.approx(expected["pm2_5"], abs=0)
        assert row["pm10"] == expected["pm10"]
        assert row["rh"] == expected["rh"]
        assert row["seq"] == expected["seq"]
        assert row["qa"] == 0
        assert row["fw"] == "test-1"
        assert row["area"] == {"north-1": "north", "south-1": "south", "east-1": ""}[row["node"]]


def test_malformed_messages_are_dead_lettered_and_cost_no_valid_one(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = _database()
    influx = influx_for(stack, database)
    # Only messages on topics the gateway subscribes to can reach it.
    invalid = [c for c in invalid_cases() if mqtt.topic_matches_sub(SUBSCRIPTION, c.topic)]
    valid = [case for case in valid_cases() if case.expect["kind"] == "air"]
    assert len(invalid) >= 30 and valid
    t0 = int(time.time()) - 7200
    with running_gateway(stack, tmp_path, database) as gateway:
        # Malformed topics name nodes no credentials exist for: a test-only relay sends them.
        publisher = Publisher(stack, relay_credentials(stack))
        expected_valid = 0
        for i, case in enumerate(invalid):
            publisher.publish(case.topic, case.payload)
            # A fresh valid reading around every malformed one, from a node of its own.
            publisher.publish_json("commons/v1/mixed-1/air", air_payload(i, t0 + i, pm2_5=i))
            expected_valid += 1
        for case in valid:
            publisher.publish(case.topic, case.payload)
        publisher.close()
        total = len(invalid) + expected_valid + len(valid)
        wait_until(
            lambda: gateway.counters()["received"] == total and gateway.counters()["queued"] == 0,
            60,
            "every message to be taken in and every valid one written",
        )
    queue = DurableQueue(gateway.queue_path)
    letters = queue.dead_letters(limit=1000)
    counters = queue.counters()
    queue.close()
    assert counters["rejected"] == len(invalid)
    assert counters["received"] == len(invalid) + expected_valid + len(valid)
    by_payload = {(letter.topic, letter.payload): letter.reason for letter in letters}
    for case in invalid:
        reason = by_payload[(case.topic, case.payload)]
        assert reason.startswith(f"{case.field}: "), (case.name, reason)
        assert case.reason in reason, (case.name, reason)
    stored = rows(influx, "SELECT pm2_5 FROM air WHERE \"node\" = 'mixed-1'")
    assert sorted(row["pm2_5"] for row in stored) == [float(i) for i in range(len(invalid))]
    for case in valid:
        node = case.expect["node"]
        if case.gateway_stamped:
            where = f"\"node\" = '{node}' AND qa > 0"
        else:
            where = f"\"node\" = '{node}' AND time = {case.expect['ts']}s"
        assert rows(influx, f"SELECT * FROM air WHERE {where}"), case.name


def test_sigkill_while_messages_flow_loses_nothing(stack: StackInfo, tmp_path: Path) -> None:
    database = _database()
    influx = influx_for(stack, database)
    gateway = GatewayProcess(stack, tmp_path, database)
    total = 6000
    kills = 4
    t0 = int(time.time()) - 4 * 3600
    gateway.start()
    try:
        publisher = Publisher(stack, node_credentials(stack, "kill-1"))
        done = threading.Event()

        def publish() -> None:
            for i in range(total):
                publisher.publish_json("commons/v1/kill-1/air", air_payload(i, t0 + i, pm10=i))
            publisher.flush()
            done.set()

        thread = threading.Thread(target=publish)
        thread.start()
        for k in range(kills):
            # Kill it while it is busy: as soon as it has taken in more than before.
            floor = gateway.counters()["received"] + 200
            wait_until(
                lambda f=floor: gateway.counters()["received"] >= f or done.is_set(),
                60,
                "the gateway to take in messages",
            )
            gateway.kill()
            gateway.start()
            assert k < kills
        thread.join()
        publisher.close()
        wait_for_count(influx, "air", total, timeout=120)
    finally:
        gateway.stop()
    stored = rows(influx, "SELECT pm10 FROM air")
    assert len(stored) == total
    assert {row["time"] - t0 for row in stored} == set(range(total))
    assert all(row["pm10"] == row["time"] - t0 for row in stored)


def test_influxdb_outage_is_ridden_out_and_the_backlog_drains(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = _database()
    influx = influx_for(stack, database)
    total = 3000
    t0 = int(time.time()) - 6 * 3600
    with running_gateway(stack, tmp_path, database) as gateway:
        with influxdb_stopped(stack):
            publisher = Publisher(stack, node_credentials(stack, "outage-1"))
            for i in range(total):
                publisher.publish_json("commons/v1/outage-1/air", air_payload(i, t0 + i, pm1=i))
            publisher.close()
            wait_until(
                lambda: (
                    gateway.counters()["received"] >= total and gateway.counters()["retried"] >= 2
                ),
                60,
                "the gateway to queue everything and retry",
            )
            assert gateway.counters()["written"] < total
        wait_for_count(influx, "air", total, timeout=120)
        counters = gateway.counters()
    assert counters["rejected"] == 0
    assert count_points(influx, "air") == total


def test_a_point_influxdb_refuses_is_dead_lettered_and_the_rest_is_written(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = _database()
    influx = influx_for(stack, database)
    t0 = int(time.time()) - 600
    # A string co2 already stored: every float co2 in the same shard is a type conflict.
    assert influx.write([f'air,node=conflict-0 co2="high" {t0 - 1}']).status == 204
    with running_gateway(stack, tmp_path, database) as gateway:
        publisher = Publisher(stack, node_credentials(stack, "conflict-1"))
        bad = set()
        for i in range(40):
            values: dict[str, float] = {"pm2_5": float(i)}
            if i % 8 == 3:
                values["co2"] = 400.0 + i
                bad.add(i)
            publisher.publish_json("commons/v1/conflict-1/air", air_payload(i, t0 + i, **values))
        publisher.close()
        wait_until(
            lambda: (
                gateway.counters()["rejected_write"] == len(bad)
                and gateway.counters()["queued"] == 0
            ),
            60,
            "the conflicting points to be dead-lettered",
        )
    stored = rows(influx, "SELECT pm2_5 FROM air WHERE \"node\" = 'conflict-1'")
    assert sorted(int(row["pm2_5"]) for row in stored) == [i for i in range(40) if i not in bad]
    queue = DurableQueue(gateway.queue_path)
    letters = [d for d in queue.dead_letters() if d.stage == "write"]
    queue.close()
    assert len(letters) == len(bad)
    assert all("field type conflict" in d.reason for d in letters)


def test_broker_restart_keeps_messages_queued_for_the_gateway_session(
    stack: StackInfo, tmp_path: Path
) -> None:
    from commons.stack import MOSQUITTO, Stack

    database = _database()
    influx = influx_for(stack, database)
    local = Stack(stack.home)
    gateway = GatewayProcess(stack, tmp_path, database)
    gateway.start()  # creates the persistent session
    gateway.stop()
    total = 2000
    t0 = int(time.time()) - 8 * 3600
    publisher = Publisher(stack, node_credentials(stack, "restart-1"))
    for i in range(total):
        publisher.publish_json("commons/v1/restart-1/air", air_payload(i, t0 + i, pm2_5=i))
    publisher.close()
    local.down((MOSQUITTO,))  # SIGTERM: the broker saves its sessions and queues
    local.up()
    try:
        gateway.start()
        wait_for_count(influx, "air", total, timeout=120)
    finally:
        gateway.stop()
    assert count_points(influx, "air") == total


def test_gateway_reports_its_counters_on_mqtt_and_in_influxdb(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = _database()
    influx = influx_for(stack, database)
    with (
        running_gateway(stack, tmp_path, database) as gateway,
        watching_status(stack, gateway.gateway_id) as seen,
    ):
        publisher = Publisher(stack, node_credentials(stack, "status-1"))
        publisher.publish_json("commons/v1/status-1/air", air_payload(0, int(time.time())))
        publisher.publish("commons/v1/status-1/air", b"{not json")
        publisher.close()
        wait_until(
            lambda: any(s.get("received") == 2 and s.get("rejected") == 1 for s in seen),
            30,
            "a status with the counters",
        )
        wait_until(
            lambda: count_points(influx, "gateway_status", "received") > 0,
            30,
            "gateway_status points",
        )
    # Stopped cleanly, it leaves a retained status saying so, as its last will would.
    with watching_status(stack, gateway.gateway_id) as retained:
        wait_until(lambda: bool(retained), 10, "the retained gateway status")
    assert retained[-1]["state"] == "offline"
    status = next(s for s in seen if s.get("received") == 2)
    for key in ("received", "written", "rejected", "retried", "queued"):
        assert key in status
    assert status["state"] == "online"
    stored = rows(influx, 'SELECT last("received") FROM gateway_status GROUP BY "gateway"')
    assert stored[0]["gateway"] == gateway.gateway_id


def test_a_full_queue_stops_acknowledging_and_the_broker_keeps_the_rest(
    stack: StackInfo, tmp_path: Path
) -> None:
    database = _database()
    influx = influx_for(stack, database)
    total = 3000
    t0 = int(time.time()) - 10 * 3600
    with (
        running_gateway(stack, tmp_path, database, gateway__queue_max_bytes=200_000) as gateway,
        watching_status(stack, gateway.gateway_id) as seen,
    ):
        with influxdb_stopped(stack):
            publisher = Publisher(stack, node_credentials(stack, "full-1"))
            for i in range(total):
                publisher.publish_json("commons/v1/full-1/air", air_payload(i, t0 + i, pm10=i))
            publisher.close()
            wait_until(
                lambda: any(s.get("alarm") for s in seen),
                60,
                "the gateway to raise its queue alarm",
            )
            assert gateway.counters()["received"] < total
        wait_for_count(influx, "air", total, timeout=120)
    alarms = [s.get("alarm", "") for s in seen]
    assert "refusing new messages" in next(a for a in alarms if a)
    stored = rows(influx, "SELECT pm10 FROM air")
    assert sorted(int(row["pm10"]) for row in stored) == list(range(total))


def test_gateway_status_command_reports_for_a_person_and_a_script(
    stack: StackInfo, tmp_path: Path
) -> None:
    import subprocess

    from harness import COMMONS

    database = _database()
    influx_for(stack, database)
    with running_gateway(stack, tmp_path, database) as gateway:
        publisher = Publisher(stack)
        publisher.publish_json("commons/v1/report-1/air", air_payload(0, int(time.time())))
        publisher.publish("commons/v1/report-1/air", b"[]")
        publisher.close()
        wait_until(lambda: gateway.counters()["queued"] == 0, 30, "the queue to drain")
        with watching_status(stack, gateway.gateway_id) as seen:
            wait_until(
                lambda: any("report-1" in s.get("last_seen", {}) for s in seen),
                30,
                "a status that has heard from the node",
            )
        argv = [str(COMMONS), "gateway", "status", "--config", str(gateway.config)]
        text = subprocess.run(
            [*argv, "--dead-letters", "5"], capture_output=True, text=True, check=True
        ).stdout
        raw = subprocess.run([*argv, "--json"], capture_output=True, text=True, check=True)
    assert "state       online" in text
    assert "report-1" in text
    assert "payload: expected a JSON object" in text
    report = json.loads(raw.stdout)
    assert report["counters"]["received"] == 2
    assert report["counters"]["rejected_invalid"] == 1
    assert "report-1" in report["live"]["last_seen"]


def test_undated_readings_sent_at_once_are_all_kept(stack: StackInfo, tmp_path: Path) -> None:
    """A node that never had a clock sends its buffered readings at once, without ``ts``: the
    gateway stamps them one second apart, so none overwrites another in InfluxDB."""
    from commons.contract import Flag

    database = _database()
    influx = influx_for(stack, database)
    node = f"nodate-{uuid.uuid4().hex[:6]}"
    count = 25
    before = time.time()
    with running_gateway(stack, tmp_path, database):
        publisher = Publisher(stack, node_credentials(stack, node))
        for seq in range(1, count + 1):
            payload = {"v": 1, "seq": seq, "fw": "test-1", "flags": [], "pm2_5": float(seq)}
            publisher.publish_json(f"commons/v1/{node}/air", payload)
        publisher.flush()
        publisher.close()
        wait_for_count(influx, "air", count)
    stored = rows(influx, "SELECT pm2_5, seq, qa FROM air")
    assert sorted(row["seq"] for row in stored) == list(range(1, count + 1))
    assert all(row["pm2_5"] == float(row["seq"]) for row in stored)
    assert all(row["qa"] & Flag.CLOCK_GATEWAY.bit for row in stored)
    times = sorted(row["time"] for row in stored)
    assert len(set(times)) == count
    # Stamped when they arrived, then a second apart: the burst spreads over about its size.
    assert int(before) <= times[0] and times[-1] - times[0] < count + 5
