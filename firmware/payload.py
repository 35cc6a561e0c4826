"""Payload v1 (commons/contract.py): air readings and status messages as JSON bytes.

Written by hand into one preallocated ``bytearray`` instead of building a dict
for ``json.dumps``: the sample loop then allocates only the few float boxes
the values themselves need. Values go out with a fixed number of decimals, as
numbers (never NaN or infinity: a missing value is left out).
"""

from micropython import const

TOPIC_ROOT = "commons/v1/"

# QA flags, by the bits the sampler sets; names as in the contract.
WARMUP = const(1)
RH_HIGH = const(2)
SENSOR_MISSING = const(4)
OUT_OF_RANGE = const(8)
_FLAG_NAMES = (
    (WARMUP, b"warmup"),
    (RH_HIGH, b"rh_high"),
    (SENSOR_MISSING, b"sensor_missing"),
    (OUT_OF_RANGE, b"out_of_range"),
)
# REFERENCE 4.3: above 70 % RH optical PM sensors read high (hygroscopic growth).
RH_HIGH_PERCENT = const(70)

BUFFER_SIZE = const(384)


def topic(node_id: str, kind: str) -> str:
    return TOPIC_ROOT + node_id + "/" + kind


def offline_will() -> bytes:
    """The retained last will: the status fields a broker can know."""
    return b'{"v":1,"state":"offline"}'


class Writer:
    """Appends JSON pieces to a fixed buffer; ``view()`` is the message so far."""

    def __init__(self, size: int = BUFFER_SIZE) -> None:
        self.buf = bytearray(size)
        self._mv = memoryview(self.buf)
        self.n = 0
        self._digits = bytearray(20)

    def reset(self) -> None:
        self.n = 0

    def raw(self, data: bytes) -> None:
        end = self.n + len(data)
        if end > len(self.buf):
            raise ValueError(f"payload larger than {len(self.buf)} bytes")
        self.buf[self.n : end] = data
        self.n = end

    def byte(self, b: int) -> None:
        if self.n >= len(self.buf):
            raise ValueError(f"payload larger than {len(self.buf)} bytes")
        self.buf[self.n] = b
        self.n += 1

    def integer(self, value: int) -> None:
        if value < 0:
            self.byte(45)  # "-"
            value = -value
        d = self._digits
        i = 0
        while True:
            d[i] = 48 + value % 10
            value //= 10
            i += 1
            if value == 0:
                break
        while i:
            i -= 1
            self.byte(d[i])

    def fixed(self, value: float, decimals: int) -> None:
        """``value`` rounded to ``decimals`` (1 or 2) places, e.g. 12.4 or -3.05."""
        scale = 10 if decimals == 1 else 100
        scaled = int(value * scale + (0.5 if value >= 0 else -0.5))
        if scaled < 0:
            self.byte(45)
            scaled = -scaled
        self.integer(scaled // scale)
        self.byte(46)  # "."
        frac = scaled % scale
        if decimals == 2 and frac < 10:
            self.byte(48)
        self.integer(frac)

    def text(self, value: str) -> None:
        """A JSON string of printable ASCII (node ids, versions, reset causes)."""
        self.byte(34)
        self.raw(value.encode())
        self.byte(34)

    def key(self, name: bytes) -> None:
        """``,"name":`` (the comma always: every message starts with ``{"v":1``)."""
        self.byte(44)
        self.byte(34)
        self.raw(name)
        self.byte(34)
        self.byte(58)

    def view(self) -> memoryview:
        return self._mv[: self.n]


def _head(w: Writer, ts: int | None, seq: int | None, fw: str) -> None:
    w.reset()
    w.raw(b'{"v":1')
    if ts is not None:
        w.key(b"ts")
        w.integer(ts)
    if seq is not None:
        w.key(b"seq")
        w.integer(seq)
    w.key(b"fw")
    w.text(fw)


def _flags(w: Writer, flags: int) -> None:
    w.key(b"flags")
    w.byte(91)  # "["
    first = True
    for bit, name in _FLAG_NAMES:
        if flags & bit:
            if not first:
                w.byte(44)
            w.byte(34)
            w.raw(name)
            w.byte(34)
            first = False
    w.byte(93)  # "]"


def _value(w: Writer, name: bytes, value: float | None, decimals: int) -> None:
    if value is not None:
        w.key(name)
        w.fixed(value, decimals)


class AirReading:
    """One air sample, filled in place by the sampler (one instance, reused)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.ts: int | None = None
        self.flags = 0
        self.pm1: float | None = None
        self.pm2_5: float | None = None
        self.pm10: float | None = None
        self.temp: float | None = None
        self.rh: float | None = None
        self.pres: float | None = None


def air(w: Writer, r: AirReading, seq: int, fw: str) -> memoryview:
    """The ``air`` message for reading ``r`` as record ``seq``."""
    _head(w, r.ts, seq, fw)
    _flags(w, r.flags)
    _value(w, b"pm1", r.pm1, 1)
    _value(w, b"pm2_5", r.pm2_5, 1)
    _value(w, b"pm10", r.pm10, 1)
    _value(w, b"temp", r.temp, 2)
    _value(w, b"rh", r.rh, 1)
    _value(w, b"pres", r.pres, 2)
    w.byte(125)  # "}"
    return w.view()


class Status:
    """The node's health for the ``status`` message."""

    def __init__(self) -> None:
        self.uptime = 0
        self.heap_free = 0
        self.rssi: int | None = None
        self.buffered = 0
        self.reset_cause = "unknown"
        self.pm_hours: float | None = None
        self.state = "online"


def status(w: Writer, s: Status, ts: int | None, fw: str) -> memoryview:
    """The ``status`` message (not a reading: no ``seq``, never buffered)."""
    _head(w, ts, None, fw)
    w.key(b"state")
    w.text(s.state)
    w.key(b"uptime")
    w.integer(s.uptime)
    w.key(b"heap_free")
    w.integer(s.heap_free)
    if s.rssi is not None:
        w.key(b"rssi")
        w.integer(s.rssi)
    w.key(b"buffered")
    w.integer(s.buffered)
    w.key(b"reset_cause")
    w.text(s.reset_cause)
    _value(w, b"pm_hours", s.pm_hours, 2)
    w.byte(125)
    return w.view()
