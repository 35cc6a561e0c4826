"""Where the local stack lives: ``$COMMONS_HOME`` and its ``stack.json``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".commons"
STACK_FILE = "stack.json"


class StackNotFoundError(Exception):
    """No ``stack.json`` under ``$COMMONS_HOME``: the local stack was never started there."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no local stack described at {path}: run 'commons stack up' first")
        self.path = path


def commons_home() -> Path:
    """The folder that holds the local stack: ``$COMMONS_HOME`` or ``./.commons``."""
    return Path(os.environ.get("COMMONS_HOME", DEFAULT_HOME)).expanduser().resolve()


@dataclass(frozen=True)
class Account:
    """An MQTT username and the file (mode 0600) that holds its password."""

    username: str
    password_file: Path

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def to_json(self) -> dict[str, str]:
        return {"username": self.username, "password_file": str(self.password_file)}

    @classmethod
    def from_json(cls, raw: object) -> Account | None:
        if not isinstance(raw, dict):
            return None
        return cls(str(raw["username"]), Path(raw["password_file"]))


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    # The TLS listener and the CA that signed its certificate (None: no TLS listener).
    tls_port: int | None = None
    ca_file: Path | None = None
    # The access administrator (dynamic-security control API) and the local gateway's user.
    admin: Account | None = None
    gateway: Account | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"host": self.host, "port": self.port}
        if self.tls_port is not None:
            out["tls_port"] = self.tls_port
        if self.ca_file is not None:
            out["ca_file"] = str(self.ca_file)
        if self.admin is not None:
            out["admin"] = self.admin.to_json()
        if self.gateway is not None:
            out["gateway"] = self.gateway.to_json()
        return out

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> MqttEndpoint:
        tls_port = raw.get("tls_port")
        ca_file = raw.get("ca_file")
        return cls(
            host=str(raw["host"]),
            port=int(str(raw["port"])),
            tls_port=int(str(tls_port)) if tls_port is not None else None,
            ca_file=Path(str(ca_file)) if ca_file is not None else None,
            admin=Account.from_json(raw.get("admin")),
            gateway=Account.from_json(raw.get("gateway")),
        )


@dataclass(frozen=True)
class InfluxEndpoint:
    url: str
    database: str


@dataclass(frozen=True)
class StackInfo:
    """What ``stack.json`` says about the running local services."""

    home: Path
    mqtt: MqttEndpoint
    influx: InfluxEndpoint

    def to_json(self) -> dict[str, object]:
        return {
            "mqtt": self.mqtt.to_json(),
            "influx": {"url": self.influx.url, "database": self.influx.database},
        }


def load_stack(home: Path | None = None) -> StackInfo:
    """Read ``stack.json`` from ``home`` (default ``$COMMONS_HOME``)."""
    home = home or commons_home()
    path = home / STACK_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise StackNotFoundError(path) from exc
    return StackInfo(
        home=home,
        mqtt=MqttEndpoint.from_json(raw["mqtt"]),
        influx=InfluxEndpoint(
            url=str(raw["influx"]["url"]), database=str(raw["influx"]["database"])
        ),
    )
