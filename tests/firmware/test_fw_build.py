"""Every firmware module compiles with mpy-cross, and the compiled files are what runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mprunner import (
    FIRMWARE,
    MPY_CROSS,
    RUN_TIMEOUT_S,
    MicroPython,
    compile_firmware,
    firmware_modules,
    module_name,
)

DRIVERS = {
    "drivers",
    "drivers.bme280",
    "drivers.errors",
    "drivers.framesync",
    "drivers.pms5003",
    "drivers.runhours",
    "drivers.sds011",
    "drivers.trimmed",
}

# Modules with machine code (@micropython.viper / native): mpy-cross needs the target's
# architecture for them (-march=xtensawin for the ESP32), and their .mpy loads only there.
# Copied as source, the device compiles them on import. Every other module is bytecode.
NATIVE = {Path("noise/kernel.py"), Path("noise/fast.py")}
ESP32_ARCH = "xtensawin"


def test_every_firmware_module_compiles(tmp_path: Path) -> None:
    results = compile_firmware(tmp_path)
    modules = firmware_modules()
    assert len(results) == len(modules)
    for relative, result in zip(modules, results, strict=True):
        if relative in NATIVE:
            continue
        assert result.returncode == 0, f"{relative}: {result.stderr}"
        assert (tmp_path / relative.with_suffix(".mpy")).stat().st_size > 0
    assert {module_name(m) for m in modules} >= DRIVERS


def test_every_firmware_module_compiles_for_the_esp32(tmp_path: Path) -> None:
    for relative in firmware_modules():
        out = tmp_path / relative.with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        src = str(FIRMWARE / relative)
        result = subprocess.run(
            [str(MPY_CROSS), f"-march={ESP32_ARCH}", "-o", str(out), "-s", str(relative), src],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        assert result.returncode == 0, f"{relative}: {result.stderr}"
        has_native = out.read_bytes()[2] >> 2 != 0
        assert has_native == (relative in NATIVE), relative


def test_mpy_version_matches_the_runtime(mpy_build: Path) -> None:
    # .mpy header: b"M", format version, then the native architecture (bits 2-7)
    # and its sub-version: bytecode-only files carry no architecture, so any
    # port with the same format version (the ESP32's too) loads them.
    result = MicroPython(mpy_build, "mpy").run("probe", "modules", {"modules": ["drivers"]})
    for relative in firmware_modules():
        if relative in NATIVE:
            continue
        header = (mpy_build / relative.with_suffix(".mpy")).read_bytes()[:3]
        assert header[0:1] == b"M"
        assert header[1] == result["mpy"] & 0xFF, relative
        assert header[2] >> 2 == 0, f"{relative} contains native code"


def test_compiled_modules_are_the_ones_imported(mpy_build: Path) -> None:
    result = MicroPython(mpy_build, "mpy").run("probe", "modules", {"modules": sorted(DRIVERS)})
    for name, file in result["files"].items():
        assert file.endswith(".mpy"), f"{name} loaded from {file}"
        assert not file.startswith(str(FIRMWARE))


def test_sources_are_the_ones_imported_in_source_runs(mp_source: MicroPython) -> None:
    result = mp_source.run("probe", "modules", {"modules": sorted(DRIVERS)})
    for name, file in result["files"].items():
        assert file.endswith(".py"), f"{name} loaded from {file}"


def test_ram_cost_stays_small(mp: MicroPython) -> None:
    # Measured on the 64-bit unix port, where objects take about twice the
    # ESP32's 32-bit words: importing the three drivers costs ~38 KB here
    # (~20 KB on the ESP32, less when frozen into the firmware), one instance
    # of each ~4.5 KB. A guard against creeping growth.
    result = mp.run("probe", "memory")
    assert result["import"] < 48_000
    assert result["instances"] < 8_000
