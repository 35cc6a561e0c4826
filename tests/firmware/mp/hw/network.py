"""Fake ``network`` for the unix port: a station that connects at once (or never).

``wifi_drop_after_s`` in hw.json: the link drops once, that long after connecting.
"""

import time

from hwconf import HW

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._connected = False
        self._since = 0
        self._dropped = False

    def active(self, value=None):
        if value is not None:
            self._active = bool(value)
        return self._active

    def connect(self, ssid=None, key=None):
        self._connected = self._active and not HW.get("wifi_fail")
        self._since = time.ticks_ms()

    def disconnect(self):
        self._connected = False

    def isconnected(self):
        drop = HW.get("wifi_drop_after_s")
        due = drop and time.ticks_diff(time.ticks_ms(), self._since) > drop * 1000
        if due and self._connected and not self._dropped:
            self._dropped = True
            self._connected = False
            print("FAKE wifi: link dropped")
        return self._connected

    def status(self, param=None):
        if param == "rssi":
            return -61
        return STAT_GOT_IP if self._connected else STAT_IDLE

    def config(self, name):
        if name == "mac":
            return bytes.fromhex(HW["mac"])
        raise ValueError(name)
