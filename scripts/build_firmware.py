#!/usr/bin/env python3
"""``make firmware``: the files to copy to an ESP32, in ``build/firmware/``.

Every firmware module is compiled with mpy-cross (bytecode, loads on any port
with the same .mpy version; modules with native code are compiled for the
ESP32's ``xtensawin``). ``main.py`` stays a source file: MicroPython runs
``main.py`` at boot, never ``main.mpy``. The node needs no third-party
package on the device: its MQTT client is its own (firmware/mqtt.py says
why), so nothing is installed here; a future dependency would be installed
into ``build/firmware/lib`` by this script, never copied into the repository.

    python scripts/build_firmware.py [--out build/firmware] [--port /dev/ttyUSB0]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from commons.micropython import FIRMWARE_DIR, firmware_modules, mpy_cross_binary  # noqa: E402

# Run as source on the device (MicroPython looks for these names as .py files).
SOURCE_FILES = ("main.py", "boot.py")
# Host-side helpers inside firmware/ that never go to the device.
HOST_ONLY = ("noise/hostrun.py",)
ESP32_ARCH = "xtensawin"


def compile_one(source: Path, relative: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    base = [str(mpy_cross_binary()), "-o", str(dest), "-s", str(relative)]
    done = subprocess.run([*base, str(source)], capture_output=True, text=True, check=False)
    if done.returncode != 0 and "arch" in done.stderr:
        # @micropython.native / viper code: compiled for the ESP32 (Xtensa, windowed ABI).
        done = subprocess.run(
            [*base, f"-march={ESP32_ARCH}", str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"mpy-cross failed on firmware/{relative}:\n{done.stderr}")


def build(out: Path) -> list[Path]:
    """Compile into ``out`` (emptied first); returns the files written, relative to it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    for relative in firmware_modules(FIRMWARE_DIR):
        if relative.as_posix() in HOST_ONLY:
            continue
        source = FIRMWARE_DIR / relative
        if relative.as_posix() in SOURCE_FILES:
            shutil.copyfile(source, out / relative)
            written.append(relative)
            continue
        target = relative.with_suffix(".mpy")
        compile_one(source, relative, out / target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "firmware")
    parser.add_argument("--port", default="/dev/ttyUSB0", help="the ESP32's serial port")
    args = parser.parse_args(argv)
    written = build(args.out)
    size = sum((args.out / f).stat().st_size for f in written)
    print(f"{len(written)} files, {size} bytes in {args.out}")
    tops = sorted({f.parts[0] for f in written})
    print("Copy them to the node (MicroPython already flashed), then its config.json:")
    print(f"  cd {args.out} && mpremote connect {args.port} cp -r {' '.join(tops)} :")
    print(f"  mpremote connect {args.port} cp config.json : + reset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
