"""``commons broker run``: the gateway's broker as a foreground service, as systemd runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from harness import COMMONS, connect

from commons.broker import BrokerSettings
from commons.dynsec import Credentials
from commons.home import load_stack
from commons.procs import free_port, port_open, wait_until
from commons.settings import ConfigError
from gateway.config import GatewaySettings

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> tuple[Path, subprocess.Popen[bytes]]:
    home = tmp_path / "home"
    config = tmp_path / "broker.toml"
    port, tls_port = free_port(), free_port()
    config.write_text(
        f'[broker]\nbind = "127.0.0.1"\nport = {port}\ntls_port = {tls_port}\n'
        f'log = "{tmp_path / "mosquitto.log"}"\n'
    )
    env = {**os.environ, "COMMONS_HOME": str(home)}
    proc = subprocess.Popen(
        [str(COMMONS), "broker", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "broker.err").open("wb"),
    )
    try:
        wait_until(
            lambda: (home / "stack.json").exists() and port_open("127.0.0.1", port),
            60,
            "the broker to answer",
        )
        yield home, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def test_broker_run_serves_nodes_with_their_own_logins(
    broker: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    home, proc = broker
    info = load_stack(home)
    assert info.mqtt.gateway is not None and info.mqtt.admin is not None
    gateway = Credentials(info.mqtt.gateway.username, info.mqtt.gateway.password())
    # Access is configured right after the broker answers: wait for the gateway's login.
    listener = None

    def gateway_can_log_in() -> bool:
        nonlocal listener
        try:
            listener = connect(info, gateway)
        except ConnectionRefusedError:
            return False
        return True

    wait_until(gateway_can_log_in, 30, "the gateway's account to exist")
    assert listener is not None
    env = {**os.environ, "COMMONS_HOME": str(home)}
    node_id = f"bk-{uuid.uuid4().hex[:6]}"
    added = subprocess.run(
        [str(COMMONS), "node", "add", node_id, "--area", "Old Town"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    node = json.loads(added.stdout)
    got = threading.Event()
    listener.on_message = lambda c, u, msg: got.set()
    listener.subscribe(f"commons/v1/{node_id}/air", qos=1)
    login = node["mqtt"]
    publisher = connect(info, Credentials(login["username"], login["password"]))
    publisher.publish(f"commons/v1/{node_id}/air", b"{}", qos=1).wait_for_publish(10)
    assert got.wait(10)
    with pytest.raises(ConnectionRefusedError):
        connect(info, None)
    for client in (publisher, listener):
        client.loop_stop()
        client.disconnect()
    # systemd stops it with SIGTERM: the broker saves its state and the command exits 0.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def test_a_gateway_on_the_same_machine_finds_the_broker(
    broker: tuple[Path, subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _ = broker
    monkeypatch.setenv("COMMONS_HOME", str(home))
    monkeypatch.setenv("COMMONS_INFLUX_PASSWORD", "x")
    settings = GatewaySettings.load(Path(__file__).parent.parent / "deploy" / "gateway.toml")
    info = load_stack(home)
    assert settings.mqtt.port == info.mqtt.port
    assert info.mqtt.gateway is not None
    assert settings.mqtt.username == info.mqtt.gateway.username


def test_broker_settings_errors_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text("[broker]\nport = 1883\ntls_port = 1883\n")
    with pytest.raises(ConfigError) as caught:
        BrokerSettings.load(config)
    assert caught.value.key == "broker.tls_port"
    config.write_text("[broker]\nprot = 1883\n")
    with pytest.raises(ConfigError) as caught:
        BrokerSettings.load(config)
    assert caught.value.key == "broker.prot"
    assert BrokerSettings.load(Path(__file__).parent.parent / "deploy" / "broker.toml").port == 1883
