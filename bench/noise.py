"""Benchmark: the noise meter's firmware code under the MicroPython unix port.

Three loops over the same 1024-word blocks of a 1 kHz tone, in one MicroPython process:

1. the per-sample kernel (``noise.kernel.process``) as viper machine code, as on the node;
2. the same kernel source with the ``@micropython.viper`` decorator removed, as plain
   bytecode (ptr32 indexing becomes array indexing; the arithmetic is the same);
3. the whole meter (``NoiseMeter.feed``): the kernel plus the per-sub-block stage
   (``noise.fast``: time weighting, level tracking, histogram; viper too) and the calls.

Each figure is the best of five interleaved rounds (a shared machine only ever slows a
round down), in samples per second and its multiple of the sample rate (48 kHz): how much
faster than real time this machine runs it. docs/noise-performance.md turns these into an
estimate for a 240 MHz ESP32.

    python bench/noise.py [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from commons.micropython import FIRMWARE_DIR, micropython_command, micropython_env  # noqa: E402

RATE = 48000
BLOCK = 1024

SCRIPT = """
import json, math, sys, time
from array import array
import micropython
from noise import kernel
from noise.meter import NoiseConfig, NoiseMeter
import bytecode_kernel

seconds = float(sys.argv[1])
ROUNDS = 5
RATE = %(rate)d
BLOCK = %(block)d
words = array("i", [int(420426 * math.sin(2 * math.pi * 1000 * i / RATE)) << 8
                    for i in range(BLOCK)])
raw = bytearray(words)


def fresh_state():
    meter = NoiseMeter(NoiseConfig(rate=RATE, block=BLOCK))
    return meter, meter._st, meter._out


def timed(func, budget_s):
    blocks = 0
    t0 = time.ticks_us()
    while True:
        func()
        blocks += 1
        dt = time.ticks_diff(time.ticks_us(), t0)
        if dt >= budget_s * 1e6:
            return blocks * BLOCK / (dt / 1e6)


# Interleaved rounds, best of each: the machine may be shared, and interference only slows.
viper = plain = whole = 0.0
for _ in range(ROUNDS):
    meter, st, out = fresh_state()
    viper = max(viper, timed(lambda: kernel.run(raw, BLOCK, st, out), seconds / ROUNDS))
    meter, st, out = fresh_state()
    plain = max(plain, timed(lambda: bytecode_kernel.process(words, BLOCK, st, out),
                             seconds / ROUNDS / 2))
    meter, st, out = fresh_state()
    whole = max(whole, timed(lambda: meter.feed(raw, BLOCK), seconds / ROUNDS))
# One second of the tone, both ways: the bytecode twin computes the same numbers.
meter_a, st_a, out_a = fresh_state()
meter_b, st_b, out_b = fresh_state()
same = True
for _ in range(RATE // BLOCK):
    ka = kernel.run(raw, BLOCK, st_a, out_a)
    kb = bytecode_kernel.process(words, BLOCK, st_b, out_b)
    same = same and ka == kb and list(out_a)[: 4 * ka] == list(out_b)[: 4 * kb]
same = same and list(st_a) == list(st_b)
print(json.dumps({"viper": viper, "bytecode": plain, "meter": whole, "identical": same}))
"""


def bytecode_twin(dest: Path) -> Path:
    """``noise/kernel.py`` without its viper decorators, as module ``bytecode_kernel``."""
    source = (FIRMWARE_DIR / "noise" / "kernel.py").read_text()
    stripped = source.replace("@micropython.viper\n", "")
    if stripped == source:
        raise SystemExit("bench/noise.py: noise/kernel.py has no @micropython.viper to strip")
    path = dest / "bytecode_kernel.py"
    path.write_text(stripped)
    return path


def run(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        bytecode_twin(Path(tmp))
        script = Path(tmp) / "bench_noise.py"
        script.write_text(SCRIPT % {"rate": RATE, "block": BLOCK})
        proc = subprocess.run(
            micropython_command(script, [str(seconds)]),
            capture_output=True,
            text=True,
            env=micropython_env([FIRMWARE_DIR, Path(tmp)]),
            timeout=30 * seconds + 60,
            check=False,
        )
    if proc.returncode != 0:
        raise SystemExit(f"bench/noise.py: MicroPython failed:\n{proc.stdout}{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per viper loop")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = run(args.seconds)
    if args.json:
        print(json.dumps(result))
        return
    print(f"noise meter under the MicroPython unix port, {BLOCK}-word blocks, fs = {RATE} Hz")
    for key, label in (
        ("viper", "kernel, @micropython.viper"),
        ("bytecode", "kernel, plain bytecode"),
        ("meter", "whole meter (NoiseMeter.feed)"),
    ):
        rate = result[key]
        print(f"  {label:52} {rate / 1e6:8.2f} M samples/s  {rate / RATE:8.1f} x real time")
    print(f"  viper / bytecode: {result['viper'] / result['bytecode']:.1f}x")
    print(f"  bytecode twin computes the same numbers: {result['identical']}")


if __name__ == "__main__":
    main()
