"""Sources of I2S words for tools and tests: a byte stream, a blocking ``machine.I2S`` read,
one slot of a stereo read, and the both-slot check of one block (REFERENCE.md 8.5).

Same interface as ``noise.source``: ``readinto(buf) -> int`` fills ``buf`` with 32-bit
little-endian words and returns the bytes written (a multiple of 4; 0: the stream ended).
Kept apart from ``noise.source`` so a node does not load them.
"""

from micropython import const

from noise import kernel
from noise.source import ACTIVE_SPAN, slot_spans

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from noise.source import Readable


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
