"""``make firmware`` (scripts/build_firmware.py): what goes to the ESP32."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mprunner import FIRMWARE, REPO

SCRIPT = REPO / "scripts" / "build_firmware.py"


def test_build_compiles_every_module_and_keeps_main_as_source(tmp_path: Path) -> None:
    out = tmp_path / "firmware"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--port", "/dev/ttyACM0"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "main.py").read_text() == (FIRMWARE / "main.py").read_text()
    assert not (out / "main.mpy").exists()
    for name in ("node", "config", "clock", "ringbuf", "payload", "mqtt", "sampler", "uplink"):
        header = (out / f"{name}.mpy").read_bytes()[:2]
        assert header[:1] == b"M", name
    for driver in ("sds011", "pms5003", "bme280", "errors", "framesync", "runhours", "trimmed"):
        assert (out / "drivers" / f"{driver}.mpy").exists()
    assert not list(out.rglob("*.pyi"))
    assert not (out / "mypy.ini").exists()
    assert f"cd {out} && mpremote connect /dev/ttyACM0 cp -r " in done.stdout
    # Building again starts from an empty folder.
    (out / "stale.mpy").write_bytes(b"M")
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert not (out / "stale.mpy").exists()
