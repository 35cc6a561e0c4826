"""The simulated node's hardware description, read once from ``sim.json`` in the
node's folder (the device filesystem root, the process's working directory).

The host (commons/sim/) writes it: clock, wiring of the emulated sensors, Wi-Fi,
environment timeline, faults. A missing file means a plain node at real time
with nothing attached.
"""

import json

SIM_FILE = "sim.json"
_loaded = []


def get():
    if not _loaded:
        try:
            with open(SIM_FILE) as f:
                _loaded.append(json.load(f))
        except OSError:
            _loaded.append({})
    return _loaded[0]


def section(name):
    return get().get(name) or {}
