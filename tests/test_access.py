"""Identity and access on the real broker: no anonymous clients, no impersonation, revocation, TLS.

Every client here is made through the broker's control API exactly as ``commons node add`` and
``commons stack up`` make them; messages that must not arrive are checked by sending a
permitted one after them on the same connection and waiting for that one (the broker keeps a
client's order), never by sleeping.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from harness import (
    Publisher,
    RunCommons,
    air_payload,
    connect,
    gateway_credentials,
    influx_for,
    monitor_credentials,
    node_credentials,
    rows,
    running_gateway,
    wait_for_count,
)
from paho.mqtt.enums import CallbackAPIVersion

from commons.contract import SUBSCRIPTION, gateway_status_topic
from commons.dynsec import Credentials
from commons.home import StackInfo
from commons.procs import free_port, wait_until
from commons.stack import MOSQUITTO, Stack
from commons.tlsgen import new_ca

pytestmark = pytest.mark.integration

WAIT_S = 15.0


class Recorder:
    """A subscriber that keeps every live (not retained) message it receives."""

    def __init__(self, stack: StackInfo, credentials: Credentials, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = connect(stack, credentials)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(WAIT_S), "no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            return  # left by earlier tests; only what is sent now counts
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def topics(self) -> list[str]:
        with self._lock:
            return [topic for topic, _ in self.messages]

    def wait_for(self, topic: str, payload: bytes) -> None:
        wait_until(
            lambda: (topic, payload) in self.messages, WAIT_S, f"{payload!r} on {topic}", poll=0.02
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _connack(stack: StackInfo, credentials: Credentials | None) -> Any:
    """The broker's answer to a connection attempt (a paho reason code)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if credentials is not None:
        client.username_pw_set(credentials.username, credentials.password)
    answers: list[Any] = []
    client.on_connect = lambda c, u, f, rc, p: answers.append(rc)
    client.connect(stack.mqtt.host, stack.mqtt.port)
    client.loop_start()
    try:
        wait_until(lambda: bool(answers), WAIT_S, "a CONNACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return answers[0]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_anonymous_clients_are_refused(stack: StackInfo) -> None:
    answer = _connack(stack, None)
    assert answer.is_failure
    assert answer.getName() == "Not authorized"


def test_unknown_clients_and_wrong_passwords_are_refused(stack: StackInfo) -> None:
    assert _connack(stack, Credentials.generate(_unique("stranger"))).is_failure
    node = node_credentials(stack, _unique("pw"))
    assert _connack(stack, Credentials(node.username, "not-the-password")).is_failure
    assert not _connack(stack, node).is_failure


def test_a_node_cannot_publish_as_another_node_nor_subscribe(stack: StackInfo) -> None:
    mallory, victim = _unique("mallory"), _unique("victim")
    node_credentials(stack, victim)
    gateway = Recorder(stack, gateway_credentials(stack, _unique("gw")), SUBSCRIPTION)
    publisher = Publisher(stack, node_credentials(stack, mallory))
    try:
        forged = json.dumps(air_payload(1, int(time.time()), pm2_5=999.0)).encode()
        publisher.publish(f"commons/v1/{victim}/air", forged)
        publisher.publish(f"commons/v1/{victim}/status", b'{"v":1,"state":"offline"}')
        publisher.publish(f"commons/v1/{mallory}", b"not under the prefix")
        own = json.dumps(air_payload(2, int(time.time()), pm2_5=1.0)).encode()
        publisher.publish(f"commons/v1/{mallory}/air", own)
        publisher.flush()
        gateway.wait_for(f"commons/v1/{mallory}/air", own)
        assert gateway.topics() == [f"commons/v1/{mallory}/air"]

        granted: list[Any] = []
        done = threading.Event()

        def on_subscribe(c: mqtt.Client, u: object, mid: int, codes: Any, p: object) -> None:
            granted.extend(codes)
            done.set()

        publisher.client.on_subscribe = on_subscribe
        publisher.client.subscribe([("commons/v1/#", 1), (f"commons/v1/{mallory}/air", 1)])
        assert done.wait(WAIT_S)
        assert [code.is_failure for code in granted] == [True, True]
    finally:
        publisher.close()
        gateway.close()


def test_the_gateway_role_reads_readings_and_publishes_only_its_status(
    stack: StackInfo,
) -> None:
    gateway_id = _unique("gw")
    gateway = gateway_credentials(stack, gateway_id)
    monitor = Recorder(stack, monitor_credentials(stack), "commons/v1/#")
    sender = Publisher(stack, gateway)
    try:
        sender.publish("commons/v1/someone-1/air", json.dumps(air_payload(1, 1)))
        sender.publish(gateway_status_topic("other-gw"), b'{"v":1,"state":"online"}')
        status = b'{"v":1,"state":"online"}'
        sender.publish(gateway_status_topic(gateway_id), status)
        sender.flush()
        monitor.wait_for(gateway_status_topic(gateway_id), status)
        assert monitor.topics() == [gateway_status_topic(gateway_id)]
    finally:
        sender.close()
        monitor.close()


def test_a_removed_node_is_dropped_at_once_and_cannot_come_back(
    stack: StackInfo, run_commons: RunCommons
) -> None:
    node_id = _unique("gone")
    added = run_commons("node", "add", node_id, "--area", "Elsewhere")
    assert added.returncode == 0, added.stderr
    mqtt_out = json.loads(added.stdout)["mqtt"]
    credentials = Credentials(mqtt_out["username"], mqtt_out["password"])
    client = connect(stack, credentials)
    dropped = threading.Event()
    client.on_disconnect = lambda *args: dropped.set()
    client.reconnect_delay_set(60, 120)  # no automatic reconnect within the test
    try:
        removed = run_commons("node", "remove", node_id)
        assert removed.returncode == 0, removed.stderr
        assert dropped.wait(WAIT_S), "the broker kept the removed node's connection"
    finally:
        client.loop_stop()
    assert _connack(stack, credentials).is_failure
    listed = run_commons("node", "list", "--json")
    assert node_id not in {entry["node"] for entry in json.loads(listed.stdout)}
    assert not (stack.home / "nodes" / f"{node_id}.json").exists()


def test_tls_with_the_generated_ca_works_and_a_wrong_ca_fails(
    stack: StackInfo, tmp_path: Path
) -> None:
    assert stack.mqtt.ca_file is not None and stack.mqtt.tls_port is not None
    node = node_credentials(stack, _unique("tls"))
    client = connect(stack, node, tls_ca=stack.mqtt.ca_file)
    client.publish(f"commons/v1/{node.username}/air", b"{}", qos=1).wait_for_publish(WAIT_S)
    client.disconnect()
    client.loop_stop()

    _, other = new_ca("someone else's CA")
    wrong = tmp_path / "wrong-ca.pem"
    wrong.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(stack, node, tls_ca=wrong)


def test_the_gateway_runs_over_tls(stack: StackInfo, tmp_path: Path) -> None:
    assert stack.mqtt.ca_file is not None and stack.mqtt.tls_port is not None
    node_id = _unique("tlsgw")
    database = f"a_{uuid.uuid4().hex[:10]}"
    influx = influx_for(stack, database)
    with running_gateway(
        stack,
        tmp_path,
        database,
        mqtt__port=stack.mqtt.tls_port,
        mqtt__tls_ca=str(stack.mqtt.ca_file),
    ) as gateway:
        publisher = Publisher(stack, node_credentials(stack, node_id))
        publisher.publish_json(f"commons/v1/{node_id}/air", air_payload(0, int(time.time())))
        publisher.close()
        wait_for_count(influx, "air", 1)
    assert f":{stack.mqtt.tls_port} " in gateway.log_text()


def test_stack_up_again_and_a_broker_restart_keep_every_credential(
    stack: StackInfo, run_commons: RunCommons
) -> None:
    assert stack.mqtt.gateway is not None and stack.mqtt.admin is not None
    secrets = {
        path: path.read_text()
        for path in (stack.mqtt.gateway.password_file, stack.mqtt.admin.password_file)
    }
    ca = stack.mqtt.ca_file.read_bytes() if stack.mqtt.ca_file else b""
    node = node_credentials(stack, _unique("kept"))

    again = run_commons("stack", "up")
    assert again.returncode == 0, again.stderr
    assert not _connack(stack, node).is_failure
    Stack(stack.home).down((MOSQUITTO,))
    Stack(stack.home).up()

    assert not _connack(stack, node).is_failure
    gateway = Credentials(stack.mqtt.gateway.username, stack.mqtt.gateway.password())
    assert not _connack(stack, gateway).is_failure
    assert {path: path.read_text() for path in secrets} == secrets
    assert stack.mqtt.ca_file is not None and stack.mqtt.ca_file.read_bytes() == ca


def test_node_add_output_takes_a_real_publisher_through_the_gateway_into_influxdb(
    stack: StackInfo, run_commons: RunCommons, tmp_path: Path
) -> None:
    node_id = _unique("e2e")
    added = run_commons("node", "add", node_id, "--area", "Testville")
    assert added.returncode == 0, added.stderr
    out = json.loads(added.stdout)
    assert out["node_id"] == node_id
    assert out["mqtt"]["topic_prefix"] == f"commons/v1/{node_id}/"
    assert len(out["mqtt"]["tls"]["ca_sha256"]) == 64
    config_file = Path(out["config_file"])
    assert config_file.stat().st_mode & 0o777 == 0o600
    device = json.loads(config_file.read_text())
    assert device["node_id"] == node_id
    assert device["broker"]["user"] == out["mqtt"]["username"]
    assert device["broker"]["password"] == out["mqtt"]["password"]

    database = f"a_{uuid.uuid4().hex[:10]}"
    influx = influx_for(stack, database)
    registry = str(stack.home / "registry.sqlite")
    with running_gateway(stack, tmp_path, database, gateway__registry=registry):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.username_pw_set(out["mqtt"]["username"], out["mqtt"]["password"])
        client.connect(out["mqtt"]["host"], out["mqtt"]["port"])
        client.loop_start()
        ts = int(time.time()) - 60
        topic = out["mqtt"]["topic_prefix"] + "air"
        reading = json.dumps(air_payload(7, ts, pm2_5=12.5))
        client.publish(topic, reading, qos=1).wait_for_publish(WAIT_S)
        client.disconnect()
        client.loop_stop()
        wait_for_count(influx, "air", 1)
    stored = rows(influx, 'SELECT pm2_5, seq FROM air GROUP BY "node", "area"')
    assert stored == [{"node": node_id, "area": "Testville", "time": ts, "pm2_5": 12.5, "seq": 7}]


def test_node_commands_fail_clearly(
    run_commons: RunCommons, stack: StackInfo, tmp_path: Path
) -> None:
    node_id = _unique("twice")
    assert run_commons("node", "add", node_id).returncode == 0
    again = run_commons("node", "add", node_id)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    bad = run_commons("node", "add", "Not_A_Node")
    assert bad.returncode == 2
    assert "Not_A_Node" in bad.stderr
    unknown = run_commons("node", "remove", _unique("never"))
    assert unknown.returncode == 1
    assert "unknown node" in unknown.stderr

    # A stack whose broker is not there.
    dead = tmp_path / "dead-home"
    dead.mkdir()
    described = json.loads((stack.home / "stack.json").read_text())
    described["mqtt"]["port"] = free_port()
    (dead / "stack.json").write_text(json.dumps(described))
    unreachable = run_commons("node", "add", _unique("nobroker"), home=dead)
    assert unreachable.returncode == 3
    assert "not reachable" in unreachable.stderr
    nowhere = run_commons("node", "add", _unique("nostack"), home=tmp_path / "no-home")
    assert nowhere.returncode == 3
    assert "commons stack up" in nowhere.stderr
