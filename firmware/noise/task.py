"""The noise node's sampling task and its payload: the meter on the microphone, readings out.

``NoiseSampler.run`` is an asyncio task beside the air sampler: it awaits each block of I2S
words (``asyncio.StreamReader`` over ``machine.I2S``, which supports polling), feeds the
meter, and hands each finished period to ``sink`` (which, on the node, writes the message
into the same flash ring as the air readings and wakes the uplink). ``noise_message``
writes payload v1 for ``commons/v1/<node_id>/noise`` into the node's preallocated
``payload.Writer``, as ``payload.air`` does for air readings.

The meter needs every sample: the I2S DMA buffer (``source.DEFAULT_IBUF``, 16 KB: 43 ms of
the stereo frames the node reads at 48 kHz) must not overrun while other tasks hold the
event loop, so no task may block it for longer than that. One feed of a 1024-word block
takes about 3-4 ms of the ESP32 (docs/noise-performance.md).
"""

import time

from micropython import const

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    from noise.meter import NoiseMeter, NoiseReading

    class AsyncReadable(Protocol):
        async def readinto(self, __buf: Any) -> int | None: ...

    class WriterLike(Protocol):
        def reset(self) -> None: ...
        def raw(self, data: bytes) -> None: ...
        def byte(self, b: int) -> None: ...
        def key(self, name: bytes) -> None: ...
        def integer(self, value: int) -> None: ...
        def fixed(self, value: float, decimals: int) -> None: ...
        def text(self, value: str) -> None: ...
        def view(self) -> memoryview: ...


LEVEL_DECIMALS = const(1)  # dB(A) to 0.1 dB, as sound level meters show them
_LEVELS = (b"laeq", b"lafmax", b"lafmin", b"la10", b"la50", b"la90")


def noise_message(w: WriterLike, r: NoiseReading, ts: int | None, seq: int, fw: str) -> memoryview:
    """The ``noise`` message (payload v1) for reading ``r`` as record ``seq``."""
    w.reset()
    w.raw(b'{"v":1')
    if ts is not None:
        w.key(b"ts")
        w.integer(ts)
    w.key(b"seq")
    w.integer(seq)
    w.key(b"fw")
    w.text(fw)
    w.key(b"flags")
    w.byte(91)  # "["
    first = True
    for flag in r.flags():
        if not first:
            w.byte(44)
        w.text(flag)
        first = False
    w.byte(93)  # "]"
    w.key(b"period")
    w.integer(int(r.period + 0.5))
    values = (r.laeq, r.lafmax, r.lafmin, r.la10, r.la50, r.la90)
    for i in range(len(_LEVELS)):
        w.key(_LEVELS[i])
        w.fixed(values[i], LEVEL_DECIMALS)
    w.byte(125)  # "}"
    return w.view()


class NoiseSampler:
    """Owns the meter; ``run()`` is the task. ``heartbeat`` (ticks) shows it is alive."""

    def __init__(
        self,
        meter: NoiseMeter,
        stream: AsyncReadable,
        sink: Callable[[NoiseReading], None],
        buf: bytearray | None = None,
    ) -> None:
        self.meter = meter
        self.stream = stream
        self.sink = sink
        # Words read per block: ``buf`` (4 * block bytes) when the caller already has one.
        self.buf = buf if buf is not None else bytearray(4 * meter.config.block)
        self.heartbeat = time.ticks_ms()
        self.blocks = 0
        self.readings = 0

    async def run(self) -> None:
        buf = self.buf
        meter = self.meter
        while True:
            n = await self.stream.readinto(buf) or 0
            if n >= 4:
                reading = meter.feed(buf, n >> 2)
                self.blocks += 1
                if reading is not None:
                    self.readings += 1
                    self.sink(reading)
            self.heartbeat = time.ticks_ms()
