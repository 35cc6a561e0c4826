"""``[[serial]]`` tables of the gateway TOML: PM sensors and nodes on the gateway's serial ports.

::

    [[serial]]
    port = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"   # stable across replugging
    sensor = "sds011"          # or "pms5003"
    node = "gw-riverside-pm"   # the node id its readings are stored under
    interval = 60              # seconds per reading (trimmed mean of the 1 Hz frames)
    warmup = 15                # seconds after (re)connecting whose frames are flagged warmup
    baudrate = 9600

    [[serial]]                 # a Sensor Commons node in USB-serial mode ("uplink": "serial")
    port = "/dev/serial/by-id/usb-Silicon_Labs_CP2102_USB_to_UART-if00-port0"
    sensor = "node"
    node = "esp32-a1b2c3"      # the only node id the port accepts messages for
    baudrate = 115200          # the ESP32 console's
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
NODE_DEVICE = "node"  # ``sensor`` value of a node in USB-serial mode (gateway/serial_nodes.py)
NODE_BAUDRATE = 115200  # MicroPython's console on the ESP32
NODE_KEYS = {"port", "sensor", "node", "baudrate"}


@dataclass(frozen=True)
class SerialSensorSettings:
    port: Path
    sensor: SensorModel
    node: str
    interval: int
    warmup: float
    baudrate: int


@dataclass(frozen=True)
class SerialNodeSettings:
    port: Path
    node: str
    baudrate: int


SerialSettings = SerialSensorSettings | SerialNodeSettings


def parse_serial(tables: Any, path: Path | None) -> tuple[SerialSettings, ...]:
    """The ``[[serial]]`` array of tables; errors name the file and ``serial[i].key``."""
    if not isinstance(tables, list):
        raise ConfigError(path, "serial", "expected an array of tables ([[serial]])")
    sensors: list[SerialSettings] = []
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
        if sensor_name == NODE_DEVICE:
            _add(sensors, _node_settings(table, section, path, where), path, where)
            continue
        try:
            sensor = SensorModel(sensor_name)
        except ValueError:
            names = ", ".join(m.value for m in SensorModel)
            raise ConfigError(
                path, f"{where}.sensor", f"{sensor_name!r} is not one of {names}"
            ) from None
        node = _node_id(section, path, where)
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
        _add(sensors, settings, path, where)
    return tuple(sensors)


def _node_id(section: Section, path: Path | None, where: str) -> str:
    node = section.get("node", str, "")
    if node == GATEWAY_SEGMENT or not NODE_ID_PATTERN.match(node):
        raise ConfigError(path, f"{where}.node", f"{node!r} is not a node id [a-z0-9-]{{3,32}}")
    return node


def _node_settings(
    table: dict[str, Any], section: Section, path: Path | None, where: str
) -> SerialNodeSettings:
    for name in table:
        if name not in NODE_KEYS:
            raise ConfigError(path, f"{where}.{name}", f"not used for sensor = {NODE_DEVICE!r}")
    return SerialNodeSettings(
        port=Path(section.get("port", str, "")).expanduser(),
        node=_node_id(section, path, where),
        baudrate=section.positive("baudrate", int, NODE_BAUDRATE),
    )


def _add(
    sensors: list[SerialSettings], settings: SerialSettings, path: Path | None, where: str
) -> None:
    for other in sensors:
        if other.node == settings.node:
            raise ConfigError(
                path, f"{where}.node", f"{settings.node!r} is already used by a sensor"
            )
        if other.port == settings.port:
            raise ConfigError(
                path, f"{where}.port", f"{str(settings.port)!r} is already used by a sensor"
            )
    sensors.append(settings)
