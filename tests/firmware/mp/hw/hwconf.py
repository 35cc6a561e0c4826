"""The fake hardware's settings: ``hw.json`` in the current folder (the node's flash root).

    {"pm": {} (an SDS011), {"kind": "pms5003"} or null (none), "bme280": {} or null,
     "mac": "a1b2c3d4e5f6", "wifi_fail": false, "ntp_fail": false,
     "reset_cause": "PWRON_RESET",
     "i2s": {"hz": 1000, "db": 94.0} (an INMP441 hearing that tone; null: silence)}

Missing keys take these defaults: an SDS011 and a BME280 that answer, Wi-Fi
and NTP that work, a power-on reset.
"""

import json

DEFAULTS = {
    "pm": {},
    "bme280": {},
    "mac": "a1b2c3d4e5f6",
    "wifi_fail": False,
    "ntp_fail": False,
    "reset_cause": "PWRON_RESET",
}


def load():
    conf = dict(DEFAULTS)
    try:
        with open("hw.json") as f:
            conf.update(json.loads(f.read()))
    except OSError:
        pass
    return conf


HW = load()
