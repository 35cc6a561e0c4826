"""``commons stack up|down|status``: a local Mosquitto and InfluxDB on free loopback ports.

Both are the real Debian binaries, each with a configuration generated under
``$COMMONS_HOME`` and its data kept there, so ``up`` after ``down`` resumes with the same
ports and the same data. ``stack.json`` describes the services for every other command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from commons.home import STACK_FILE, InfluxEndpoint, MqttEndpoint, StackInfo
from commons.procs import ProcessRef, free_port, port_open

HOST = "127.0.0.1"
DATABASE = "commons"
STATE_FILE = "stack-state.json"
START_TIMEOUT_S = 60.0

# The broker keeps what a persistent session has not yet acknowledged. Its defaults (1000
# queued messages per client) would drop readings during a gateway outage of a few minutes.
MOSQUITTO_MAX_QUEUED = 10_000_000
# Messages in flight towards one client before the broker waits for acknowledgements. The
# gateway acknowledges in groups after each queue commit, so it needs a deep window.
MOSQUITTO_MAX_INFLIGHT = 1000
# Larger than the gateway's own payload limit, so oversized payloads reach the gateway
# and are dead-lettered with a reason instead of vanishing at the broker.
MOSQUITTO_MESSAGE_LIMIT = 1_048_576


class MissingBinaryError(Exception):
    """A service binary is not installed."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(
            f"{binary} is not installed: run 'sudo apt-get install -y {package}' (or 'make setup')"
        )
        self.binary = binary
        self.package = package


class ServiceStartError(Exception):
    """A service was started but did not answer; carries the tail of its log."""

    def __init__(self, service: str, log: Path, reason: str) -> None:
        tail = ""
        if log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        super().__init__(f"{service} did not start: {reason}\n--- {log} ---\n{tail}")
        self.service = service
        self.log = log


@dataclass(frozen=True)
class Service:
    name: str
    binary: str
    package: str


MOSQUITTO = Service("mosquitto", "mosquitto", "mosquitto")
INFLUXDB = Service("influxdb", "influxd", "influxdb")
SERVICES = (MOSQUITTO, INFLUXDB)


# Debian puts mosquitto in /usr/sbin, which is not on every user's PATH: searched after PATH.
# $COMMONS_SBIN_PATH replaces this list (empty: search PATH only).
SBIN_PATH = "/usr/sbin:/usr/local/sbin:/sbin"
SBIN_PATH_ENV = "COMMONS_SBIN_PATH"


def find_binary(service: Service) -> str:
    """Absolute path of the service's binary, from PATH or else from the sbin folders."""
    path = shutil.which(service.binary) or shutil.which(
        service.binary, path=os.environ.get(SBIN_PATH_ENV, SBIN_PATH)
    )
    if path is None:
        raise MissingBinaryError(service.binary, service.package)
    return path


class Stack:
    """The local services under one ``$COMMONS_HOME``."""

    def __init__(self, home: Path) -> None:
        self.home = home

    # -- persisted state --------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.home / STATE_FILE

    def _load_state(self) -> dict[str, dict[str, int]]:
        try:
            state: dict[str, dict[str, int]] = json.loads(self._state_path().read_text())
        except FileNotFoundError:
            return {}
        return state

    def _save_state(self, state: dict[str, dict[str, int]]) -> None:
        self._atomic_write(self._state_path(), json.dumps(state, indent=2))

    @staticmethod
    def _atomic_write(path: Path, text: str) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)

    def _ports(self, state: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        """Ports chosen the first time and kept thereafter."""
        ports = {}
        for key, names in (("mosquitto", ("port",)), ("influxdb", ("http", "rpc"))):
            entry = dict(state.get(key, {}))
            for name in names:
                if name not in entry:
                    entry[name] = free_port(HOST)
            ports[key] = entry
        return ports

    def info(self) -> StackInfo:
        state = self._load_state()
        return StackInfo(
            home=self.home,
            mqtt=MqttEndpoint(host=HOST, port=state["mosquitto"]["port"]),
            influx=InfluxEndpoint(
                url=f"http://{HOST}:{state['influxdb']['http']}", database=DATABASE
            ),
        )

    def _process(self, state: dict[str, dict[str, int]], service: Service) -> ProcessRef | None:
        entry = state.get(service.name, {})
        if "pid" not in entry:
            return None
        ref = ProcessRef(pid=entry["pid"], started=entry["started"])
        return ref if ref.alive() else None

    # -- configuration ----------------------------------------------------------------

    def _mosquitto_config(self, port: int) -> Path:
        root = self.home / "mosquitto"
        (root / "data").mkdir(parents=True, exist_ok=True)
        conf = root / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    "# Generated by 'commons stack up'; edits are overwritten.",
                    "per_listener_settings false",
                    # Started as root, mosquitto switches to the 'mosquitto' user, which cannot
                    # write its log or persistence under this home: stay the user who owns it.
                    *(["user root"] if os.geteuid() == 0 else []),
                    f"listener {port} {HOST}",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {root / 'data'}/",
                    "autosave_interval 30",
                    f"max_queued_messages {MOSQUITTO_MAX_QUEUED}",
                    "max_queued_bytes 0",
                    f"max_inflight_messages {MOSQUITTO_MAX_INFLIGHT}",
                    f"message_size_limit {MOSQUITTO_MESSAGE_LIMIT}",
                    f"log_dest file {root / 'mosquitto.log'}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "connection_messages true",
                    "",
                ]
            )
        )
        return conf

    def _influx_config(self, http: int, rpc: int) -> Path:
        root = self.home / "influxdb"
        for sub in ("meta", "data", "wal"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        conf = root / "influxdb.conf"
        conf.write_text(
            f"""# Generated by 'commons stack up'; edits are overwritten.
reporting-disabled = true
bind-address = "{HOST}:{rpc}"

[meta]
  dir = "{root / "meta"}"

[data]
  dir = "{root / "data"}"
  wal-dir = "{root / "wal"}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "{HOST}:{http}"
  log-enabled = false
  pprof-enabled = false

[continuous_queries]
  log-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""
        )
        return conf

    # -- lifecycle --------------------------------------------------------------------

    def up(self) -> StackInfo:
        """Start whichever service is not running; return once both answer."""
        binaries = {service.name: find_binary(service) for service in SERVICES}
        self.home.mkdir(parents=True, exist_ok=True)
        state = self._load_state()
        ports = self._ports(state)
        for service in SERVICES:
            entry = ports[service.name]
            if self._process(state, service) is not None:
                continue
            if service is MOSQUITTO:
                conf = self._mosquitto_config(entry["port"])
                argv = [binaries["mosquitto"], "-c", str(conf)]
                log = self.home / "mosquitto" / "stdout.log"
                busy = [entry["port"]]
            else:
                conf = self._influx_config(entry["http"], entry["rpc"])
                argv = [binaries["influxdb"], "-config", str(conf)]
                log = self.home / "influxdb" / "influxd.log"
                busy = [entry["http"], entry["rpc"]]
            for port in busy:
                if port_open(HOST, port):
                    raise ServiceStartError(
                        service.name, log, f"port {port} is taken by another program"
                    )
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            ref = ProcessRef.of(proc.pid)
            state[service.name] = {**entry, "pid": ref.pid, "started": ref.started}
            self._save_state(state)
        info = self.info()
        self._atomic_write(self.home / STACK_FILE, json.dumps(info.to_json(), indent=2) + "\n")
        self._wait_ready(state, info)
        return info

    def _wait_ready(self, state: dict[str, dict[str, int]], info: StackInfo) -> None:
        for service in SERVICES:
            if service is MOSQUITTO:
                log = self.home / "mosquitto" / "mosquitto.log"
            else:
                log = self.home / "influxdb" / "influxd.log"
            ref = self._process(state, service)
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._answers(service, info):
                if ref is None or not ref.alive():
                    raise ServiceStartError(service.name, log, "the process exited")
                if time.monotonic() > deadline:
                    raise ServiceStartError(
                        service.name, log, f"no answer within {START_TIMEOUT_S:.0f} s"
                    )
                time.sleep(0.05)

    @staticmethod
    def _answers(service: Service, info: StackInfo) -> bool:
        if service is MOSQUITTO:
            return port_open(info.mqtt.host, info.mqtt.port)
        return influx_ping(info.influx.url)

    def down(self, services: tuple[Service, ...] = SERVICES) -> list[str]:
        """Stop exactly the processes this stack started; return the names stopped."""
        state = self._load_state()
        stopped = []
        for service in services:
            ref = self._process(state, service)
            if ref is not None:
                ref.stop()
                stopped.append(service.name)
            entry = state.get(service.name)
            if entry is not None:
                entry.pop("pid", None)
                entry.pop("started", None)
        if state:
            self._save_state(state)
        return stopped

    def status(self) -> dict[str, dict[str, object]]:
        """For each service: whether it runs, its PID, its address, whether it answers."""
        state = self._load_state()
        result: dict[str, dict[str, object]] = {}
        if not state:
            return {service.name: {"running": False} for service in SERVICES}
        info = self.info()
        for service in SERVICES:
            ref = self._process(state, service)
            if service is MOSQUITTO:
                address = f"mqtt://{info.mqtt.host}:{info.mqtt.port}"
            else:
                address = info.influx.url
            answers = ref is not None and self._answers(service, info)
            result[service.name] = {
                "running": ref is not None,
                "pid": ref.pid if ref else None,
                "address": address,
                "answers": answers,
            }
        return result


def influx_ping(url: str) -> bool:
    """Whether InfluxDB answers ``/ping`` with 204."""
    try:
        return requests.get(f"{url}/ping", timeout=1.0).status_code == 204
    except requests.RequestException:
        return False
