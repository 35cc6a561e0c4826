"""The whole node as a process: the unix port running ``main`` in a folder that is its flash.

The folder holds ``config.json`` (written here), ``hw.json`` (the fake
hardware's settings, tests/firmware/mp/hw/hwconf.py) and whatever the node
writes (the ring buffer under ``data/``). A "reboot" is a SIGKILL and a new
process on the same folder. Also: a private Mosquitto that a test can stop
and start again on the same port, and a subscriber that records what arrives.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from mprunner import MICROPYTHON, MP_DIR, MPY_CROSS

from commons.procs import ProcessRef, free_port, port_open, reap, wait_until
from commons.stack import MOSQUITTO, find_binary

HW_DIR = MP_DIR / "hw"
NODE_HEAP = "100K"  # what an ESP32-WROOM leaves to Python (commons.micropython.ESP32_HEAP)


class _ShortPaths:
    """Short symlinks to the folders a node imports from.

    MicroPython interns the path of every module file it loads into a name pool that grows in
    steps, on the device as here; on the ESP32 those paths are a few bytes ("/main.py"). Under
    pytest they would be as long as its temporary folders (longer still with several workers),
    and an air node's heap would depend on where the tests run. So a node sees each folder of
    its MICROPYPATH through a link of the same short length wherever the tests run.
    """

    def __init__(self) -> None:
        self._root: Path | None = None
        self._links: dict[Path, Path] = {}

    def __call__(self, folder: Path) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="mp", dir="/tmp"))
            atexit.register(shutil.rmtree, self._root, True)
        link = self._links.get(folder)
        if link is None:
            link = self._root / str(len(self._links))
            link.symlink_to(folder.resolve(), target_is_directory=True)
            self._links[folder] = link
        return link


short_path = _ShortPaths()


def compile_hw(dest: Path) -> Path:
    """The fake hardware modules as .mpy: compiling them in a 100 KB heap would not fit."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in sorted(HW_DIR.glob("*.py")):
        subprocess.run(
            [str(MPY_CROSS), "-o", str(dest / (source.stem + ".mpy")), str(source)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return dest


def node_config(port: int, **sections: Any) -> dict[str, Any]:
    """A config.json for a fast node: 1 s cycles, no warm-up, one sample."""
    raw: dict[str, Any] = {
        "node_id": "esp32-a1b2c3",
        "wifi": {"ssid": "commons", "password": "secret"},
        "broker": {"host": "127.0.0.1", "port": port, "keepalive_s": 10},
        "ntp": {"host": "127.0.0.1"},
        "pm": {"sensor": "sds011", "warmup_s": 0, "samples": 1},
        "intervals": {"sample_s": 1, "status_s": 2},
        "buffer": {"slots": 64},
        "watchdog_s": 10,
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **value}
        else:
            raw[name] = value
    return raw


class NodeProcess:
    """One run of the firmware in ``folder``; its console goes to ``console.log`` there."""

    def __init__(self, folder: Path, path: list[Path], heap: str = NODE_HEAP) -> None:
        self.folder = folder
        self.path = path
        self.heap = heap
        self.ref: ProcessRef | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "console.log"

    def configure(self, config: dict[str, Any], hw: dict[str, Any] | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "config.json").write_text(json.dumps(config))
        (self.folder / "hw.json").write_text(json.dumps(hw or {}))

    def start(self) -> NodeProcess:
        env_path = ":".join([*(str(short_path(p)) for p in self.path), ".frozen"])
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(MICROPYTHON), "-X", f"heapsize={self.heap}", "-m", "main"],
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MICROPYPATH": env_path},
            )
        self.ref = ProcessRef.of(self.proc.pid)
        return self

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []

    def wait_for(self, check: Callable[[list[str]], bool], timeout: float, what: str) -> None:
        def ok() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                tail = "\n".join(self.lines()[-30:])
                raise AssertionError(f"node exited ({self.proc.returncode}) before {what}:\n{tail}")
            return check(self.lines())

        wait_until(ok, timeout, what)

    def samples(self) -> list[dict[str, int]]:
        """The ``sample seq=.. buffered=..`` console lines, as numbers."""
        out = []
        for line in self.lines():
            if line.startswith("sample "):
                out.append({k: int(v) for k, v in (p.split("=") for p in line.split()[1:])})
        return out

    def kill(self) -> None:
        """Power cut: SIGKILL, nothing flushed, nothing said to the broker."""
        if self.ref is not None and self.ref.signal(signal.SIGKILL):
            wait_until(lambda: not self.ref.alive(), 10, "node to die")  # type: ignore[union-attr]
            reap(self.ref.pid)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.ref is not None:
            self.ref.stop(timeout=5)
        if self.proc is not None:
            self.proc.wait(timeout=10)


class PrivateBroker:
    """A Mosquitto of the test's own, on a fixed port, with persistence, restartable."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.ref: ProcessRef | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        auth = ["allow_anonymous true"]
        if users:
            passwords = folder / "passwords"
            passwords.write_text("")
            passwords.chmod(0o600)
            for user, password in users.items():
                subprocess.run(
                    [_passwd_tool(), "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
            auth = ["allow_anonymous false", f"password_file {passwords}"]
        self.conf.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    f"listener {self.port} 127.0.0.1",
                    *auth,
                    "persistence true",
                    f"persistence_location {folder}/",
                    f"log_dest file {folder / 'mosquitto.log'}",
                    "connection_messages true",
                    "",
                ]
            )
            + ("user root\n" if _is_root() else "")
        )

    def start(self) -> PrivateBroker:
        self.proc = subprocess.Popen(
            [find_binary(MOSQUITTO), "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.ref = ProcessRef.of(self.proc.pid)
        wait_until(lambda: port_open("127.0.0.1", self.port), 20, "mosquitto to listen")
        return self

    def stop(self) -> None:
        if self.ref is not None:
            self.ref.stop()
            self.ref = None
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.proc = None


def _passwd_tool() -> str:
    tool = shutil.which("mosquitto_passwd", path="/usr/bin:/usr/sbin:" + os.environ["PATH"])
    if tool is None:
        raise FileNotFoundError("mosquitto_passwd (Debian package mosquitto)")
    return tool


def _is_root() -> bool:
    return os.geteuid() == 0


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float


@dataclass
class Recorder:
    """A paho subscriber with a persistent session: nothing is missed across broker restarts."""

    host: str
    port: int
    topic: str = "commons/v1/#"
    client_id: str = "fw-test-recorder"
    username: str | None = None
    password: str | None = None
    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    subscribed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False
        )
        self.client.reconnect_delay_set(0.2, 1)
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.subscribed.set()

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, msg.payload, msg.retain, time.time()))

    def start(self) -> Recorder:
        self.client.connect(self.host, self.port, keepalive=10)
        self.client.loop_start()
        wait_until(self.subscribed.is_set, 20, "the recorder to subscribe")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def of_kind(self, kind: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith("/" + kind)]

    def air(self) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.of_kind("air")]


@dataclass(frozen=True)
class StackAccounts:
    """MQTT users on the session's broker: the node's own and a read-only recorder's.

    Empty (anonymous) while the stack's broker allows anonymous clients; once it
    carries an access administrator, both are created through commons.access.
    """

    node: tuple[str, str] | None = None
    recorder: tuple[str, str] | None = None


def stack_accounts(mqtt: Any, node_id: str) -> StackAccounts:
    admin = getattr(mqtt, "admin", None)
    if admin is None:
        return StackAccounts()
    from commons import access, dynsec  # type: ignore[attr-defined,unused-ignore]

    credentials = dynsec.Credentials(admin.username, admin.password())
    with dynsec.Dynsec(mqtt.host, mqtt.port, credentials) as control:
        node = access.add_node(control, node_id)
        recorder = access.add_monitor(control, "fw-test-" + node_id)
    return StackAccounts((node.username, node.password), (recorder.username, recorder.password))
