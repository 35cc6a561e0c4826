"""Real processes for gateway tests: the gateway itself, MQTT publishers, InfluxDB reads."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from commons import access
from commons.contract import gateway_status_topic
from commons.dynsec import Acl, Credentials, Dynsec
from commons.home import StackInfo
from commons.procs import ProcessRef, wait_until
from commons.tlsgen import write_private
from gateway.nodes import NodeAdmin, NodeExistsError
from gateway.queue import DurableQueue
from ingest.dbinit import init_database
from ingest.influx import InfluxHTTP

COMMONS = Path(sys.executable).parent / "commons"
READY_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 10.0
# A test-only role: may publish on any topic under commons/v1/, as no real client may. Used to
# put malformed topics and payloads in front of the gateway.
RELAY_ROLE = "test-relay"


# -- credentials, made through the broker's control API as the product does -----------------


def admin(stack: StackInfo) -> Dynsec:
    """A control-API session as the stack's admin (use with ``with``)."""
    assert stack.mqtt.admin is not None
    account = stack.mqtt.admin
    return Dynsec(
        stack.mqtt.host, stack.mqtt.port, Credentials(account.username, account.password())
    )


def node_credentials(
    stack: StackInfo, node_id: str, area: str | None = None, registry: Path | None = None
) -> Credentials:
    """Fresh credentials for ``node_id`` by the code path of ``commons node add``.

    A node made earlier in the session is removed first (its connection, if any, drops).
    """
    nodes = NodeAdmin(stack, registry)
    try:
        return nodes.add(node_id, area).credentials
    except NodeExistsError:
        nodes.remove(node_id)
        return nodes.add(node_id, area).credentials


def relay_credentials(stack: StackInfo) -> Credentials:
    """A test-only client that may publish anywhere under ``commons/v1/``."""
    credentials = Credentials.generate(f"relay-{uuid.uuid4().hex[:8]}")
    with admin(stack) as dynsec:
        dynsec.create_role(RELAY_ROLE, [Acl("publishClientSend", "commons/v1/#")])
        dynsec.create_client(credentials, [RELAY_ROLE])
    return credentials


def monitor_credentials(stack: StackInfo) -> Credentials:
    """A read-only client (the ``monitor`` role dashboards use)."""
    with admin(stack) as dynsec:
        return access.add_monitor(dynsec, f"monitor-{uuid.uuid4().hex[:8]}")


def gateway_credentials(stack: StackInfo, gateway_id: str) -> Credentials:
    with admin(stack) as dynsec:
        return access.add_gateway(dynsec, gateway_id)


def clear_retained(stack: StackInfo, topic_filter: str = "commons/v1/+/+") -> list[str]:
    """Delete the retained messages on ``topic_filter`` (node statuses other tests left behind).

    Retained messages reach a new subscription before anything published after its SUBACK, so
    once a marker published then has arrived, every retained message has too.
    """
    marker = f"commons/v1/test-marker/{uuid.uuid4().hex[:8]}/done"
    retained: list[str] = []
    arrived = threading.Event()
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == marker:
            arrived.set()
        elif msg.retain and msg.payload:
            retained.append(msg.topic)

    reader = connect(stack, monitor_credentials(stack))
    reader.on_message = on_message
    reader.on_subscribe = lambda *args: subscribed.set()
    writer = connect(stack, relay_credentials(stack))
    try:
        reader.subscribe([(topic_filter, 1), (marker, 1)])
        assert subscribed.wait(CONNECT_TIMEOUT_S), "no SUBACK"
        writer.publish(marker, b"", qos=1).wait_for_publish(CONNECT_TIMEOUT_S)
        assert arrived.wait(CONNECT_TIMEOUT_S), "the marker did not arrive"
        for topic in retained:
            writer.publish(topic, b"", qos=1, retain=True).wait_for_publish(CONNECT_TIMEOUT_S)
    finally:
        for client in (reader, writer):
            client.disconnect()
            client.loop_stop()
    return retained


def connect(
    stack: StackInfo,
    credentials: Credentials | None,
    client_id: str | None = None,
    tls_ca: Path | None = None,
    **options: Any,
) -> mqtt.Client:
    """A started paho client connected with ``credentials``; raises if refused."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
        **options,
    )
    if credentials is not None:
        client.username_pw_set(credentials.username, credentials.password)
    port = stack.mqtt.port
    if tls_ca is not None:
        client.tls_set(ca_certs=str(tls_ca))
        assert stack.mqtt.tls_port is not None
        port = stack.mqtt.tls_port
    outcome: list[Any] = []
    answered = threading.Event()

    def on_connect(c: mqtt.Client, userdata: object, flags: object, rc: Any, props: object) -> None:
        outcome.append(rc)
        answered.set()

    client.on_connect = on_connect
    client.connect(stack.mqtt.host, port)
    client.loop_start()
    if not answered.wait(CONNECT_TIMEOUT_S) or outcome[0].is_failure:
        client.loop_stop()
        client.disconnect()
        raise ConnectionRefusedError(f"broker refused {credentials}: {outcome}")
    return client


class RunCommons(Protocol):
    """Run ``commons *args`` as a subprocess; see :func:`run_commons`."""

    def __call__(
        self,
        *args: str,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = CLI_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]: ...


class GatewayProcess:
    """``commons gateway run`` as a child process, with its own queue and database."""

    def __init__(self, stack: StackInfo, workdir: Path, database: str, **overrides: Any) -> None:
        self.stack = stack
        self.workdir = workdir
        self.database = database
        self.gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
        self.config = workdir / "gateway.toml"
        self.log = workdir / "gateway.log"
        # Counters are compared exactly: no retained message from another test may add to them.
        clear_retained(stack)
        self.credentials = gateway_credentials(stack, self.gateway_id)
        password_file = workdir / "mqtt-gateway.password"
        write_private(password_file, self.credentials.password.encode())
        settings: dict[str, dict[str, Any]] = {
            "gateway": {
                "id": self.gateway_id,
                "data_dir": str(workdir / "data"),
                "registry": str(workdir / "registry.sqlite"),
                "status_interval": 1.0,
                # Tests publish thousands of readings per node at once; the rate limit has
                # its own test.
                "node_rate": 1_000_000.0,
                "node_burst": 1_000_000.0,
            },
            "mqtt": {
                "host": stack.mqtt.host,
                "port": stack.mqtt.port,
                "username": self.credentials.username,
                "password_file": str(password_file),
            },
            "influx": {"url": stack.influx.url, "database": database, "timeout": 5.0},
        }
        for key, value in overrides.items():
            section, name = key.split("__")
            settings[section][name] = value
        self.config.write_text(_toml(settings))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def queue_path(self) -> Path:
        return self.workdir / "data" / "queue.sqlite"

    def start(self, wait: bool = True) -> None:
        """Start the gateway; unless ``wait`` is false, return once it has subscribed."""
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(COMMONS), "gateway", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "COMMONS_HOME": str(self.stack.home)},
            )
        if not wait:
            return
        wait_until(
            lambda: "subscribed to" in self.log_text() or self._exited(),
            READY_TIMEOUT_S,
            "the gateway to subscribe",
        )
        if self._exited():
            raise RuntimeError(f"gateway exited at start:\n{self.log_text()}")

    def log_text(self) -> str:
        if not self.log.exists():
            return ""
        with self.log.open("rb") as handle:
            handle.seek(self._log_offset)
            return handle.read().decode("utf-8", "replace")

    def _exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def children(self) -> list[ProcessRef]:
        """The gateway's child processes (its uplink)."""
        assert self.proc is not None
        listing = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        refs = []
        for pid in listing.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                refs.append(ProcessRef.of(int(pid)))
        return refs

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye. Its uplink process must follow it by itself."""
        assert self.proc is not None
        children = self.children()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None
        wait_until(
            lambda: not any(child.alive() for child in children),
            15,
            "the killed gateway's uplink process to exit",
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def counters(self) -> dict[str, int]:
        queue = DurableQueue(self.queue_path)
        try:
            return queue.counters()
        finally:
            queue.close()


@contextmanager
def running_gateway(
    stack: StackInfo, workdir: Path, database: str, **overrides: Any
) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(stack, workdir, database, **overrides)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def _toml(settings: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


class Publisher:
    """A node's MQTT connection: publishes at QoS 1 and waits for every PUBACK.

    Without ``credentials`` it connects as a test-only relay that may publish on any topic
    under ``commons/v1/`` (for tests about the gateway, not about access).
    """

    def __init__(
        self,
        stack: StackInfo,
        credentials: Credentials | None = None,
        client_id: str | None = None,
    ) -> None:
        self.credentials = credentials or relay_credentials(stack)
        self.client = connect(stack, self.credentials, client_id or f"pub-{uuid.uuid4().hex[:8]}")
        self._infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self._infos.append(self.client.publish(topic, payload, qos=qos))

    def publish_json(self, topic: str, payload: dict[str, Any]) -> None:
        self.publish(topic, json.dumps(payload))

    def flush(self, timeout: float = 60.0) -> None:
        for info in self._infos:
            info.wait_for_publish(timeout)
        self._infos.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def watching_status(stack: StackInfo, gateway_id: str) -> Iterator[list[dict[str, Any]]]:
    """Collect the gateway's status messages (the retained one first) while in the block."""
    seen: list[dict[str, Any]] = []
    topic = gateway_status_topic(gateway_id)
    client = connect(stack, monitor_credentials(stack))
    client.on_message = lambda c, userdata, msg: seen.append(json.loads(msg.payload))
    client.on_connect = lambda c, *args: c.subscribe(topic, qos=1)  # again after a reconnect
    client.subscribe(topic, qos=1)
    try:
        yield seen
    finally:
        client.loop_stop()
        client.disconnect()


@contextmanager
def influxdb_stopped(stack: StackInfo) -> Iterator[None]:
    """InfluxDB down for the block (SIGTERM), then up again with its data, whatever happens."""
    from commons.stack import INFLUXDB, Stack

    local = Stack(stack.home)
    local.down((INFLUXDB,))
    try:
        yield
    finally:
        local.up()


def air_payload(seq: int, ts: int, **values: float) -> dict[str, Any]:
    return {"v": 1, "ts": ts, "seq": seq, "fw": "test-1", "flags": [], **values}


def influx_for(stack: StackInfo, database: str) -> InfluxHTTP:
    influx = InfluxHTTP(stack.influx.url, database)
    init_database(influx)
    return influx


def count_points(influx: InfluxHTTP, measurement: str, field: str = "qa") -> int:
    series = influx.series(f'SELECT count("{field}") FROM "{measurement}"')
    return int(series[0]["values"][0][1]) if series else 0


def rows(influx: InfluxHTTP, q: str) -> list[dict[str, Any]]:
    """Rows of a query as dicts (tags included when grouped by them)."""
    out: list[dict[str, Any]] = []
    for serie in influx.series(q):
        tags = serie.get("tags", {})
        for values in serie["values"]:
            out.append({**tags, **dict(zip(serie["columns"], values, strict=True))})
    return out


def wait_for_count(
    influx: InfluxHTTP, measurement: str, expected: int, timeout: float = 60.0
) -> None:
    wait_until(
        lambda: count_points(influx, measurement) >= expected,
        timeout,
        f"{expected} points in {measurement} (have {count_points(influx, measurement)})",
        poll=0.2,
    )
