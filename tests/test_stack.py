"""``commons stack up|down|status`` against the real Mosquitto and InfluxDB.

Each test uses homes of its own, so it can stop and start services freely; whatever a test
leaves running is stopped by PID when it ends.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import RunCommons, connect, monitor_credentials, node_credentials

from commons.contract import Kind, topic_for
from commons.dynsec import Credentials
from commons.home import STACK_FILE, StackInfo, load_stack
from commons.procs import ProcessRef, port_open, wait_until
from commons.stack import (
    INFLUXDB,
    MOSQUITTO,
    PLUGIN_PATH_ENV,
    SBIN_PATH_ENV,
    SERVICES,
    Service,
    Stack,
    find_binary,
    influx_ping,
)

pytestmark = pytest.mark.integration

NewHome = Callable[[str], Path]
WAIT_S = 15.0


@pytest.fixture
def new_home(tmp_path: Path) -> Iterator[NewHome]:
    """Make a fresh, unstarted ``$COMMONS_HOME``; every one is brought down at the end."""
    homes: list[Path] = []

    def make(name: str) -> Path:
        home = tmp_path / name
        homes.append(home)
        return home

    yield make
    for home in homes:
        Stack(home).down()


def _up(run_commons: RunCommons, home: Path) -> dict[str, ProcessRef]:
    """``commons stack up`` in ``home``; the exact processes now serving it, by service."""
    result = run_commons("stack", "up", home=home)
    assert result.returncode == 0, result.stderr
    return _running(home)


def _running(home: Path) -> dict[str, ProcessRef]:
    refs = {}
    for name, entry in Stack(home).status().items():
        pid = entry.get("pid")
        if isinstance(pid, int):
            refs[name] = ProcessRef.of(pid)
    return refs


def _stack_json(home: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((home / STACK_FILE).read_text())
    return data


def _influx_query(url: str, query: str, database: str | None = None) -> dict[str, Any]:
    params = {"q": query, "epoch": "s"} | ({"db": database} if database else {})
    response = requests.post(f"{url}/query", params=params, timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    assert "error" not in body["results"][0], body
    return body


def _publish_retained(
    stack: StackInfo, credentials: Credentials, topic: str, payload: bytes
) -> None:
    client = connect(stack, credentials)
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(timeout=WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def _retained(stack: StackInfo, topic: str) -> bytes:
    received: list[bytes] = []
    client = connect(stack, monitor_credentials(stack))
    client.on_message = lambda _client, _userdata, message: received.append(bytes(message.payload))
    try:
        client.subscribe(topic, qos=1)
        wait_until(lambda: bool(received), WAIT_S, f"the retained message on {topic}")
    finally:
        client.disconnect()
        client.loop_stop()
    return received[0]


def test_up_writes_stack_json_and_both_services_answer(
    run_commons: RunCommons, new_home: NewHome
) -> None:
    home = new_home("home")
    result = run_commons("stack", "up", home=home)
    assert result.returncode == 0, result.stderr

    info = _stack_json(home)
    assert set(info["mqtt"]) >= {"host", "port"}
    assert set(info["influx"]) >= {"url", "database"}
    assert info["mqtt"]["host"] == "127.0.0.1"
    assert info["mqtt"]["tls_port"] != info["mqtt"]["port"]
    assert port_open("127.0.0.1", info["mqtt"]["tls_port"])
    assert Path(info["mqtt"]["ca_file"]).is_file()
    for account in ("admin", "gateway"):
        secret = Path(info["mqtt"][account]["password_file"])
        assert secret.stat().st_mode & 0o777 == 0o600
        assert secret.read_text().strip() not in (home / STACK_FILE).read_text()
    assert info["influx"]["url"].startswith("http://127.0.0.1:")
    assert info["influx"]["database"] == "commons"
    assert port_open(info["mqtt"]["host"], info["mqtt"]["port"])
    assert influx_ping(info["influx"]["url"])
    assert f"mqtt://127.0.0.1:{info['mqtt']['port']}" in result.stdout

    status = run_commons("stack", "status", "--json", home=home)
    assert status.returncode == 0, status.stdout
    assert all(entry["answers"] for entry in json.loads(status.stdout).values())


def test_up_is_idempotent(run_commons: RunCommons, new_home: NewHome) -> None:
    home = new_home("home")
    first = _up(run_commons, home)
    described = _stack_json(home)

    second = _up(run_commons, home)

    assert second == first
    assert all(ref.alive() for ref in first.values())
    assert _stack_json(home) == described


def test_down_stops_exactly_its_own_processes(run_commons: RunCommons, new_home: NewHome) -> None:
    mine, other = new_home("mine"), new_home("other")
    mine_refs = _up(run_commons, mine)
    other_refs = _up(run_commons, other)
    assert set(mine_refs) == set(other_refs) == {service.name for service in SERVICES}

    result = run_commons("stack", "down", home=mine)

    assert result.returncode == 0, result.stderr
    assert "mosquitto" in result.stdout
    assert "influxdb" in result.stdout
    assert not any(ref.alive() for ref in mine_refs.values())
    assert all(ref.alive() for ref in other_refs.values())
    assert not port_open("127.0.0.1", _stack_json(mine)["mqtt"]["port"])
    assert run_commons("stack", "status", home=mine).returncode == 1
    assert run_commons("stack", "status", home=other).returncode == 0
    again = run_commons("stack", "down", home=mine)
    assert again.returncode == 0
    assert "nothing" in again.stdout


def test_up_after_down_keeps_ports_and_data(run_commons: RunCommons, new_home: NewHome) -> None:
    home = new_home("home")
    _up(run_commons, home)
    info = _stack_json(home)
    url = info["influx"]["url"]
    stack = load_stack(home)
    _influx_query(url, "CREATE DATABASE kept")
    write = requests.post(
        f"{url}/write",
        params={"db": "kept", "precision": "s"},
        data="probe,node=n-1 value=42.5 1750000000",
        timeout=10,
    )
    assert write.status_code == 204, write.text
    last_will = topic_for("n-1", Kind.STATUS)
    _publish_retained(
        stack, node_credentials(stack, "n-1"), last_will, b'{"v":1,"state":"offline"}'
    )

    assert run_commons("stack", "down", home=home).returncode == 0
    _up(run_commons, home)

    assert _stack_json(home) == info
    body = _influx_query(url, "SELECT value FROM probe", database="kept")
    assert body["results"][0]["series"][0]["values"] == [[1750000000, 42.5]]
    assert _retained(stack, last_will) == b'{"v":1,"state":"offline"}'


@pytest.mark.parametrize("killed", SERVICES, ids=[service.name for service in SERVICES])
def test_up_restarts_only_the_service_that_died(
    run_commons: RunCommons, new_home: NewHome, killed: Service
) -> None:
    home = new_home("home")
    before = _up(run_commons, home)
    info = _stack_json(home)
    survivor = INFLUXDB if killed is MOSQUITTO else MOSQUITTO
    os.kill(before[killed.name].pid, signal.SIGKILL)
    wait_until(lambda: not before[killed.name].alive(), WAIT_S, f"{killed.name} to die")
    assert run_commons("stack", "status", home=home).returncode == 1

    after = _up(run_commons, home)

    assert after[survivor.name] == before[survivor.name]
    assert after[killed.name] != before[killed.name]
    assert after[killed.name].alive()
    assert _stack_json(home) == info
    assert run_commons("stack", "status", home=home).returncode == 0


@pytest.mark.parametrize("missing", SERVICES, ids=[service.name for service in SERVICES])
def test_missing_binary_says_which_package_to_install(
    run_commons: RunCommons, new_home: NewHome, tmp_path: Path, missing: Service
) -> None:
    home = new_home("home")
    # A PATH holding the console script and the binary that is present, and nothing else.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    present = INFLUXDB if missing is MOSQUITTO else MOSQUITTO
    (bin_dir / present.binary).symlink_to(find_binary(present))
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent)])

    result = run_commons("stack", "up", home=home, env={"PATH": path, SBIN_PATH_ENV: ""})

    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert missing.binary in lines[0]
    assert f"apt-get install -y {missing.package}" in lines[0]
    assert not (home / STACK_FILE).exists()
    assert _running(home) == {}


def test_missing_dynsec_plugin_names_the_package(
    run_commons: RunCommons, new_home: NewHome, tmp_path: Path
) -> None:
    home = new_home("home")
    empty = tmp_path / "no-plugins"
    empty.mkdir()

    result = run_commons("stack", "up", home=home, env={PLUGIN_PATH_ENV: str(empty)})

    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "mosquitto_dynamic_security.so" in lines[0]
    assert "apt-get install -y mosquitto" in lines[0]
    assert not (home / STACK_FILE).exists()
    assert _running(home) == {}


def test_status_without_a_stack_exits_1(run_commons: RunCommons, new_home: NewHome) -> None:
    result = run_commons("stack", "status", home=new_home("never-started"))
    assert result.returncode == 1
    assert "down" in result.stdout


def test_session_stack_fixture_serves_its_home(
    stack: StackInfo, commons_home: Path, run_commons: RunCommons
) -> None:
    assert stack.home == commons_home
    assert os.environ["COMMONS_HOME"] == str(commons_home)
    assert _stack_json(commons_home) == stack.to_json()
    assert run_commons("stack", "status").returncode == 0
