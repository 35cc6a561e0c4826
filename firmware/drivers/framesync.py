"""Finding frames in a noisy UART byte stream.

``FrameSync`` is pure: bytes in, whole checked frames out. It resynchronises
after garbage, truncated frames and corrupted checksums by rescanning the
rejected bytes for the next header, so a good frame that began inside a bad one
is still found. Every byte fed ends up in exactly one place: a delivered frame,
the ``garbage`` count, or the pending partial frame.

``FrameReader`` is the thin transport: it moves bytes from a ``machine.UART``-like
object (``any`` and ``readinto`` only) into a ``FrameSync``, waiting with a
bounded deadline on an injected clock. Neither allocates per byte or per frame.
"""

import time

from micropython import const

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from .hwtypes import Clock, UartLike

# Frame check results, shared by the chip modules' ``frame_error`` functions.
FRAME_OK = const(0)
BAD_HEADER = const(1)
BAD_LENGTH = const(2)
BAD_CHECKSUM = const(3)
BAD_TAIL = const(4)


class FrameSync:
    """Base synchroniser for frames that start with ``head0`` and one of ``head1s``.

    A subclass implements ``frame_length(buf)`` (the total frame length, read
    from the first ``header_len`` bytes; 0 when that header is invalid) and
    ``check(buf, length)`` (FRAME_OK or a BAD_* code).

    After ``feed`` returns, a non-zero ``length`` means ``buf[:length]`` holds a
    valid frame; it stays there until the next ``feed`` call.
    """

    def __init__(self, head0: int, head1s: bytes, header_len: int, max_len: int) -> None:
        self.buf = bytearray(max_len)
        self.length = 0
        self.frames = 0
        self.garbage = 0
        self.bad_checksum = 0
        self.bad_format = 0
        self._head0 = head0
        self._head1s = head1s
        self._header_len = header_len
        self._n = 0
        self._flen = 0

    def frame_length(self, buf: bytearray) -> int:
        raise NotImplementedError

    def check(self, buf: bytearray, length: int) -> int:
        raise NotImplementedError

    def pending(self) -> int:
        """Bytes held as the start of a frame not yet complete."""
        return self._n - self.length

    def reset(self) -> None:
        """Forget a partial frame (its bytes count as garbage), e.g. after a sleep."""
        self.garbage += self._n - self.length
        self._n = 0
        self._flen = 0
        self.length = 0

    def feed(self, data: bytearray, start: int, end: int) -> int:
        """Consume ``data[start:end]`` until a valid frame is complete.

        Returns the index after the last byte consumed: ``end``, or earlier when
        a frame became ready (``length`` > 0). An empty range still hands out a
        frame that was already complete in the buffer.
        """
        if self.length:
            self._shift(self.length)
            self.length = 0
            if self._settle():
                return start
        buf = self.buf
        head0 = self._head0
        i = start
        while i < end:
            b = data[i]
            i += 1
            n = self._n
            if n == 0 and b != head0:
                self.garbage += 1
                continue
            buf[n] = b
            self._n = n + 1
            if self._settle():
                return i
        return i

    def _settle(self) -> bool:
        # Decide about the candidate in buf[:_n]: True when it is a valid frame.
        # A rejected candidate loses its first byte and whatever precedes the
        # next head0 (all counted as garbage); the rest is examined again.
        buf = self.buf
        while True:
            n = self._n
            if n < 2:
                return False
            if buf[1] in self._head1s:
                if n < self._header_len:
                    return False
                flen = self._flen
                if flen == 0:
                    flen = self.frame_length(buf)
                    self._flen = flen
                if flen == 0:
                    self.bad_format += 1
                else:
                    if n < flen:
                        return False
                    result = self.check(buf, flen)
                    if result == FRAME_OK:
                        self.length = flen
                        self.frames += 1
                        return True
                    if result == BAD_CHECKSUM:
                        self.bad_checksum += 1
                    else:
                        self.bad_format += 1
            self.garbage += 1
            self._shift(1)

    def _shift(self, k: int) -> None:
        # Drop buf[:k] and any following bytes up to the next head0 (garbage).
        buf = self.buf
        n = self._n
        head0 = self._head0
        while k < n and buf[k] != head0:
            k += 1
            self.garbage += 1
        j = 0
        while k < n:
            buf[j] = buf[k]
            j += 1
            k += 1
        self._n = j
        self._flen = 0


class FrameReader:
    """Moves bytes from a UART into a FrameSync; the wait is bounded by a deadline."""

    def __init__(
        self, uart: UartLike, sync: FrameSync, clock: Clock = time, poll_ms: int = 10
    ) -> None:
        self.sync = sync
        self._uart = uart
        self._clock = clock
        self._poll_ms = poll_ms
        self._rx = bytearray(64)
        self._pos = 0
        self._end = 0

    def poll(self) -> bool:
        """Process what has arrived; True when a frame is ready in ``sync.buf``. Never waits."""
        sync = self.sync
        rx = self._rx
        while True:
            self._pos = sync.feed(rx, self._pos, self._end)
            if sync.length:
                return True
            avail = self._uart.any()
            if not avail:
                return False
            if avail > len(rx):
                avail = len(rx)
            got = self._uart.readinto(rx, avail)
            if not got:
                return False
            self._pos = 0
            self._end = got

    def wait(self, timeout_ms: int) -> bool:
        """Wait up to ``timeout_ms`` for the next frame; True when one is ready."""
        clock = self._clock
        t0 = clock.ticks_ms()
        while not self.poll():
            if clock.ticks_diff(clock.ticks_ms(), t0) >= timeout_ms:
                return False
            clock.sleep_ms(self._poll_ms)
        return True

    def discard(self) -> None:
        """Drop everything received but not yet framed (counted as garbage)."""
        self.sync.garbage += self._end - self._pos
        self._pos = 0
        self._end = 0
        self.sync.reset()
        uart = self._uart
        rx = self._rx
        avail = uart.any()
        while avail:
            if avail > len(rx):
                avail = len(rx)
            got = uart.readinto(rx, avail)
            if not got:
                break
            self.sync.garbage += got
            avail = uart.any()
