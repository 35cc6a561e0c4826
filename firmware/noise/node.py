"""The meter's part of ``node.py``: its ``config.json`` section, its task wired to the ring.

Loaded only by a node with a ``noise`` section (``config.py``, ``node.py``), so an air
node pays none of its RAM, not even its names: MicroPython interns the names and string
constants of every loaded module, in pools that grow in steps (on the unix port the air
node is a few names below a 7 KB step). For that reason too its functions have names the
node already uses (load, parse, sampler), and the callers import it into a local name.

    from noise import node as noise_node
    noise_node.load()                                                 # at boot, preload
    nc = noise_node.parse(raw["noise"], config.ConfigError, config._pin)
    node.noise = noise_node.sampler(node, nc)                         # NoiseSampler task

Bring-up (REFERENCE.md 1.6, 8.5): the INMP441 with L/R tied to GND talks in the left
(WS low) slot, but some ESP-IDF versions return zeros for a mono read of the left slot or
swap the slots. So the node reads the bus in stereo, always: after the microphone's
start-up (the first half second is discarded) it looks at which slot talks and keeps that
one (``source.SlotStream``, in place in the task's buffer). Silence in both slots (no
microphone: its SD line reads zeros) leaves slot 0; the node measures on and the meter
flags each reading ``sensor_missing`` until a microphone talks. Console line:

    noise: I2S slots left=<span> right=<span>: reading slot <0|1>

Stereo costs the DMA twice the bytes: the 16 KB DMA buffer holds 43 ms of frames at
48 kHz, and the slot copy is one viper pass over each block.
"""

import gc

from micropython import const

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    from noise.meter import NoiseConfig, NoiseReading
    from noise.task import NoiseSampler

    class Node(Protocol):
        """What the sink uses of the top-level ``node.Node``."""

        cfg: Any
        ring: Any
        clock: Any
        ready: Any


# Default INMP441 wiring (sck and ws are driven by the ESP32, sd is read).
_PINS = (("sck", 32, True), ("ws", 25, True), ("sd", 33, False))
# Words per I2S read on the node: 10.7 ms at 48 kHz (the meter's default, 1024, is for
# recordings). Half the buffers (2 KB less for the read buffer, 1 KB for the meter's
# per-block output) in a node's heap; the DMA buffer (16 KB, 85 ms) is the ESP32's own.
NODE_BLOCK = const(512)
NOISE_KIND = const(1)  # the ring's record kind: index of "noise" in uplink's topics
_MODULES = (
    "noise.weighting",
    "noise.kernel",
    "noise.fast",
    "noise.meter",
    "noise.source",
    "noise.task",
)


def load() -> None:
    """Load the meter's modules one at a time, a collection after each (at boot)."""
    for name in _MODULES:
        __import__(name)
        gc.collect()


def parse(
    section: object,
    error: Callable[[str, str], Exception],
    pin: Callable[[dict[str, object], str, str, int, bool], int],
) -> NoiseConfig:
    """``section`` through ``NoiseConfig.from_section``; ``error(key, reason)`` names the key.

    ``pin`` is config.py's pin check (not a flash pin, outputs not input-only).
    """
    from noise import meter, weighting

    if not isinstance(section, dict):
        raise error("noise", "expected an object")
    try:
        nc = meter.NoiseConfig.from_section(section)
    except meter.ConfigError as exc:
        reason = str(exc)
        prefix = "noise." + exc.key + " = "
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
        raise error("noise." + exc.key, reason) from None
    except weighting.UnsupportedRate as exc:
        raise error("noise.rate", str(exc)) from None
    nc.block = NODE_BLOCK
    nc.i2s = nc.i2s if nc.i2s is not None else 0
    for key, default, output in _PINS:
        setattr(nc, key, pin(section, "noise.", key, default, output))
    return nc


def sampler(node: Node, nc: NoiseConfig) -> NoiseSampler:
    """The meter on the INMP441, read through ``asyncio.StreamReader`` (``open_mic``).

    Each finished period is written as a ``noise`` message into the node's ring (one seq
    counter with the air readings) and wakes the uplink; a console line reports it.
    """
    import asyncio

    import payload

    from noise.meter import NoiseMeter
    from noise.source import ACTIVE_SPAN, SlotStream, open_i2s, slot_spans
    from noise.task import NoiseSampler, noise_message

    assert nc.i2s is not None and nc.sck is not None and nc.ws is not None
    assert nc.sd is not None
    i2s = open_i2s(nc.i2s, nc.sck, nc.ws, nc.sd, nc.rate, True)
    gc.collect()
    mtr = NoiseMeter(nc)  # its large buffers first, while the heap is in one piece
    buf = bytearray(4 * NODE_BLOCK)
    gc.collect()
    # Bring-up: discard the first half second (blocking reads), then see which slot talks.
    skip = nc.rate  # words: half a second of stereo frames
    while skip > 0:
        skip -= (i2s.readinto(buf) or 0) >> 2
    left, right = slot_spans(buf, i2s.readinto(buf) or 0)
    slot = 1 if right >= ACTIVE_SPAN > left else 0
    print(f"noise: I2S slots left={left} right={right}: reading slot {slot}")
    writer = payload.Writer()
    fw = node.cfg.fw
    state = [1 << 30, 0]  # lowest free heap after a collection, readings lost to flash

    def sink(reading: NoiseReading) -> None:
        ring = node.ring
        seq = ring.next_seq()
        try:
            msg = noise_message(writer, reading, node.clock.now(), seq, fw)
            ring.append(msg, NOISE_KIND)
        except OSError as exc:
            state[1] += 1
            print(f"store: reading {seq} lost: flash: {exc!r}")
        node.ready.set()
        gc.collect()
        free = gc.mem_free()
        if free < state[0]:
            state[0] = free
        print(
            f"noise seq={seq} buffered={len(ring)} dropped={ring.dropped} "
            f"heap_free={free} heap_min={state[0]}"
        )

    return NoiseSampler(mtr, SlotStream(asyncio.StreamReader(i2s), slot), sink, buf)
