"""mypy over the firmware against the MicroPython ESP32 stubs (firmware/mypy.ini).

The stubs replace typeshed's standard library (MicroPython's ``time``,
``struct``, ... differ from CPython's), so mypy gets them as its typeshed and
search path. They are installed as wheels into site-packages, which mypy
refuses as a search path; this test lays their files out (symlinks) in a
temporary folder first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from mprunner import FIRMWARE, REPO

STUB_DISTRIBUTIONS = ("micropython-esp32-stubs", "micropython-stdlib-stubs")

# machine.UART, machine.I2C/SoftI2C and the time module satisfy the protocols in
# drivers/hwtypes.pyi, and the drivers accept them.
COMPAT = """
import time

from machine import I2C, UART, Pin, SoftI2C

from drivers import bme280, pms5003, sds011
from drivers.hwtypes import Clock, I2CLike, UartLike

clock: Clock = time
uart: UartLike = UART(1, 9600)
i2c: I2CLike = I2C(0)
soft: I2CLike = SoftI2C(scl=Pin(22), sda=Pin(21))
dust = sds011.SDS011(UART(1, 9600, rx=16, tx=17))
pms = pms5003.PMS5003(UART(2, 9600))
env = bme280.BME280(bme280.BME280I2C(SoftI2C(scl=Pin(22), sda=Pin(21)), 0x77))
reading: bme280.BME280Reading = env.read()
"""

# A control: mypy must see these mistakes.
MISTAKES = """
from machine import UART

from drivers import sds011

sds011.SDS011(UART(1), reply_ms="1000")
sds011.SDS011(object())
"""


def _typings(dest: Path) -> Path:
    for name in STUB_DISTRIBUTIONS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is missing: install the dev extras (pip install -e '.[dev]')")
        tops = {
            Path(str(f)).parts[0]
            for f in dist.files or []
            if not str(f).startswith("..") and ".dist-info" not in str(f)
        }
        for top in tops - {"__pycache__"}:
            target = Path(str(dist.locate_file(top)))
            if not (dest / top).exists():
                (dest / top).symlink_to(target)
    return dest


def stub_mypy(
    tmp_path: Path, targets: list[Path], timeout: float = 180
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """mypy on ``targets`` against the ESP32 stubs; the result and the stubs' folder."""
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
            *(str(target) for target in targets),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    return proc, typings


def test_firmware_type_checks_against_the_esp32_stubs(tmp_path: Path) -> None:
    extra = tmp_path / "checks"
    extra.mkdir()
    (extra / "compat.py").write_text(COMPAT)
    (extra / "mistakes.py").write_text(MISTAKES)
    proc, _ = stub_mypy(
        tmp_path,
        [FIRMWARE / "drivers", FIRMWARE / "noise", extra / "compat.py", extra / "mistakes.py"],
        timeout=120,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if "mistakes.py" not in e], proc.stdout
    assert len([e for e in errors if "mistakes.py" in e]) == 2, proc.stdout
