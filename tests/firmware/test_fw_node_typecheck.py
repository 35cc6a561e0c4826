"""mypy over the node's modules against the MicroPython ESP32 stubs (firmware/mypy.ini).

The same set-up as test_fw_typecheck (which checks the drivers): the stubs laid
out as mypy's typeshed, the firmware folder on the search path.
"""

from __future__ import annotations

from pathlib import Path

from mprunner import FIRMWARE
from test_fw_typecheck import stub_mypy

NODE_MODULES = (
    "main.py",
    "node.py",
    "config.py",
    "clock.py",
    "ringbuf.py",
    "payload.py",
    "mqtt.py",
    "sampler.py",
    "uplink.py",
    "serial_uplink.py",
)


def test_node_modules_type_check_against_the_esp32_stubs(tmp_path: Path) -> None:
    proc, typings = stub_mypy(tmp_path, [FIRMWARE / name for name in NODE_MODULES])
    # The stubs have flaws of their own (network.pyi defines LAN twice): only ours count.
    errors = [
        line
        for line in proc.stdout.splitlines()
        if ": error:" in line and not line.startswith(str(typings))
    ]
    assert not errors, proc.stdout
