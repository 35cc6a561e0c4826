"""Where the meter's words come from: the INMP441 on ``machine.I2S``, or a byte stream.

A source has one method, ``readinto(buf) -> int``: it fills ``buf`` with 32-bit little-endian
I2S words (the INMP441's 24-bit sample MSB-aligned in each) and returns the number of bytes
written, a multiple of 4; 0 means the stream ended (never, for the microphone).

Bring-up (REFERENCE.md 1.6, 8.5): the INMP441 with L/R tied to GND talks in the left
(WS low) slot, but some ESP-IDF versions return zeros for a mono left read or swap the
slots. ``check_slots`` reads a stereo block and says which slot carries data, so the node
can report ``sensor_missing`` or pick the other slot instead of measuring silence.
"""

from micropython import const

from noise import kernel

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Readable(Protocol):
        def readinto(self, __buf: Any) -> int | None: ...


I2S_BITS = const(32)
DEFAULT_IBUF = const(16384)  # DMA buffer: 85 ms of mono 32-bit words at 48 kHz
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


def check_slots(i2s: Readable, buf: bytearray) -> tuple[bool, bool]:
    """(left active, right active) from one stereo read of ``i2s`` into ``buf``."""
    n = i2s.readinto(buf) or 0
    left, right = slot_spans(buf, n)
    return left >= ACTIVE_SPAN, right >= ACTIVE_SPAN


class I2SSource:
    """The microphone: ``machine.I2S`` in mono mode (or any object with ``readinto``)."""

    def __init__(self, i2s: Readable) -> None:
        self._i2s = i2s

    def readinto(self, buf: bytearray) -> int:
        return self._i2s.readinto(buf) or 0


class SlotSource:
    """The microphone's slot out of ``machine.I2S`` in stereo mode.

    For ESP-IDF versions that return zeros for a mono read of the left slot or swap the
    slots: ``check_slots`` says which slot talks, and this source keeps only that one.
    ``readinto`` fills ``buf`` with mono words like ``I2SSource``; it reads twice as many
    bytes into its own buffer, allocated once for blocks of up to ``block`` words.
    """

    def __init__(self, i2s: Readable, slot: int, block: int) -> None:
        if slot not in (0, 1):
            raise ValueError(f"slot {slot!r}: 0 (left) or 1 (right)")
        self._i2s = i2s
        self._slot = slot
        self._stereo = bytearray(8 * block)
        self._whole = memoryview(self._stereo)

    def readinto(self, buf: bytearray) -> int:
        words = min(len(buf) >> 2, len(self._stereo) >> 3)
        whole = 8 * words == len(self._stereo)
        n = self._i2s.readinto(self._whole if whole else self._whole[: 8 * words]) or 0
        pairs = n >> 3
        kernel.pick(self._stereo, pairs, self._slot, buf)
        return 4 * pairs


class StreamSource:
    """Words from a byte stream (a file, or ``sys.stdin.buffer`` on the host)."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.ended = False

    def readinto(self, buf: bytearray) -> int:
        """Fill ``buf`` unless the stream ends; whole words only."""
        view = memoryview(buf)
        got = 0
        size = len(buf)
        while got < size:
            n = self._stream.readinto(view[got:])
            if not n:
                self.ended = True
                break
            got += n
        return got & ~3
