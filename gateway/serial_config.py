"""``[[serial]]`` tables of the gateway TOML: PM sensors on the gateway's own serial ports.

::

    [[serial]]
    port = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"   # stable across replugging
    sensor = "sds011"          # or "pms5003"
    node = "gw-riverside-pm"   # the node id its readings are stored under
    interval = 60              # seconds per reading (trimmed mean of the 1 Hz frames)
    warmup = 15                # seconds after (re)connecting whose frames are flagged warmup
    baudrate = 9600
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commons.contract import GATEWAY_SEGMENT, NODE_ID_PATTERN
from commons.settings import ConfigError, Section
from gateway.serial_frames import SensorModel

SERIAL_KEYS = {"port", "sensor", "node", "interval", "warmup", "baudrate"}

# Seconds a sensor needs after power-up before its values are stable: the node firmware's
# warm-up (REFERENCE §8.1: SDS011 15 s; §5.2/§8.2: PMS5003 at least 30 s).
DEFAULT_WARMUP_S = {SensorModel.SDS011: 15.0, SensorModel.PMS5003: 30.0}
DEFAULT_INTERVAL_S = 60
DEFAULT_BAUDRATE = 9600  # both sensors: 9600 8N1


@dataclass(frozen=True)
class SerialSensorSettings:
    port: Path
    sensor: SensorModel
    node: str
    interval: int
    warmup: float
    baudrate: int


def parse_serial(tables: Any, path: Path | None) -> tuple[SerialSensorSettings, ...]:
    """The ``[[serial]]`` array of tables; errors name the file and ``serial[i].key``."""
    if not isinstance(tables, list):
        raise ConfigError(path, "serial", "expected an array of tables ([[serial]])")
    sensors: list[SerialSensorSettings] = []
    for index, table in enumerate(tables):
        where = f"serial[{index}]"
        if not isinstance(table, dict):
            raise ConfigError(path, where, "expected a table")
        for name in table:
            if name not in SERIAL_KEYS:
                raise ConfigError(path, f"{where}.{name}", "unknown key")
        for name in ("port", "sensor", "node"):
            if name not in table:
                raise ConfigError(path, f"{where}.{name}", "missing")
        section = Section(table, path, where)
        port = section.get("port", str, "")
        if not port:
            raise ConfigError(path, f"{where}.port", "must name a serial device")
        sensor_name = section.get("sensor", str, "")
        try:
            sensor = SensorModel(sensor_name)
        except ValueError:
            names = ", ".join(m.value for m in SensorModel)
            raise ConfigError(
                path, f"{where}.sensor", f"{sensor_name!r} is not one of {names}"
            ) from None
        node = section.get("node", str, "")
        if node == GATEWAY_SEGMENT or not NODE_ID_PATTERN.match(node):
            raise ConfigError(path, f"{where}.node", f"{node!r} is not a node id [a-z0-9-]{{3,32}}")
        warmup = section.get("warmup", float, DEFAULT_WARMUP_S[sensor])
        if warmup < 0:
            raise ConfigError(path, f"{where}.warmup", f"must not be negative, got {warmup!r}")
        settings = SerialSensorSettings(
            port=Path(port).expanduser(),
            sensor=sensor,
            node=node,
            interval=section.positive("interval", int, DEFAULT_INTERVAL_S),
            warmup=warmup,
            baudrate=section.positive("baudrate", int, DEFAULT_BAUDRATE),
        )
        for other in sensors:
            if other.node == settings.node:
                raise ConfigError(path, f"{where}.node", f"{node!r} is already used by a sensor")
            if other.port == settings.port:
                raise ConfigError(path, f"{where}.port", f"{port!r} is already used by a sensor")
        sensors.append(settings)
    return tuple(sensors)
