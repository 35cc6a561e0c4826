"""Byte-level stand-ins for the clock and the UART, for the MicroPython unix port.

The fake clock moves only when the code under test sleeps, so a 15 s warm-up
takes no real time. The fake UART hands the driver bytes fed by the test or
produced by an attached device model, and records every byte written into a
preallocated buffer, so a driver can be run with the heap locked.
"""

from drivers.errors import SensorError, SensorMissing

TICKS_PERIOD = 1 << 30  # the ESP32's ticks_ms wraps here
_TICKS_MASK = TICKS_PERIOD - 1
_TICKS_HALF = TICKS_PERIOD // 2


class FakeClock:
    """The ``time`` module's ticks_ms / ticks_diff / sleep_ms on simulated milliseconds.

    ``now`` starts 5 s before the tick counter wraps, so every test crosses
    the wrap the way a long-running node does.
    """

    def __init__(self, start_ms=TICKS_PERIOD - 5000):
        self.now = start_ms
        self.slept = 0
        self.sleeps = 0

    def ticks_ms(self):
        return self.now & _TICKS_MASK

    def ticks_diff(self, ticks1, ticks2):
        return ((ticks1 - ticks2 + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF

    def sleep_ms(self, ms):
        self.now += ms
        self.slept += ms
        self.sleeps += 1


class FakeUart:
    """``machine.UART`` with only any, read, readinto and write.

    Bytes to receive come from ``feed`` or from ``device`` (an object with
    ``on_write(uart, data, now)`` and ``pump(uart, now)``). ``chunk`` caps the
    bytes one read returns, so frames arrive in pieces. With ``release`` set,
    fed bytes are held back and each write makes ``release`` more of them
    readable: a scripted sensor that answers every command, allocation-free.
    """

    def __init__(self, clock=None, device=None, chunk=0, size=8192, release=0):
        self._clock = clock
        self._device = device
        self._chunk = chunk
        self._rx = bytearray(size)
        self._head = 0
        self._count = 0
        self._held = 0
        self._release = release
        self.tx = bytearray(size)
        self.tx_len = 0
        self.writes = 0
        self.read_calls = 0

    def feed(self, data):
        size = len(self._rx)
        for b in data:
            stored = self._count + self._held
            if stored == size:
                raise OverflowError("fake UART receive buffer full")
            self._rx[(self._head + stored) % size] = b
            if self._release:
                self._held += 1
            else:
                self._count += 1

    def _pump(self):
        if self._device is not None:
            self._device.pump(self, self._clock.now)

    def any(self):
        self._pump()
        return self._count

    def readinto(self, buf, nbytes=-1):
        self._pump()
        self.read_calls += 1
        n = len(buf) if nbytes < 0 else nbytes
        if self._chunk and n > self._chunk:
            n = self._chunk
        if n > self._count:
            n = self._count
        if n == 0:
            return None  # machine.UART returns None on timeout
        size = len(self._rx)
        for i in range(n):
            buf[i] = self._rx[self._head]
            self._head = (self._head + 1) % size
        self._count -= n
        return n

    def read(self, nbytes=-1):
        buf = bytearray(self._count if nbytes < 0 else nbytes)
        n = self.readinto(buf)
        return None if n is None else bytes(buf[:n])

    def write(self, data):
        for i in range(len(data)):  # indexing, not iterating: no allocation
            self.tx[self.tx_len] = data[i]
            self.tx_len += 1
        self.writes += 1
        if self._release:
            n = self._release if self._release < self._held else self._held
            self._held -= n
            self._count += n
        if self._device is not None:
            self._device.on_write(self, bytes(data), self._clock.now)
        return len(data)

    def written(self):
        return bytes(self.tx[: self.tx_len])


_FIELDS = (
    "sensor",
    "detail",
    "command",
    "waited_ms",
    "address",
    "errno",
    "chip_id",
    "polls",
    "reason",
    "computed",
    "received",
    "expected",
    "value",
    "quantity",
    "raw",
)


def describe_error(exc):
    """The driver exception as JSON-able data: class, message, fields, whether 'missing'."""
    out = {
        "type": type(exc).__name__,
        "message": str(exc),
        "missing": isinstance(exc, SensorMissing),
        "sensor_error": isinstance(exc, SensorError),
    }
    for name in _FIELDS:
        if hasattr(exc, name):
            out[name] = getattr(exc, name)
    return out


def heap_locked(func, times):
    """Call ``func()`` ``times`` times with the heap locked; the error text if it allocated."""
    import micropython

    failure = None
    micropython.heap_lock()
    try:
        for _ in range(times):
            func()
    except MemoryError as exc:
        failure = exc
    finally:
        micropython.heap_unlock()
    return None if failure is None else str(failure)


def run_sync(sync, stream_hex, chunk=0):
    """Feed a hex byte stream to a FrameSync in ``chunk``-byte reads; frames and counters."""
    stream = bytearray(bytes.fromhex(stream_hex))
    step = chunk or len(stream) or 1
    frames = []
    start = 0
    while start < len(stream):
        end = min(start + step, len(stream))
        pos = start
        while pos < end:
            pos = sync.feed(stream, pos, end)
            if sync.length:
                frames.append(bytes(sync.buf[: sync.length]).hex())
        start = end
    while True:  # an empty feed hands out a frame still waiting in the buffer
        sync.feed(stream, len(stream), len(stream))
        if not sync.length:
            break
        frames.append(bytes(sync.buf[: sync.length]).hex())
    return {
        "frames": frames,
        "counted": sync.frames,
        "garbage": sync.garbage,
        "bad_checksum": sync.bad_checksum,
        "bad_format": sync.bad_format,
        "pending": sync.pending(),
        "total": len(stream),
    }
