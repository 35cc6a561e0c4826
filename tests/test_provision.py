"""``commons node provision`` against the real MicroPython unix port on a pseudo-terminal.

The unix port's REPL runs on the pty's master side, as the ESP32's REPL is on the far end of
its USB-UART; the provisioning code opens the slave device with pyserial. The board's
filesystem root is a temporary folder (the port's working directory).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import threading
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import RunCommons

from commons.micropython import micropython_binary
from gateway.provision import (
    ConfigFileError,
    DeviceNotFoundError,
    NotMicroPythonError,
    RemoteError,
    VerifyMismatchError,
    load_node_config,
    provision,
)

NODE = "esp32-a1b2c3"
# Replaces ``open`` in the REPL's globals: files opened for writing get every "x" as "y".
CORRUPTING_OPEN = """
_real_open = open
class _Corrupting:
    def __init__(self, f):
        self._f = f
    def write(self, data):
        return self._f.write(bytes(data).replace(b"x", b"y"))
    def close(self):
        self._f.close()
def open(path, mode="r"):
    f = _real_open(path, mode)
    return _Corrupting(f) if "w" in mode else f
"""


@dataclass
class Board:
    device: str
    root: Path
    process: subprocess.Popen[bytes]


def _node_config(node_id: str = NODE, ssid: str = "commons-wifi") -> bytes:
    config = {
        "node_id": node_id,
        "wifi": {"ssid": ssid, "password": "correct horse battery staple"},
        "broker": {"host": "192.168.1.2", "port": 1883, "user": node_id, "password": "x" * 40},
    }
    return json.dumps(config, indent=2).encode()


@contextmanager
def _start_board(root: Path, *args: str) -> Iterator[Board]:
    master, slave = os.openpty()
    tty.setraw(slave)
    device = os.ttyname(slave)
    os.close(slave)
    process = subprocess.Popen(
        [str(micropython_binary()), *args],
        stdin=master,
        stdout=master,
        stderr=master,
        cwd=root,
    )
    os.close(master)  # the board process holds it
    try:
        yield Board(device, root, process)
    finally:
        process.kill()
        process.wait(10)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    root = tmp_path / "board"
    root.mkdir()
    with _start_board(root) as started:
        yield started


def test_writes_the_config_and_verifies_it(board: Board) -> None:
    content = _node_config()
    done = provision(board.device, content)
    assert (board.root / "config.json").read_bytes() == content
    assert done.sha256 == hashlib.sha256(content).hexdigest()
    assert (done.size, done.path) == (len(content), "config.json")
    assert not (board.root / "config.json.new").exists()


def test_replaces_an_existing_config(board: Board) -> None:
    provision(board.device, _node_config(ssid="old"))
    provision(board.device, _node_config(ssid="new"))
    assert json.loads((board.root / "config.json").read_text())["wifi"]["ssid"] == "new"


def test_a_failure_on_the_board_carries_its_traceback(board: Board) -> None:
    with pytest.raises(RemoteError) as caught:
        provision(board.device, _node_config(), remote_path="no/such/dir/config.json")
    assert "OSError" in caught.value.traceback


def test_a_corrupted_write_is_caught_by_reading_back(tmp_path: Path) -> None:
    script = tmp_path / "corrupting.py"
    script.write_text(CORRUPTING_OPEN)
    root = tmp_path / "board"
    root.mkdir()
    with _start_board(root, "-i", str(script)) as bad:
        with pytest.raises(VerifyMismatchError) as caught:
            provision(bad.device, _node_config())
        assert caught.value.expected == hashlib.sha256(_node_config()).hexdigest()
        assert caught.value.actual != caught.value.expected


def test_no_device() -> None:
    with pytest.raises(DeviceNotFoundError, match="/dev/ttyUSB-none"):
        provision("/dev/ttyUSB-none", b"{}")


def test_a_device_that_is_not_micropython() -> None:
    """A serial console that answers every line with a login prompt."""
    master, slave = os.openpty()
    tty.setraw(slave)
    device = os.ttyname(slave)
    stop = threading.Event()

    def getty() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready and os.read(master, 1024):
                os.write(master, b"\r\nraspberrypi login: ")

    thread = threading.Thread(target=getty, name="fake-getty")
    thread.start()
    try:
        with pytest.raises(NotMicroPythonError) as caught:
            provision(device, b"{}", timeout=1.0)
        assert b"login: " in caught.value.received
        assert "login: " in str(caught.value)
    finally:
        stop.set()
        thread.join(5)
        os.close(slave)
        os.close(master)


def test_config_file_checks(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_bytes(_node_config("esp32-ffffff"))
    with pytest.raises(ConfigFileError, match="node_id is 'esp32-ffffff'"):
        load_node_config(NODE, other)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigFileError, match="not JSON"):
        load_node_config(NODE, broken)
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(ConfigFileError, match="JSON object"):
        load_node_config(NODE, listed)


def test_cli_provisions_the_file_node_add_wrote(
    board: Board, run_commons: RunCommons, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "nodes").mkdir(parents=True)
    content = _node_config()
    (home / "nodes" / f"{NODE}.json").write_bytes(content)
    result = run_commons("node", "provision", "--port", board.device, NODE, home=home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verified"] is True
    assert report["sha256"] == hashlib.sha256(content).hexdigest()
    assert (board.root / "config.json").read_bytes() == content


def test_cli_with_a_config_file(board: Board, run_commons: RunCommons, tmp_path: Path) -> None:
    config = tmp_path / "node.json"
    config.write_bytes(_node_config())
    result = run_commons("node", "provision", "--port", board.device, "--config", str(config), NODE)
    assert result.returncode == 0, result.stderr
    assert (board.root / "config.json").read_bytes() == config.read_bytes()


def test_cli_errors(run_commons: RunCommons, tmp_path: Path) -> None:
    missing = run_commons("node", "provision", "--port", "/dev/null", NODE, home=tmp_path)
    assert missing.returncode == 2
    assert f"commons node add {NODE}" in missing.stderr
    config = tmp_path / "node.json"
    config.write_bytes(_node_config())
    args = ("node", "provision", "--port", "/dev/ttyUSB-none", "--config", str(config), NODE)
    no_device = run_commons(*args)
    assert no_device.returncode == 1
    assert "/dev/ttyUSB-none: cannot open the serial device" in no_device.stderr
