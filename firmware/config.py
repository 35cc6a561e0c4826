"""The node's configuration: one JSON file, ``config.json``, at the filesystem root.

Read once at boot, checked key by key, turned into a ``Config`` that is passed
down; nothing reads the file again. A bad or missing value raises
``ConfigError`` naming the key (``broker.port``) and what was wrong, which
``main.py`` prints on the serial console.

    {
      "node_id": "esp32-a1b2c3",          optional: default from the Wi-Fi MAC
      "uplink": "mqtt",                   or "serial": over the USB console (serial_uplink.py)
      "wifi": {"ssid": "...", "password": "...", "timeout_s": 20},
      "broker": {"host": "192.168.1.2", "port": 1883, "user": null, "password": null,
                 "tls": false, "keepalive_s": 60},
      "ntp": {"host": "pool.ntp.org", "resync_s": 86400},
      "pm": {"sensor": "sds011", "uart": 2, "tx": 17, "rx": 16, "warmup_s": 15, "samples": 5},
      "bme280": {"enabled": true, "i2c": 0, "scl": 22, "sda": 21, "address": 118},
      "intervals": {"sample_s": 60, "status_s": 300},
      "buffer": {"slots": 2880, "folder": "data"},
      "noise": {"rate": 48000, "period_s": 60, "sensitivity_dbfs": -26.0, "offset_db": 0.0,
                "i2s": 0, "sck": 32, "ws": 25, "sd": 33},
      "watchdog_s": 120
    }

Only ``wifi.ssid`` and ``broker.host`` are required (neither with ``"uplink": "serial"``);
everything else has the default shown. Pins are the board's (hardware/air-node); ``pm.sensor`` is
"sds011", "pms5003" or "none".

Node kinds: a ``noise`` section (checked by ``noise.meter.NoiseConfig.from_section``)
makes the node a noise node; without it, none is measured. Air sensors are the PM
sensor and the BME280: ``"pm": {"sensor": "none"}`` with ``"bme280": {"enabled": false}``
and a ``noise`` section is a noise-only node; both are a node with both. A node with
neither is refused.
"""

import json

from micropython import const

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from noise.meter import NoiseConfig

    Section = dict[str, object]

CONFIG_FILE = "config.json"
_PIN_MAX = const(39)  # ESP32 GPIO numbers 0..39
_FLASH_PINS = (6, 7, 8, 9, 10, 11)  # wired to the SPI flash (REFERENCE 8.6)
_INPUT_ONLY_LOW = const(34)  # GPIO34..39 are input only
PM_SENSORS = ("sds011", "pms5003", "none")
_NODE_ID_MAX = const(32)
_WATCHDOG_MIN_S = const(10)
_TOP_KEYS = (
    "node_id",
    "uplink",
    "wifi",
    "broker",
    "ntp",
    "pm",
    "bme280",
    "intervals",
    "buffer",
    "noise",
    "watchdog_s",
)

# The firmware's version, sent as ``fw`` in every message.
FW_VERSION = "0.1.0"


class ConfigError(Exception):
    """``key`` (dotted path, e.g. ``broker.port``) is missing or has a bad value."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(CONFIG_FILE + ": " + key + ": " + reason)
        self.key = key
        self.reason = reason


def _section(raw: Section, name: str) -> Section:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(name, "expected an object")
    return value


def _known(section: Section, prefix: str, keys: tuple[str, ...]) -> None:
    for key in section:
        if key not in keys:
            raise ConfigError(prefix + key, "unknown key")


def _int(section: Section, prefix: str, key: str, default: int | None, low: int, high: int) -> int:
    value = section.get(key, default)
    if value is None:
        raise ConfigError(prefix + key, "missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(prefix + key, "expected an integer, got " + repr(value))
    if not low <= value <= high:
        raise ConfigError(prefix + key, f"{value} is not in {low}..{high}")
    return value


def _str(section: Section, prefix: str, key: str, default: str | None, max_len: int = 64) -> str:
    value = section.get(key, default)
    if value is None:
        raise ConfigError(prefix + key, "missing")
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ConfigError(prefix + key, f"expected a text of 1..{max_len} characters")
    return value


def _opt_str(section: Section, prefix: str, key: str) -> str | None:
    if section.get(key) is None:
        return None
    return _str(section, prefix, key, None)


def _bool(section: Section, prefix: str, key: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(prefix + key, "expected true or false, got " + repr(value))
    return value


def _pin(section: Section, prefix: str, key: str, default: int, output: bool) -> int:
    pin = _int(section, prefix, key, default, 0, _PIN_MAX)
    if pin in _FLASH_PINS:
        raise ConfigError(prefix + key, f"GPIO{pin} is wired to the SPI flash")
    if output and pin >= _INPUT_ONLY_LOW:
        raise ConfigError(prefix + key, f"GPIO{pin} is input only")
    return pin


def valid_node_id(node_id: str) -> bool:
    """``[a-z0-9-]{3,32}``, as the message contract wants it (and not ``gateway``)."""
    if not 3 <= len(node_id) <= _NODE_ID_MAX or node_id == "gateway":
        return False
    return all("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "-" for ch in node_id)


def node_id_from_mac(mac: bytes) -> str:
    """``esp32-`` and the last three bytes of the MAC in lowercase hex."""
    return "esp32-" + "".join(f"{b:02x}" for b in mac[-3:])


class Config:
    """The validated settings (filled by ``parse``); read-only by convention.

    Plain data with no methods, so the checking code in this module can be
    unloaded after boot (``node.start``) and its RAM returned.
    """

    node_id: str
    fw: str
    uplink: str  # "mqtt" or "serial"
    wifi_ssid: str
    wifi_password: str | None
    wifi_timeout_s: int
    broker_host: str
    broker_port: int
    broker_user: str | None
    broker_password: str | None
    keepalive_s: int
    ntp_host: str
    ntp_resync_s: int
    pm_sensor: str
    pm_uart: int
    pm_tx: int
    pm_rx: int
    pm_warmup_s: int
    pm_warmup_short: bool
    pm_samples: int
    bme_enabled: bool
    bme_i2c: int
    bme_scl: int
    bme_sda: int
    bme_address: int
    sample_s: int
    status_s: int
    buffer_slots: int
    buffer_folder: str
    watchdog_s: int
    noise: NoiseConfig | None  # the sound level meter's settings, when it runs


def parse(raw: object, mac: bytes) -> Config:
    """Check ``raw`` (the parsed JSON) key by key; ConfigError names the first bad one."""
    c = Config()
    if not isinstance(raw, dict):
        raise ConfigError("(file)", "expected a JSON object")
    _known(raw, "", _TOP_KEYS)
    node_id = raw.get("node_id")
    if node_id is None:
        node_id = node_id_from_mac(mac)
    elif not isinstance(node_id, str) or not valid_node_id(node_id):
        raise ConfigError("node_id", repr(node_id) + " is not [a-z0-9-]{3,32}")
    c.node_id = node_id
    c.fw = FW_VERSION

    # Only names an air node already has: the port's name pool grows in 7 KB steps and an
    # air node sits just below one (firmware/README.md), so "serial" is compared as bytes.
    uplink = raw.get("uplink", "mqtt")
    if uplink != "mqtt" and (not isinstance(uplink, str) or uplink.encode() != b"serial"):
        raise ConfigError("uplink", repr(uplink) + " is not one of " + b"mqtt, serial".decode())
    c.uplink = uplink
    # Over USB serial neither Wi-Fi nor the broker is used: their sections may be left out.
    serial = uplink != "mqtt"

    wifi = _section(raw, "wifi")
    _known(wifi, "wifi.", ("ssid", "password", "timeout_s"))
    c.wifi_ssid = "" if serial and "ssid" not in wifi else _str(wifi, "wifi.", "ssid", None, 32)
    c.wifi_password = _opt_str(wifi, "wifi.", "password")
    c.wifi_timeout_s = _int(wifi, "wifi.", "timeout_s", 20, 1, 120)

    broker = _section(raw, "broker")
    _known(broker, "broker.", ("host", "port", "user", "password", "tls", "keepalive_s"))
    c.broker_host = "" if serial and "host" not in broker else _str(broker, "broker.", "host", None)
    c.broker_port = _int(broker, "broker.", "port", 1883, 1, 65535)
    c.broker_user = _opt_str(broker, "broker.", "user")
    c.broker_password = _opt_str(broker, "broker.", "password")
    if c.broker_password is not None and c.broker_user is None:
        raise ConfigError("broker.user", "missing (a password is given)")
    if _bool(broker, "broker.", "tls", False):
        raise ConfigError("broker.tls", "TLS is not supported yet: set false")
    c.keepalive_s = _int(broker, "broker.", "keepalive_s", 60, 10, 3600)

    ntp = _section(raw, "ntp")
    _known(ntp, "ntp.", ("host", "resync_s"))
    c.ntp_host = _str(ntp, "ntp.", "host", "pool.ntp.org")
    c.ntp_resync_s = _int(ntp, "ntp.", "resync_s", 86400, 60, 432_000)

    pm = _section(raw, "pm")
    _known(pm, "pm.", ("sensor", "uart", "tx", "rx", "warmup_s", "samples"))
    sensor = pm.get("sensor", "sds011")
    if sensor not in PM_SENSORS:
        raise ConfigError("pm.sensor", repr(sensor) + " is not one of " + ", ".join(PM_SENSORS))
    c.pm_sensor = sensor
    c.pm_uart = _int(pm, "pm.", "uart", 2, 1, 2)
    c.pm_tx = _pin(pm, "pm.", "tx", 17, True)
    c.pm_rx = _pin(pm, "pm.", "rx", 16, False)
    default_warmup = 30 if sensor == "pms5003" else 15
    c.pm_warmup_s = _int(pm, "pm.", "warmup_s", default_warmup, 0, 120)
    c.pm_warmup_short = c.pm_warmup_s < default_warmup
    c.pm_samples = _int(pm, "pm.", "samples", 5, 1, 60)

    bme = _section(raw, "bme280")
    _known(bme, "bme280.", ("enabled", "i2c", "scl", "sda", "address"))
    c.bme_enabled = _bool(bme, "bme280.", "enabled", True)
    c.bme_i2c = _int(bme, "bme280.", "i2c", 0, 0, 1)
    c.bme_scl = _pin(bme, "bme280.", "scl", 22, True)
    c.bme_sda = _pin(bme, "bme280.", "sda", 21, True)
    c.bme_address = _int(bme, "bme280.", "address", 0x76, 0x76, 0x77)

    intervals = _section(raw, "intervals")
    _known(intervals, "intervals.", ("sample_s", "status_s"))
    c.sample_s = _int(intervals, "intervals.", "sample_s", 60, 1, 86400)
    c.status_s = _int(intervals, "intervals.", "status_s", 300, 1, 86400)
    if c.sample_s < c.pm_warmup_s + c.pm_samples and sensor != "none":
        raise ConfigError(
            "intervals.sample_s",
            f"{c.sample_s} s is shorter than the PM warm-up and sampling "
            f"({c.pm_warmup_s + c.pm_samples} s)",
        )

    buffer = _section(raw, "buffer")
    _known(buffer, "buffer.", ("slots", "folder"))
    c.buffer_slots = _int(buffer, "buffer.", "slots", 2880, 4, 20000)
    c.buffer_folder = _str(buffer, "buffer.", "folder", "data", 32)

    c.watchdog_s = _int(raw, "", "watchdog_s", 120, 0, 3600)
    if 0 < c.watchdog_s < _WATCHDOG_MIN_S:
        raise ConfigError("watchdog_s", f"0 (off) or at least {_WATCHDOG_MIN_S} s")

    c.noise = None
    if raw.get("noise") is not None:
        # Its checks live with the meter (noise/node.py): an air node loads none of them.
        from noise import node as noise_node

        c.noise = noise_node.parse(raw["noise"], ConfigError, _pin)
    elif sensor == "none" and not c.bme_enabled:
        # No sensor at all (no PM sensor, no BME280): the noise section is what is missing.
        raise ConfigError("noise", "missing")
    return c


def load(mac: bytes, path: str = CONFIG_FILE) -> Config:
    """Read and check ``path``; ConfigError names what is wrong."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("(file)", "cannot be read: create it (see firmware/README.md)") from None
    try:
        raw = json.loads(text)
    except ValueError:
        raise ConfigError("(file)", "is not valid JSON") from None
    return parse(raw, mac)
