"""Plantower PMS5003 laser PM sensor on a UART (9600 8N1).

Pure part: the 32-byte data frame ``42 4D 00 1C`` + 13 big-endian words + a
16-bit checksum (sum of bytes 0-29), the 8-byte command acknowledgement
``42 4D 00 04 CMD DATA CSH CSL``, the 7-byte command ``42 4D CMD 00 DATA CSH CSL``
and a frame synchroniser. Source: Plantower PMS5003 data manual V2.3 (appendix
for the commands); the acknowledgements as observed on real units (wake-up is
not acknowledged).

Words of the data frame (index: meaning): 0-2 PM1/PM2.5/PM10 "CF=1 standard
particle" ug/m3; 3-5 the same "atmospheric environment"; 6-11 particles per
0.1 L larger than 0.3/0.5/1.0/2.5/5/10 um; 12 version (high byte) and error
code (low byte). A PMS5003T carries temperature and humidity in words 10-11.

Transport: ``PMS5003`` over a ``machine.UART``-like object: passive/active
mode, read, sleep/wake, and a sampling cycle (wake, 30 s warm-up, samples at
1 Hz, sleep) with trimmed means.
"""

import time

from micropython import const

from .errors import ChecksumError, FrameError, NoReply, SensorMissing
from .framesync import BAD_CHECKSUM, BAD_HEADER, BAD_LENGTH, FRAME_OK, FrameReader, FrameSync
from .runhours import RunHours
from .trimmed import TrimmedMean

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from collections.abc import Iterator

    from .hwtypes import Clock, UartLike

_NAME = "pms5003"
_HEAD0 = const(0x42)
_HEAD1 = const(0x4D)
DATA_LEN = const(32)
ACK_LEN = const(8)
COMMAND_LEN = const(7)
_DATA_FIELD = const(28)  # length field of a data frame: 13 words + checksum
_ACK_FIELD = const(4)

CMD_MODE = const(0xE1)
CMD_READ = const(0xE2)
CMD_SLEEP = const(0xE4)
MODE_PASSIVE = const(0)
MODE_ACTIVE = const(1)
_SLEEP = const(0)
_WAKE = const(1)

# Word indexes in the data frame.
PM1_CF1 = const(0)
PM2_5_CF1 = const(1)
PM10_CF1 = const(2)
PM1_ATM = const(3)
PM2_5_ATM = const(4)
PM10_ATM = const(5)
COUNT_0_3 = const(6)
COUNT_0_5 = const(7)
COUNT_1_0 = const(8)
COUNT_2_5 = const(9)
COUNT_5_0 = const(10)
COUNT_10 = const(11)
_WORDS = const(13)

# Data manual: wait at least 30 s after wake-up for stable values.
WARMUP_MS = const(30_000)
SAMPLES = const(5)
INTERVAL_MS = const(1_000)


def sum16(buf: bytes | bytearray, start: int, end: int) -> int:
    """Low 16 bits of the sum of ``buf[start:end]``."""
    total = 0
    for i in range(start, end):
        total += buf[i]
    return total & 0xFFFF


def word(buf: bytes | bytearray, index: int) -> int:
    """Data word ``index`` (0-12) of a data frame (allocation-free)."""
    i = 4 + 2 * index
    return (buf[i] << 8) | buf[i + 1]


def frame_length(buf: bytes | bytearray) -> int:
    """Total length given by the header's length field: 32, 8, or 0 when invalid."""
    field = (buf[2] << 8) | buf[3]
    if field == _DATA_FIELD:
        return DATA_LEN
    if field == _ACK_FIELD:
        return ACK_LEN
    return 0


def frame_error(buf: bytes | bytearray, length: int) -> int:
    """Check a data (32) or acknowledgement (8) frame; FRAME_OK or a BAD_* code."""
    if buf[0] != _HEAD0 or buf[1] != _HEAD1:
        return BAD_HEADER
    if frame_length(buf) != length:
        return BAD_LENGTH
    if sum16(buf, 0, length - 2) != (buf[length - 2] << 8) | buf[length - 1]:
        return BAD_CHECKSUM
    return FRAME_OK


def _check(buf: bytes | bytearray, length: int) -> None:
    if len(buf) < length:
        raise FrameError(_NAME, BAD_LENGTH, f"frame of {len(buf)} bytes, need {length}")
    err = frame_error(buf, length)
    if err == BAD_CHECKSUM:
        raise ChecksumError(
            _NAME, err, sum16(buf, 0, length - 2), (buf[length - 2] << 8) | buf[length - 1]
        )
    if err != FRAME_OK:
        raise FrameError(_NAME, err, f"bad frame {bytes(buf[:length]).hex()}")


class DataFrame:
    """A parsed data frame.

    ``pm1_cf1``, ``pm2_5_cf1``, ``pm10_cf1`` ("CF=1 standard particle") and
    ``pm1_atm``, ``pm2_5_atm``, ``pm10_atm`` ("atmospheric environment") in
    ug/m3; ``counts``: particles per 0.1 L larger than 0.3, 0.5, 1.0, 2.5, 5
    and 10 um; ``version`` and ``error`` bytes.
    """

    def __init__(self, buf: bytes | bytearray) -> None:
        self.pm1_cf1 = word(buf, PM1_CF1)
        self.pm2_5_cf1 = word(buf, PM2_5_CF1)
        self.pm10_cf1 = word(buf, PM10_CF1)
        self.pm1_atm = word(buf, PM1_ATM)
        self.pm2_5_atm = word(buf, PM2_5_ATM)
        self.pm10_atm = word(buf, PM10_ATM)
        self.counts = tuple(word(buf, i) for i in range(COUNT_0_3, COUNT_10 + 1))
        self.version = buf[28]
        self.error = buf[29]


class Ack:
    """A command acknowledgement: the ``command`` and its ``data`` byte."""

    def __init__(self, command: int, data: int) -> None:
        self.command = command
        self.data = data


def parse_data(buf: bytes | bytearray) -> DataFrame:
    """Parse a 32-byte data frame; raises FrameError or ChecksumError when bad."""
    _check(buf, DATA_LEN)
    return DataFrame(buf)


def parse_ack(buf: bytes | bytearray) -> Ack:
    """Parse an 8-byte acknowledgement; raises FrameError or ChecksumError when bad."""
    _check(buf, ACK_LEN)
    return Ack(buf[4], buf[5])


def build_command(command: int, data: int = 0) -> bytearray:
    """A 7-byte command frame ``42 4D CMD 00 DATA`` + 16-bit sum."""
    if not 0 <= data <= 0xFF:
        raise ValueError(f"command data {data} out of range 0..255")
    frame = bytearray(COMMAND_LEN)
    frame[0] = _HEAD0
    frame[1] = _HEAD1
    frame[2] = command
    frame[4] = data
    total = sum16(frame, 0, 5)
    frame[5] = total >> 8
    frame[6] = total & 0xFF
    return frame


def mode_command(mode: int) -> bytearray:
    """MODE_PASSIVE (data only on ``read_command``) or MODE_ACTIVE (streaming)."""
    if mode != MODE_PASSIVE and mode != MODE_ACTIVE:
        raise ValueError(f"mode {mode}: expected 0 (passive) or 1 (active)")
    return build_command(CMD_MODE, mode)


def read_command() -> bytearray:
    """Passive mode: ask for one data frame."""
    return build_command(CMD_READ, 0)


def sleep_command() -> bytearray:
    return build_command(CMD_SLEEP, _SLEEP)


def wake_command() -> bytearray:
    """Fan and laser on; not acknowledged. Wait 30 s for stable values."""
    return build_command(CMD_SLEEP, _WAKE)


class PMS5003Sync(FrameSync):
    """Finds 32-byte data frames and 8-byte acknowledgements in the byte stream."""

    def __init__(self) -> None:
        super().__init__(_HEAD0, b"\x4d", 4, DATA_LEN)

    def frame_length(self, buf: bytearray) -> int:
        return frame_length(buf)

    def check(self, buf: bytearray, length: int) -> int:
        return frame_error(buf, length)


class PMS5003Reading:
    """One sampling cycle: trimmed means in ug/m3 of the six mass concentrations.

    ``pm1``, ``pm2_5``, ``pm10`` are the CF=1 values (what the EPA/PurpleAir
    corrections take), ``pm1_atm``, ``pm2_5_atm``, ``pm10_atm`` the
    atmospheric ones. ``samples`` frames were averaged, ``missed`` reads got
    none, ``asleep`` is False when the sleep command was not acknowledged.
    """

    def __init__(self, means: list[float], samples: int, missed: int, asleep: bool) -> None:
        self.pm1 = means[PM1_CF1]
        self.pm2_5 = means[PM2_5_CF1]
        self.pm10 = means[PM10_CF1]
        self.pm1_atm = means[PM1_ATM]
        self.pm2_5_atm = means[PM2_5_ATM]
        self.pm10_atm = means[PM10_ATM]
        self.samples = samples
        self.missed = missed
        self.asleep = asleep


class PMS5003:
    """Thin transport for one PMS5003 on ``uart`` (9600 8N1); the UART is passed in.

    ``frame`` holds a copy of the last valid data frame (read it with
    ``word``); waits are bounded by ``reply_ms`` on ``clock``; ``hours``
    accumulates fan/laser time between wake and a confirmed sleep; ``sync``
    counts frames, garbage and bad frames, ``stray`` valid frames that were
    not the one awaited.

    A unit fresh from power-up streams in active mode through the first
    warm-up (30 frames, 960 bytes): give the UART ``rxbuf=1024`` or the
    overflow is cut frames, which the synchroniser skips and counts.
    """

    def __init__(
        self,
        uart: UartLike,
        clock: Clock = time,
        reply_ms: int = 1000,
        poll_ms: int = 10,
        hours: RunHours | None = None,
        attempts: int = 2,
    ) -> None:
        self.sync = PMS5003Sync()
        self._reader = FrameReader(uart, self.sync, clock, poll_ms)
        self._uart = uart
        self._clock = clock
        self._reply_ms = reply_ms
        self._attempts = attempts
        self.hours = hours if hours is not None else RunHours(clock)
        self._read = read_command()
        self._sleep = sleep_command()
        self._wake = wake_command()
        self._passive = mode_command(MODE_PASSIVE)
        self._active = mode_command(MODE_ACTIVE)
        self._accs = [TrimmedMean() for _ in range(6)]
        self.frame = bytearray(DATA_LEN)
        self.stray = 0
        self.last: PMS5003Reading | None = None

    def _await(self, length: int, command: int, timeout_ms: int) -> bool:
        # Wait for a data frame (length DATA_LEN) or the acknowledgement of
        # ``command``; data frames met on the way are kept in ``frame``.
        clock = self._clock
        sync = self.sync
        buf = sync.buf
        frame = self.frame
        t0 = clock.ticks_ms()
        while True:
            left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), t0)
            if left <= 0 or not self._reader.wait(left):
                return False
            if sync.length == DATA_LEN:
                for i in range(DATA_LEN):
                    frame[i] = buf[i]
                if length == DATA_LEN:
                    return True
            elif length == ACK_LEN and buf[4] == command:
                return True
            self.stray += 1

    def _command(self, frame: bytearray, command: int) -> int:
        # Send, wait for the acknowledgement; returns its data byte.
        for _ in range(self._attempts):
            self._uart.write(frame)
            if self._await(ACK_LEN, command, self._reply_ms):
                return self.sync.buf[5]
        raise NoReply(_NAME, command, self._attempts * self._reply_ms)

    def set_passive(self) -> None:
        """Passive mode: frames only on request. Raises NoReply when unacknowledged."""
        self._command(self._passive, CMD_MODE)

    def set_active(self) -> None:
        """Active mode: the sensor streams frames. Raises NoReply when unacknowledged."""
        self._command(self._active, CMD_MODE)

    def sleep(self) -> None:
        """Fan and laser off. Raises NoReply when unacknowledged (some units ignore it)."""
        self._command(self._sleep, CMD_SLEEP)
        self.hours.stop()
        self._reader.discard()

    def wake(self) -> None:
        """Fan and laser on. Not acknowledged by the sensor: nothing to wait for."""
        self._uart.write(self._wake)
        self.hours.start()

    def read(self) -> bool:
        """Passive mode: request one frame; True when ``frame`` is fresh. Allocation-free."""
        self._reader.discard()
        self._uart.write(self._read)
        return self._await(DATA_LEN, CMD_READ, self._reply_ms)

    def next_frame(self, timeout_ms: int = 3000) -> bool:
        """Active mode: wait for the next streamed frame; True when ``frame`` is fresh."""
        return self._await(DATA_LEN, CMD_READ, timeout_ms)

    def cycle(
        self, warmup_ms: int = WARMUP_MS, samples: int = SAMPLES, interval_ms: int = INTERVAL_MS
    ) -> Iterator[int]:
        """One measurement cycle in passive mode, as a generator of waits (ms).

        Wake, warm up, switch to passive mode (the sensor may come out of sleep
        in active mode), read ``samples`` frames ``interval_ms`` apart, sleep.
        The result is left in ``last``. Raises SensorMissing when no read got a
        frame.
        """
        self.last = None
        self.wake()
        yield warmup_ms
        try:
            self.set_passive()
        except NoReply:
            pass  # a silent sensor shows below as reads without frames
        clock = self._clock
        accs = self._accs
        for acc in accs:
            acc.reset()
        frame = self.frame
        missed = 0
        for i in range(samples):
            t0 = clock.ticks_ms()
            if self.read():
                for k in range(6):
                    accs[k].add((frame[4 + 2 * k] << 8) | frame[5 + 2 * k])
            else:
                missed += 1
            if i + 1 < samples:
                left = interval_ms - clock.ticks_diff(clock.ticks_ms(), t0)
                if left > 0:
                    yield left
        asleep = True
        try:
            self.sleep()
        except NoReply:
            asleep = False
        means = []
        for acc in accs:
            mean = acc.mean()
            if mean is None:
                raise SensorMissing(_NAME, f"no data frame for {samples} reads")
            means.append(mean)
        self.last = PMS5003Reading(means, accs[0].count, missed, asleep)

    def measure(
        self, warmup_ms: int = WARMUP_MS, samples: int = SAMPLES, interval_ms: int = INTERVAL_MS
    ) -> PMS5003Reading:
        """``cycle`` run to the end with blocking sleeps; returns the reading."""
        for wait_ms in self.cycle(warmup_ms, samples, interval_ms):
            self._clock.sleep_ms(wait_ms)
        reading = self.last
        if reading is None:
            raise SensorMissing(_NAME, "cycle ended without a reading")
        return reading
