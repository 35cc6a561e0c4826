"""Where the node's meter gets its words: the INMP441 on ``machine.I2S``, one slot of it.

A source has one method, ``readinto(buf) -> int``: it fills ``buf`` with 32-bit little-endian
I2S words (the INMP441's 24-bit sample MSB-aligned in each) and returns the number of bytes
written, a multiple of 4; 0 means the stream ended (never, for the microphone). Only what
the node loads is here; sources for tools and tests (a file, a blocking read, the slot
check of one block) are in ``noise.streams``.

Bring-up (REFERENCE.md 1.6, 8.5): the INMP441 with L/R tied to GND talks in the left
(WS low) slot, but some ESP-IDF versions return zeros for a mono left read or swap the
slots. ``slot_spans`` says which slot of a stereo block carries data, so the node reads
that slot (``SlotStream``) instead of measuring silence.
"""

from micropython import const

from noise import kernel

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Readable(Protocol):
        def readinto(self, __buf: Any) -> int | None: ...

    class AsyncReadable(Protocol):
        async def readinto(self, __buf: Any) -> int | None: ...


I2S_BITS = const(32)
DEFAULT_IBUF = const(16384)  # DMA buffer: 85 ms of mono words at 48 kHz, 43 ms of stereo
# A slot whose samples span less than this (24-bit counts) is dead: the INMP441's own
# noise floor alone is about 375 counts RMS (-87 dBFS).
ACTIVE_SPAN = const(16)


def open_i2s(
    bus: int, sck: int, ws: int, sd: int, rate: int, stereo: bool = False, ibuf: int = DEFAULT_IBUF
) -> Any:
    """``machine.I2S`` receiving 32-bit slots from an INMP441 (device only)."""
    from machine import I2S, Pin

    return I2S(
        bus,
        sck=Pin(sck),
        ws=Pin(ws),
        sd=Pin(sd),
        mode=I2S.RX,
        bits=I2S_BITS,
        format=I2S.STEREO if stereo else I2S.MONO,
        rate=rate,
        ibuf=ibuf,
    )


def slot_spans(buf: bytearray, nbytes: int) -> tuple[int, int]:
    """Peak-to-peak span of the 24-bit samples in the left and right slots of a stereo block."""
    lo = [1 << 24, 1 << 24]
    hi = [-(1 << 24), -(1 << 24)]
    for i in range(0, nbytes - 3, 4):
        s = (buf[i + 1] | (buf[i + 2] << 8) | (buf[i + 3] << 16)) & 0xFFFFFF
        if s & 0x800000:
            s -= 0x1000000
        slot = (i >> 2) & 1
        if s < lo[slot]:
            lo[slot] = s
        if s > hi[slot]:
            hi[slot] = s
    return max(0, hi[0] - lo[0]), max(0, hi[1] - lo[1])


class SlotStream:
    """One slot of a stereo ``machine.I2S`` read through ``asyncio.StreamReader``: the node's
    microphone (``noise.node``), whichever slot the bring-up found talking.

    ``readinto(buf)`` reads whole stereo frames into ``buf`` itself and moves the slot's
    words to its front (in place: word ``i`` comes from word ``2i + slot``), so it returns at
    most ``len(buf) // 8`` words and needs no buffer of its own. I2S reads return whole
    frames (8 bytes in stereo), so the slots never shift.
    """

    def __init__(self, reader: AsyncReadable, slot: int) -> None:
        if slot not in (0, 1):
            raise ValueError(f"slot {slot!r}: 0 (left) or 1 (right)")
        self._reader = reader
        self._slot = slot

    async def readinto(self, buf: bytearray) -> int:
        pairs = (await self._reader.readinto(buf) or 0) >> 3
        kernel.pick(buf, pairs, self._slot, buf)
        return 4 * pairs
