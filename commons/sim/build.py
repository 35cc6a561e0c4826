"""What a simulated node's ``MICROPYPATH`` holds: the emulation first, then the firmware.

Both are compiled with mpy-cross into ``$COMMONS_HOME/sim/.build`` (as ``make firmware`` does
for a device: loading bytecode takes no compiler heap), the firmware's sources stay behind them
as a fallback, then the unix port's frozen modules (asyncio). ``main.py`` itself runs from its
source, as on the device.

The heap: an ESP32-WROOM leaves Python about 100 KB (``ESP32_HEAP``). The unix port is a
64-bit build, where every object reference and heap block is twice the ESP32's size, so the
same objects take about twice the RAM (the drivers measure 38 KB here against about half that
on the ESP32): the node gets ``UNIX_WORD_FACTOR`` times the ESP32's heap. The emulation shares
that heap, so ``EMULATION_HEAP_KB`` is added on top (tests/test_sim_emulation.py checks the
emulation stays within it): what is left for the firmware is what an ESP32 leaves it.

Modules with machine code (``@micropython.viper``: the noise meter's ``kernel`` and ``fast``,
the emulated microphone) are compiled for this machine's architecture (``mpy-cross -march``),
as the unix port runs them; ``make firmware`` compiles the same sources for the ESP32.
"""

from __future__ import annotations

from pathlib import Path

from commons.micropython import (
    ESP32_HEAP,
    FIRMWARE_DIR,
    compile_module,
    firmware_modules,
    has_machine_code,
    host_arch,
)

SIM_DIR = Path(__file__).resolve().parent
EMULATION_DIRS = (SIM_DIR / "mpy", SIM_DIR / "devices")
EMULATION_HEAP_KB = 64
UNIX_WORD_FACTOR = 2
FROZEN = ".frozen"


def node_heap() -> str:
    """``-X heapsize=`` for a node: the ESP32's budget on a 64-bit port, plus the emulation."""
    esp32_kb = int(ESP32_HEAP.rstrip("K"))
    return f"{esp32_kb * UNIX_WORD_FACTOR + EMULATION_HEAP_KB}K"


class BuildError(Exception):
    def __init__(self, source: Path, stderr: str) -> None:
        super().__init__(f"mpy-cross failed on {source}: {stderr.strip()}")
        self.source = source
        self.stderr = stderr


def _compile_tree(root: Path, dest: Path, required: bool, skip: tuple[str, ...] = ()) -> None:
    for relative in firmware_modules(root):
        if str(relative) in skip:
            continue
        source = root / relative
        out = dest / relative.with_suffix(".mpy")
        if out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
            continue
        # Viper/native code (the noise meter, the emulated microphone) is compiled for this
        # machine, as the unix port runs it.
        march = host_arch() if has_machine_code(source) else None
        result = compile_module(source, relative, out, march)
        if result.returncode != 0:
            out.unlink(missing_ok=True)
            if required:
                raise BuildError(source, result.stderr)


def node_path(build_dir: Path) -> list[Path]:
    """Compile what changed and return the ``MICROPYPATH`` entries, in order."""
    emulation = build_dir / "emulation"
    firmware = build_dir / "firmware"
    for root in EMULATION_DIRS:
        _compile_tree(root, emulation, required=True)
    # A firmware module that does not compile stays a source file: its error shows at import.
    _compile_tree(FIRMWARE_DIR, firmware, required=False, skip=("main.py", "boot.py"))
    return [emulation, firmware, FIRMWARE_DIR, Path(FROZEN)]
