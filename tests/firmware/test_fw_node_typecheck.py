"""mypy over the node's modules against the MicroPython ESP32 stubs (firmware/mypy.ini).

The same set-up as test_fw_typecheck (which checks the drivers): the stubs laid
out as mypy's typeshed, the firmware folder on the search path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mprunner import FIRMWARE, REPO
from test_fw_typecheck import _typings

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
)


def test_node_modules_type_check_against_the_esp32_stubs(tmp_path: Path) -> None:
    (tmp_path / "typings").mkdir()
    typings = _typings(tmp_path / "typings")
    env = {**os.environ, "MYPYPATH": f"{typings}{os.pathsep}{FIRMWARE}"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(FIRMWARE / "mypy.ini"),
            "--custom-typeshed-dir",
            str(typings),
            "--cache-dir",
            str(tmp_path / "cache"),
            *(str(FIRMWARE / name) for name in NODE_MODULES),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=180,
        check=False,
    )
    # The stubs have flaws of their own (network.pyi defines LAN twice): only ours count.
    errors = [
        line
        for line in proc.stdout.splitlines()
        if ": error:" in line and not line.startswith(str(typings))
    ]
    assert not errors, proc.stdout
