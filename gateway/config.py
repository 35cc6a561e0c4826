"""Gateway settings: a TOML file (optional), defaults from the local stack, secrets from env."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from commons.home import Account, StackNotFoundError, commons_home, load_stack
from commons.settings import ConfigError, Section, load_toml
from gateway.serial_config import SERIAL_KEYS, SerialSettings, parse_serial

KNOWN_KEYS = {
    "gateway": {
        "id",
        "data_dir",
        "registry",
        "status_interval",
        "queue_max_bytes",
        "node_rate",
        "node_burst",
    },
    "mqtt": {
        "host",
        "port",
        "client_id",
        "username",
        "password",
        "password_file",
        "keepalive",
        "tls_ca",
    },
    "influx": {
        "url",
        "database",
        "username",
        "password",
        "password_file",
        "batch_size",
        "timeout",
        "recompute_late_hours",
    },
    "serial": SERIAL_KEYS,  # [[serial]]: an array of tables, see gateway/serial_config.py
}


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int
    client_id: str
    username: str | None
    password: str | None
    keepalive: int
    # TLS to the broker, verified against this CA certificate (PEM); None: plain MQTT.
    tls_ca: Path | None = None


@dataclass(frozen=True)
class InfluxSettings:
    url: str
    database: str
    username: str | None
    password: str | None
    batch_size: int
    timeout: float
    # Re-aggregate the hourly data of hours that late points touched (needs read access).
    recompute_late_hours: bool


@dataclass(frozen=True)
class GatewaySettings:
    gateway_id: str
    queue_path: Path
    registry_path: Path
    status_interval: float
    queue_max_bytes: int | None
    # Per-node token bucket: sustained messages/s and burst (a replaying node is bursty).
    node_rate: float
    node_burst: float
    mqtt: MqttSettings
    influx: InfluxSettings
    source: Path | None
    serial: tuple[SerialSettings, ...] = ()

    @classmethod
    def load(cls, path: Path | None = None) -> GatewaySettings:
        """Read ``path`` (if given); what it leaves out comes from ``$COMMONS_HOME``'s stack."""
        data = load_toml(path) if path is not None else {}
        serial_tables = data.pop("serial", [])
        root = Section(data, path, "")
        root.check_keys(KNOWN_KEYS)
        home = commons_home()
        gw = root.section("gateway")
        mq = root.section("mqtt")
        ix = root.section("influx")

        def stack_default() -> tuple[str, int, str, str, Account | None]:
            try:
                info = load_stack(home)
            except StackNotFoundError as exc:
                raise ConfigError(
                    path, "mqtt.host", f"not set, and no local stack to default to ({exc})"
                ) from None
            return (
                info.mqtt.host,
                info.mqtt.port,
                info.influx.url,
                info.influx.database,
                info.mqtt.gateway,
            )

        needs_stack = any(
            key not in section_data
            for section_data, key in (
                (data.get("mqtt", {}), "host"),
                (data.get("mqtt", {}), "port"),
                (data.get("influx", {}), "url"),
            )
        )
        host, port, url, database, account = (
            stack_default() if needs_stack else ("", 0, "", "commons", None)
        )
        # The local stack's gateway user, unless the file names a broker of its own.
        if "host" in data.get("mqtt", {}) or "username" in data.get("mqtt", {}):
            account = None

        gateway_id = gw.get("id", str, account.username if account else _default_gateway_id())
        data_dir = Path(gw.get("data_dir", str, str(home / "gateway"))).expanduser()
        registry = Path(gw.get("registry", str, str(home / "registry.sqlite"))).expanduser()
        status_interval = gw.positive("status_interval", float, 10.0)
        max_bytes = gw.get("queue_max_bytes", int, 0) or None
        node_rate = gw.positive("node_rate", float, 100.0)
        node_burst = gw.positive("node_burst", float, 2000.0)
        mqtt = MqttSettings(
            host=mq.get("host", str, host),
            port=mq.positive("port", int, port),
            client_id=mq.get("client_id", str, f"commons-gateway-{gateway_id}"),
            username=mq.get("username", str, account.username if account else "") or None,
            password=_stack_password(mq.secret("password", "COMMONS_MQTT_PASSWORD"), account),
            keepalive=mq.positive("keepalive", int, 30),
            tls_ca=_optional_path(mq.get("tls_ca", str, "")),
        )
        influx_url = ix.get("url", str, url)
        if not influx_url:
            raise ConfigError(path, "influx.url", "not set, and no InfluxDB in the local stack")
        influx = InfluxSettings(
            url=influx_url,
            database=ix.get("database", str, database),
            username=ix.get("username", str, "") or None,
            password=ix.secret("password", "COMMONS_INFLUX_PASSWORD"),
            batch_size=ix.positive("batch_size", int, 5000),
            timeout=ix.positive("timeout", float, 30.0),
            recompute_late_hours=ix.get("recompute_late_hours", bool, True),
        )
        for section in (gw, mq, ix, root):
            section.check_unknown()
        if not 0 < mqtt.port < 65536:
            raise ConfigError(path, "mqtt.port", f"{mqtt.port} is not a TCP port")
        return cls(
            gateway_id=gateway_id,
            queue_path=data_dir / "queue.sqlite",
            registry_path=registry,
            status_interval=status_interval,
            queue_max_bytes=max_bytes,
            node_rate=node_rate,
            node_burst=node_burst,
            mqtt=mqtt,
            influx=influx,
            source=path,
            serial=parse_serial(serial_tables, path),
        )


def _stack_password(configured: str | None, account: Account | None) -> str | None:
    if configured is not None or account is None:
        return configured
    try:
        return account.password()
    except OSError as exc:
        raise ConfigError(
            None, "mqtt.password", f"the local stack's {account.password_file}: {exc}"
        ) from None


def _optional_path(value: str) -> Path | None:
    return Path(value).expanduser() if value else None


def _default_gateway_id() -> str:
    name = "".join(c if c.isalnum() else "-" for c in socket.gethostname().lower())
    return (name.strip("-") or "gateway")[:32]
