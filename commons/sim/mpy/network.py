"""``network`` on the simulated node: a station interface that joins the
configured network at once (or, per ``sim.json`` "wifi", fails or drops).

An outage shows in ``isconnected()`` and ``status()`` only: the node's sockets
are the host's, so a connection already open to the broker is not cut.
"""

import sim_clock
import sim_config

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_BEACON_TIMEOUT = 200
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

_interfaces = {}


class WLAN:
    def __new__(cls, interface_id=STA_IF):
        wlan = _interfaces.get(interface_id)
        if wlan is None:
            wlan = object.__new__(cls)
            wlan._setup(interface_id)
            _interfaces[interface_id] = wlan
        return wlan

    def __init__(self, interface_id=STA_IF):
        pass

    def _setup(self, interface_id):
        cfg = sim_config.section("wifi")
        self._if = interface_id
        self._ssid = cfg.get("ssid")
        self._password = cfg.get("password")
        self._rssi = cfg.get("rssi", -67)
        self._mac = bytes.fromhex(cfg.get("mac", "24a160000001"))
        # Outages: every ``drop_every_s`` of the node's time the link is down
        # for ``drop_for_s``.
        self._drop_every = cfg.get("drop_every_s", 0)
        self._drop_for = cfg.get("drop_for_s", 0)
        self._active = False
        self._status = STAT_IDLE
        self._hostname = "esp32"

    def active(self, is_active=None):
        if is_active is None:
            return self._active
        self._active = bool(is_active)
        if not self._active:
            self._status = STAT_IDLE

    def _dropped(self):
        if not self._drop_every:
            return False
        return sim_clock.now_ms() // 1000 % self._drop_every >= self._drop_every - self._drop_for

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not self._active:
            raise OSError("Wifi Not Started")
        if self._ssid is not None and ssid != self._ssid:
            self._status = STAT_NO_AP_FOUND
        elif self._password is not None and key != self._password:
            self._status = STAT_WRONG_PASSWORD
        else:
            self._status = STAT_GOT_IP

    def disconnect(self):
        self._status = STAT_IDLE

    def isconnected(self):
        return self._active and self._status == STAT_GOT_IP and not self._dropped()

    def status(self, param=None):
        if param is None:
            if self._status == STAT_GOT_IP and self._dropped():
                return STAT_CONNECTING
            return self._status
        if param == "rssi":
            if not self.isconnected():
                raise OSError("not connected")
            return self._rssi - sim_clock.now_ms() // 7919 % 5
        raise ValueError("unknown status param")

    def config(self, *args, **kwargs):
        if kwargs:
            if "hostname" in kwargs:
                self._hostname = kwargs["hostname"]
            return None
        name = args[0]
        if name == "mac":
            return self._mac
        if name in ("hostname", "dhcp_hostname"):
            return self._hostname
        if name == "ssid":
            return self._ssid
        raise ValueError("unknown config param")

    def ifconfig(self, *args):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def scan(self):
        return [(self._ssid.encode(), self._mac, 6, self._rssi, 3, False)] if self._ssid else []


def hostname(name=None):
    return WLAN(STA_IF).config("hostname") if name is None else WLAN(STA_IF).config(hostname=name)
