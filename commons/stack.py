"""``commons stack up|down|status``: a local Mosquitto and InfluxDB on free loopback ports.

Both are the real Debian binaries, each with a configuration generated under
``$COMMONS_HOME`` and its data kept there, so ``up`` after ``down`` resumes with the same
ports and the same data. ``stack.json`` describes the services for every other command.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from commons import access
from commons.dynsec import (
    BrokerUnreachableError,
    Credentials,
    Dynsec,
    DynsecError,
    write_initial_config,
)
from commons.home import STACK_FILE, Account, InfluxEndpoint, MqttEndpoint, StackInfo
from commons.procs import ProcessRef, free_port, port_open
from commons.tlsgen import ensure_tls, write_private

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


class MissingPluginError(MissingBinaryError):
    """Mosquitto's dynamic-security plugin is not where Debian's package puts it."""

    def __init__(self, searched: list[str]) -> None:
        Exception.__init__(
            self,
            f"Mosquitto's dynamic-security plugin ({DYNSEC_PLUGIN}) is not installed "
            f"(searched {', '.join(searched) or 'nothing'}): run "
            "'sudo apt-get install -y mosquitto' (Debian's mosquitto package ships it)",
        )
        self.binary = DYNSEC_PLUGIN
        self.package = MOSQUITTO.package
        self.searched = searched


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


# Where Debian's mosquitto package installs the plugin (multiarch), then other usual places.
# $COMMONS_PLUGIN_PATH replaces this list of folders.
DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
PLUGIN_PATH = "/usr/lib/*-linux-*:/usr/lib:/usr/local/lib:/usr/lib/mosquitto"
PLUGIN_PATH_ENV = "COMMONS_PLUGIN_PATH"

SECRETS_DIR = "secrets"
ADMIN_USER = "commons-admin"
DYNSEC_FILE = "dynamic-security.json"


def find_dynsec_plugin() -> Path:
    """Absolute path of Mosquitto's dynamic-security plugin."""
    searched = []
    for pattern in os.environ.get(PLUGIN_PATH_ENV, PLUGIN_PATH).split(os.pathsep):
        if not pattern:
            continue
        for folder in sorted(glob.glob(pattern)) or [pattern]:
            searched.append(folder)
            candidate = Path(folder) / DYNSEC_PLUGIN
            if candidate.is_file():
                return candidate
    raise MissingPluginError(searched)


def find_binary(service: Service) -> str:
    """Absolute path of the service's binary, from PATH or else from the sbin folders."""
    path = shutil.which(service.binary) or shutil.which(
        service.binary, path=os.environ.get(SBIN_PATH_ENV, SBIN_PATH)
    )
    if path is None:
        raise MissingBinaryError(service.binary, service.package)
    return path


@dataclass(frozen=True)
class Listener:
    """A port the broker listens on, plain or TLS."""

    host: str
    port: int
    tls: bool


def mosquitto_config_text(
    home: Path, plugin: Path, listeners: list[Listener], log_file: Path, writer: str
) -> str:
    """Mosquitto's configuration for a broker whose data, access state and TLS files live
    under ``home`` (``mosquitto/``, ``tls/``): no anonymous clients, dynamic security,
    persistent sessions with deep queues for the gateway."""
    root = home / "mosquitto"
    (root / "data").mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)  # the plugin's state holds password hashes
    tls = home / "tls"
    lines = [
        f"# Generated by '{writer}'; edits are overwritten.",
        "per_listener_settings false",
        # Started as root, mosquitto switches to the 'mosquitto' user, which cannot
        # write its log or persistence under this home: stay the user who owns it.
        *(["user root"] if os.geteuid() == 0 else []),
        "allow_anonymous false",
        f"plugin {plugin}",
        f"plugin_opt_config_file {root / DYNSEC_FILE}",
        "persistence true",
        f"persistence_location {root / 'data'}/",
        "autosave_interval 30",
        f"max_queued_messages {MOSQUITTO_MAX_QUEUED}",
        "max_queued_bytes 0",
        f"max_inflight_messages {MOSQUITTO_MAX_INFLIGHT}",
        f"message_size_limit {MOSQUITTO_MESSAGE_LIMIT}",
        f"log_dest file {log_file}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
    ]
    for listener in listeners:
        lines.append(f"listener {listener.port} {listener.host}")
        if listener.tls:
            lines += [
                f"cafile {tls / 'ca.pem'}",
                f"certfile {tls / 'server.pem'}",
                f"keyfile {tls / 'server.key'}",
                "tls_version tlsv1.2",
            ]
    return "\n".join([*lines, ""])


def configure_access(
    host: str, port: int, admin: Credentials, gateway: Credentials, home: Path
) -> None:
    """Roles and the gateway's client, through the control API (idempotent)."""
    try:
        with Dynsec(host, port, admin) as dynsec:
            access.ensure_shared_roles(dynsec)
            if dynsec.get_client(gateway.username) is None:
                access.add_gateway(dynsec, gateway.username, gateway.password)
    except (BrokerUnreachableError, DynsecError) as exc:
        raise ServiceStartError(
            MOSQUITTO.name,
            home / "mosquitto" / "mosquitto.log",
            f"its access control could not be set up as {admin.username}: {exc}",
        ) from None


class Stack:
    """The local services under one ``$COMMONS_HOME``."""

    def __init__(self, home: Path) -> None:
        self.home = home

    # -- persisted state --------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.home / STATE_FILE

    def _load_state(self) -> dict[str, dict[str, Any]]:
        try:
            state: dict[str, dict[str, Any]] = json.loads(self._state_path().read_text())
        except FileNotFoundError:
            return {}
        return state

    def _save_state(self, state: dict[str, dict[str, Any]]) -> None:
        self._atomic_write(self._state_path(), json.dumps(state, indent=2))

    @staticmethod
    def _atomic_write(path: Path, text: str) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)

    def _ports(self, state: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Ports chosen the first time and kept thereafter."""
        ports = {}
        for key, names in (("mosquitto", ("port", "tls")), ("influxdb", ("http", "rpc"))):
            entry = dict(state.get(key, {}))
            for name in names:
                if name not in entry:
                    entry[name] = free_port(HOST)
            ports[key] = entry
        return ports

    def info(self) -> StackInfo:
        state = self._load_state()
        mosquitto = state["mosquitto"]
        secrets = self.home / SECRETS_DIR
        gateway = state.get("access", {}).get("gateway")
        return StackInfo(
            home=self.home,
            mqtt=MqttEndpoint(
                host=HOST,
                port=mosquitto["port"],
                tls_port=mosquitto.get("tls"),
                ca_file=self.home / "tls" / "ca.pem" if "tls" in mosquitto else None,
                admin=Account(ADMIN_USER, secrets / "mqtt-admin.password"),
                gateway=(Account(gateway, secrets / "mqtt-gateway.password") if gateway else None),
            ),
            influx=InfluxEndpoint(
                url=f"http://{HOST}:{state['influxdb']['http']}", database=DATABASE
            ),
        )

    def _process(self, state: dict[str, dict[str, Any]], service: Service) -> ProcessRef | None:
        entry = state.get(service.name, {})
        if "pid" not in entry:
            return None
        ref = ProcessRef(pid=entry["pid"], started=entry["started"])
        return ref if ref.alive() else None

    # -- configuration ----------------------------------------------------------------

    def _mosquitto_config(self, port: int, tls_port: int, plugin: Path) -> tuple[Path, bool]:
        """Write the broker's configuration; return it and whether it changed."""
        root = self.home / "mosquitto"
        conf = root / "mosquitto.conf"
        text = mosquitto_config_text(
            self.home,
            plugin,
            [Listener(HOST, port, tls=False), Listener(HOST, tls_port, tls=True)],
            root / "mosquitto.log",
            "commons stack up",
        )
        changed = not conf.exists() or conf.read_text() != text
        if changed:
            conf.write_text(text)
        return conf, changed

    def accounts(self) -> tuple[Credentials, Credentials]:
        """The admin's and the gateway's MQTT credentials (generated on first use)."""
        self.home.mkdir(parents=True, exist_ok=True)
        state = self._load_state()
        admin, gateway = self._secrets(state)
        self._save_state(state)
        return admin, gateway

    def _secrets(self, state: dict[str, dict[str, Any]]) -> tuple[Credentials, Credentials]:
        """The admin's and the local gateway's credentials, generated once, files 0600."""
        folder = self.home / SECRETS_DIR
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o700)
        entry = state.setdefault("access", {})
        entry.setdefault("gateway", access.default_gateway_id())
        out = []
        for name, username in (("admin", ADMIN_USER), ("gateway", entry["gateway"])):
            path = folder / f"mqtt-{name}.password"
            if not path.exists():
                write_private(path, (Credentials.generate(username).password + "\n").encode())
            out.append(Credentials(username, path.read_text().strip()))
        return out[0], out[1]

    def _configure_access(self, info: StackInfo, gateway: Credentials) -> None:
        assert info.mqtt.admin is not None
        admin = Credentials(info.mqtt.admin.username, info.mqtt.admin.password())
        configure_access(info.mqtt.host, info.mqtt.port, admin, gateway, self.home)

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
        plugin = find_dynsec_plugin()
        self.home.mkdir(parents=True, exist_ok=True)
        state = self._load_state()
        ports = self._ports(state)
        admin, gateway = self._secrets(state)
        self._save_state(state)
        ensure_tls(self.home / "tls")
        write_initial_config(self.home / "mosquitto" / DYNSEC_FILE, admin)
        for service in SERVICES:
            entry = ports[service.name]
            running = self._process(state, service)
            if service is MOSQUITTO:
                conf, changed = self._mosquitto_config(entry["port"], entry["tls"], plugin)
                if running is not None and changed:
                    running.stop()  # an older configuration: restart with this one
                    running = None
            if running is not None:
                continue
            if service is MOSQUITTO:
                argv = [binaries["mosquitto"], "-c", str(conf)]
                log = self.home / "mosquitto" / "stdout.log"
                busy = [entry["port"], entry["tls"]]
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
        self._configure_access(info, gateway)
        return info

    def _wait_ready(self, state: dict[str, dict[str, Any]], info: StackInfo) -> None:
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
            ports = [info.mqtt.port] + ([info.mqtt.tls_port] if info.mqtt.tls_port else [])
            return all(port_open(info.mqtt.host, port) for port in ports)
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
