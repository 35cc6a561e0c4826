"""``commons broker run``: the gateway's MQTT broker as a system service (Raspberry Pi).

The same Mosquitto configuration as the local stack's (no anonymous clients, a login and a
role per node through the dynamic-security plugin, persistent sessions with deep queues,
a TLS listener), but on the ports and address of ``broker.toml`` and in the foreground, so
systemd supervises it. It describes itself in ``$COMMONS_HOME/stack.json`` (with the admin's
and the gateway's accounts), so ``commons node add`` and the gateway find it with no flags.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from commons.dynsec import write_initial_config
from commons.home import STACK_FILE, Account, InfluxEndpoint, MqttEndpoint, StackInfo
from commons.procs import port_open
from commons.settings import ConfigError, Section, load_toml
from commons.stack import (
    ADMIN_USER,
    DATABASE,
    DYNSEC_FILE,
    MOSQUITTO,
    SECRETS_DIR,
    START_TIMEOUT_S,
    Listener,
    ServiceStartError,
    Stack,
    configure_access,
    find_binary,
    find_dynsec_plugin,
    mosquitto_config_text,
)
from commons.tlsgen import ensure_tls

KNOWN_KEYS = {"broker": {"bind", "port", "tls_port", "tls_hosts", "log"}}
LOCAL = "127.0.0.1"
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class BrokerSettings:
    bind: str = "0.0.0.0"
    port: int = 1883
    tls_port: int | None = 8883
    tls_hosts: tuple[str, ...] = field(default_factory=tuple)
    log: Path | None = None

    @classmethod
    def load(cls, path: Path | None) -> BrokerSettings:
        data = load_toml(path) if path is not None else {}
        root = Section(data, path, "")
        root.check_keys(KNOWN_KEYS)
        section = root.section("broker")
        port = section.positive("port", int, 1883)
        tls_port = section.get("tls_port", int, 8883)
        hosts = section.get("tls_hosts", list, [])
        if not all(isinstance(h, str) for h in hosts):
            raise ConfigError(path, "broker.tls_hosts", "expected a list of names and addresses")
        log = section.get("log", str, "")
        settings = cls(
            bind=section.get("bind", str, "0.0.0.0"),
            port=port,
            tls_port=tls_port or None,
            tls_hosts=tuple(hosts),
            log=Path(log) if log else None,
        )
        for key, value in (("broker.port", port), ("broker.tls_port", tls_port)):
            if not 0 <= value < 65536:
                raise ConfigError(path, key, f"{value} is not a TCP port")
        if settings.tls_port == port:
            raise ConfigError(path, "broker.tls_port", "must differ from broker.port")
        return settings


def prepare(settings: BrokerSettings, home: Path) -> tuple[Path, StackInfo]:
    """Accounts, TLS material, access state, configuration and ``stack.json``."""
    plugin = find_dynsec_plugin()
    admin, gateway = Stack(home).accounts()
    ensure_tls(home / "tls", list(settings.tls_hosts) or None)
    write_initial_config(home / "mosquitto" / DYNSEC_FILE, admin)
    listeners = [Listener(settings.bind, settings.port, tls=False)]
    if settings.tls_port:
        listeners.append(Listener(settings.bind, settings.tls_port, tls=True))
    log = settings.log or home / "mosquitto" / "mosquitto.log"
    conf = home / "mosquitto" / "mosquitto.conf"
    conf.write_text(mosquitto_config_text(home, plugin, listeners, log, "commons broker run"))
    secrets = home / SECRETS_DIR
    info = StackInfo(
        home=home,
        mqtt=MqttEndpoint(
            # How commands on this machine reach it.
            host=LOCAL if settings.bind in WILDCARDS else settings.bind,
            port=settings.port,
            tls_port=settings.tls_port,
            ca_file=home / "tls" / "ca.pem" if settings.tls_port else None,
            admin=Account(ADMIN_USER, secrets / "mqtt-admin.password"),
            gateway=Account(gateway.username, secrets / "mqtt-gateway.password"),
        ),
        # The community's InfluxDB is not on the gateway: the gateway's TOML names it.
        influx=InfluxEndpoint(url="", database=DATABASE),
    )
    (home / STACK_FILE).write_text(json.dumps(info.to_json(), indent=2) + "\n")
    return conf, info


def run(settings: BrokerSettings, home: Path) -> int:
    """Run Mosquitto in the foreground until it exits; return its exit status."""
    binary = find_binary(MOSQUITTO)
    conf, info = prepare(settings, home)
    admin, gateway = Stack(home).accounts()
    proc = subprocess.Popen([binary, "-c", str(conf)])

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    log = home / "mosquitto" / "mosquitto.log"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_open(info.mqtt.host, info.mqtt.port):
        if proc.poll() is not None:
            raise ServiceStartError(MOSQUITTO.name, log, "the process exited")
        if time.monotonic() > deadline:
            proc.terminate()
            proc.wait(30)
            raise ServiceStartError(MOSQUITTO.name, log, "no answer")
        time.sleep(0.05)
    configure_access(info.mqtt.host, info.mqtt.port, admin, gateway, home)
    return proc.wait()
