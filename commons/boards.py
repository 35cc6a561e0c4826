"""Board descriptions (``hardware/<kind>/board.toml``): which part sits on which ESP32 pin.

A board file is checked once, when it is loaded, against the pin rules of the ESP32-WROOM
(REFERENCE §8.6): a bad choice raises :class:`BoardError` naming the key (``uart.pm.rx``), the
pin and why. The checked :class:`Board` gives the firmware's ``config.json`` pin sections, the
simulator's wiring and the wiring diagram (``commons.wiring``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commons.micropython import REPO

HARDWARE_DIR = REPO / "hardware"

# ESP32-WROOM-32 GPIO numbers that exist on the module's pads.
VALID_PINS = frozenset((*range(0, 6), *range(6, 12), *range(12, 20), 21, 22, 23, 25, 26, 27,
                        *range(32, 40)))  # fmt: skip
FLASH_PINS = frozenset(range(6, 12))  # wired to the SPI flash
INPUT_ONLY = frozenset(range(34, 40))  # no output driver, no internal pulls
STRAPPING = frozenset((0, 2, 5, 12, 15))  # sampled at reset
UART0_PINS = frozenset((1, 3))  # the REPL and flashing
ADC2_PINS = frozenset((0, 2, 4, 12, 13, 14, 15, 25, 26, 27))  # unusable with Wi-Fi on
PSRAM_PINS = frozenset((16, 17))  # used by the PSRAM of WROVER modules
UART_SENSORS = ("sds011", "pms5003")
I2C_SENSORS = ("bme280",)
I2S_SENSORS = ("inmp441",)
# The INMP441's L/R pin: to GND it talks in the left (WS low) slot, to 3V3 in the right one
# (REFERENCE §8.5); floating, its readings fluctuate.
I2S_LR = ("gnd", "3v3")
I2C_ADDRESSES = {"bme280": (0x76, 0x77)}


class BoardError(Exception):
    """``key`` of the board file has a value that would break the node."""

    def __init__(self, source: str, key: str, reason: str, pin: int | None = None) -> None:
        where = f"{source}: {key}"
        super().__init__(
            f"{where}: GPIO{pin} {reason}" if pin is not None else f"{where}: {reason}"
        )
        self.source = source
        self.key = key
        self.reason = reason
        self.pin = pin


@dataclass(frozen=True)
class UartPart:
    name: str
    bus: int
    sensor: str
    tx: int
    rx: int
    baudrate: int
    supply: str


@dataclass(frozen=True)
class I2cDevice:
    sensor: str
    address: int


@dataclass(frozen=True)
class I2cBus:
    name: str
    bus: int
    scl: int
    sda: int
    freq: int
    supply: str
    devices: tuple[I2cDevice, ...]


@dataclass(frozen=True)
class I2sPart:
    """A microphone on an I2S bus: the ESP32 drives SCK and WS, the microphone drives SD."""

    name: str
    bus: int
    sensor: str
    sck: int
    ws: int
    sd: int
    lr: str  # where its L/R pin is tied: "gnd" (left slot) or "3v3" (right slot)
    supply: str

    @property
    def slot(self) -> str:
        return "left" if self.lr == "gnd" else "right"


@dataclass(frozen=True)
class GpioPart:
    name: str
    pin: int
    mode: str  # "out", "in" or "adc"


@dataclass(frozen=True)
class Board:
    name: str
    module: str
    wifi: bool
    uarts: tuple[UartPart, ...] = ()
    i2c: tuple[I2cBus, ...] = ()
    gpio: tuple[GpioPart, ...] = ()
    source: str = field(default="board.toml", compare=False)
    i2s: tuple[I2sPart, ...] = ()

    def uart(self, name: str) -> UartPart | None:
        return next((u for u in self.uarts if u.name == name), None)

    def microphone(self) -> I2sPart | None:
        return self.i2s[0] if self.i2s else None

    def i2c_device(self, sensor: str) -> tuple[I2cBus, I2cDevice] | None:
        for bus in self.i2c:
            for device in bus.devices:
                if device.sensor == sensor:
                    return bus, device
        return None


class _Checker:
    """Collects every pin use, then applies the ESP32 rules to each."""

    def __init__(self, source: str, module: str, wifi: bool) -> None:
        self.source = source
        self.wrover = "WROVER" in module.upper()
        self.wifi = wifi
        self.used: dict[int, str] = {}

    def fail(self, key: str, reason: str, pin: int | None = None) -> BoardError:
        return BoardError(self.source, key, reason, pin)

    def pin(self, key: str, value: Any, *, output: bool, driven: bool, analog: bool = False) -> int:
        """``output``: the ESP32 drives it; ``driven``: something pulls or drives it at reset."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected a GPIO number, got {value!r}")
        if value not in VALID_PINS:
            raise self.fail(key, "does not exist on an ESP32-WROOM", value)
        if value in FLASH_PINS:
            raise self.fail(key, "is wired to the SPI flash (GPIO6-11): never use", value)
        if value in UART0_PINS:
            raise self.fail(key, "is UART0 (REPL and flashing): keep it free", value)
        if output and value in INPUT_ONLY:
            raise self.fail(key, "is input only (GPIO34-39) and cannot drive an output", value)
        if driven and value in STRAPPING:
            raise self.fail(
                key,
                "is a strapping pin (GPIO0, 2, 5, 12, 15): a sensor or pull-up on it changes "
                "how the ESP32 boots (GPIO12 high selects 1.8 V flash)",
                value,
            )
        if analog and self.wifi and value in ADC2_PINS:
            raise self.fail(key, "is on ADC2, which cannot be read while Wi-Fi is on", value)
        if self.wrover and value in PSRAM_PINS:
            raise self.fail(key, "is used by the PSRAM of WROVER modules", value)
        if value in self.used:
            raise self.fail(key, f"is already used by {self.used[value]}", value)
        self.used[value] = key
        return value


def _table(raw: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise BoardError(source, key, "expected a table")
    return value


def _int(section: dict[str, Any], key: str, path: str, source: str, default: int | None) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BoardError(source, path, f"expected an integer, got {value!r}")
    return value


def _choice(
    section: dict[str, Any], key: str, path: str, source: str, allowed: tuple[str, ...]
) -> str:
    value = section.get(key)
    if value not in allowed:
        raise BoardError(source, path, f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)


def parse_board(raw: dict[str, Any], source: str = "board.toml") -> Board:
    """A checked :class:`Board` from a parsed board file."""
    head = _table(raw, "board", source)
    name = str(head.get("name", "board"))
    module = str(head.get("module", "ESP32-WROOM-32"))
    wifi = bool(head.get("wifi", True))
    check = _Checker(source, module, wifi)
    uarts = []
    for part, section in _table(raw, "uart", source).items():
        path = f"uart.{part}"
        bus = _int(section, "bus", f"{path}.bus", source, None)
        if bus not in (1, 2):
            raise BoardError(source, f"{path}.bus", f"UART{bus}: use 1 or 2 (UART0 is the REPL)")
        uarts.append(
            UartPart(
                name=part,
                bus=bus,
                sensor=_choice(section, "sensor", f"{path}.sensor", source, UART_SENSORS),
                tx=check.pin(f"{path}.tx", section.get("tx"), output=True, driven=False),
                rx=check.pin(f"{path}.rx", section.get("rx"), output=False, driven=True),
                baudrate=_int(section, "baudrate", f"{path}.baudrate", source, 9600),
                supply=str(section.get("supply", "5V")),
            )
        )
    buses = []
    for part, section in _table(raw, "i2c", source).items():
        path = f"i2c.{part}"
        devices = []
        for i, dev in enumerate(section.get("devices", [])):
            dpath = f"{path}.devices[{i}]"
            sensor = _choice(dev, "sensor", f"{dpath}.sensor", source, I2C_SENSORS)
            address = _int(dev, "address", f"{dpath}.address", source, None)
            if address not in I2C_ADDRESSES[sensor]:
                raise BoardError(
                    source, f"{dpath}.address", f"{address:#04x} is not a {sensor} address"
                )
            devices.append(I2cDevice(sensor, address))
        # SCL and SDA are open drain with pull-ups: driven at reset, and outputs.
        buses.append(
            I2cBus(
                name=part,
                bus=_int(section, "bus", f"{path}.bus", source, 0),
                scl=check.pin(f"{path}.scl", section.get("scl"), output=True, driven=True),
                sda=check.pin(f"{path}.sda", section.get("sda"), output=True, driven=True),
                freq=_int(section, "freq", f"{path}.freq", source, 100000),
                supply=str(section.get("supply", "3V3")),
                devices=tuple(devices),
            )
        )
    mics = []
    for part, section in _table(raw, "i2s", source).items():
        path = f"i2s.{part}"
        bus = _int(section, "bus", f"{path}.bus", source, 0)
        if bus not in (0, 1):
            raise BoardError(source, f"{path}.bus", f"I2S{bus}: the ESP32 has I2S0 and I2S1")
        mics.append(
            I2sPart(
                name=part,
                bus=bus,
                sensor=_choice(section, "sensor", f"{path}.sensor", source, I2S_SENSORS),
                sck=check.pin(f"{path}.sck", section.get("sck"), output=True, driven=False),
                ws=check.pin(f"{path}.ws", section.get("ws"), output=True, driven=False),
                sd=check.pin(f"{path}.sd", section.get("sd"), output=False, driven=True),
                lr=_choice(section, "lr", f"{path}.lr", source, I2S_LR),
                supply=str(section.get("supply", "3V3")),
            )
        )
    if len(mics) > 1:
        raise BoardError(source, "i2s", "one microphone per node (the firmware reads one)")
    gpio = []
    for part, section in _table(raw, "gpio", source).items():
        path = f"gpio.{part}"
        mode = _choice(section, "mode", f"{path}.mode", source, ("out", "in", "adc"))
        pin = check.pin(
            f"{path}.pin",
            section.get("pin"),
            output=mode == "out",
            driven=mode != "out",
            analog=mode == "adc",
        )
        gpio.append(GpioPart(part, pin, mode))
    return Board(name, module, wifi, tuple(uarts), tuple(buses), tuple(gpio), source, tuple(mics))


def load_board(path: Path) -> Board:
    with path.open("rb") as f:
        raw = tomllib.load(f)
    return parse_board(raw, str(path))


def board_path(kind: str) -> Path:
    return HARDWARE_DIR / f"{kind}-node" / "board.toml"


def config_sections(board: Board, pm_sensor: str | None = None) -> dict[str, Any]:
    """The pin-carrying sections of the firmware's ``config.json`` (firmware/config.py).

    A board without a PM sensor or BME280 says so (``"sensor": "none"``, ``"enabled":
    false``): the firmware's defaults assume both. A microphone gives the ``noise``
    section's bus and pins.
    """
    out: dict[str, Any] = {}
    pm = board.uart("pm")
    if pm is not None:
        out["pm"] = {"sensor": pm_sensor or pm.sensor, "uart": pm.bus, "tx": pm.tx, "rx": pm.rx}
    elif board.i2s:
        out["pm"] = {"sensor": "none"}
    found = board.i2c_device("bme280")
    if found is not None:
        bus, dev = found
        out["bme280"] = {
            "enabled": True,
            "i2c": bus.bus,
            "scl": bus.scl,
            "sda": bus.sda,
            "address": dev.address,
        }
    elif board.i2s:
        out["bme280"] = {"enabled": False}
    mic = board.microphone()
    if mic is not None:
        out["noise"] = {"i2s": mic.bus, "sck": mic.sck, "ws": mic.ws, "sd": mic.sd}
    return out
