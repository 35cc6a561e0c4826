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
    """The meter on the INMP441 (mono ``machine.I2S`` read through ``asyncio.StreamReader``).

    Each finished period is written as a ``noise`` message into the node's ring (one seq
    counter with the air readings) and wakes the uplink; a console line reports it.
    """
    import asyncio

    import payload

    from noise.meter import NoiseMeter
    from noise.source import open_i2s
    from noise.task import NoiseSampler, noise_message

    assert nc.i2s is not None and nc.sck is not None and nc.ws is not None
    assert nc.sd is not None
    i2s = open_i2s(nc.i2s, nc.sck, nc.ws, nc.sd, nc.rate)
    gc.collect()
    mtr = NoiseMeter(nc)
    gc.collect()
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

    return NoiseSampler(mtr, asyncio.StreamReader(i2s), sink)
