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
class MqttEndpoint:
    host: str
    port: int


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
            "mqtt": {"host": self.mqtt.host, "port": self.mqtt.port},
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
        mqtt=MqttEndpoint(host=str(raw["mqtt"]["host"]), port=int(raw["mqtt"]["port"])),
        influx=InfluxEndpoint(
            url=str(raw["influx"]["url"]), database=str(raw["influx"]["database"])
        ),
    )
