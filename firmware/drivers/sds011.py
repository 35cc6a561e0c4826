"""Nova Fitness SDS011 laser PM sensor on a UART (9600 8N1).

Pure part: the 10-byte data frame ``AA C0 PM25L PM25H PM10L PM10H ID1 ID2 CS AB``
(CS = low byte of the sum of the six data bytes, PM = (high*256 + low)/10
ug/m3), the 10-byte reply ``AA C5 CMD D1 D2 D3 ID1 ID2 CS AB``, the 19-byte
command ``AA B4 CMD D1..D12 ID1 ID2 CS AB`` (CS over bytes 2..16) and a frame
synchroniser. Source: Nova laser dust sensor control protocol V1.3.

Transport: ``SDS011`` over a ``machine.UART``-like object: sleep/wake, query
mode, working period, firmware version, and one sampling cycle as airrohr does
it (wake, warm up 15 s, read for 5 s, sleep; trimmed mean of the 1 Hz samples).
"""

import time

from micropython import const

from .errors import ChecksumError, FrameError, NoReply, SensorMissing, UnexpectedReply
from .framesync import BAD_CHECKSUM, BAD_HEADER, BAD_TAIL, FRAME_OK, FrameReader, FrameSync
from .runhours import RunHours
from .trimmed import TrimmedMean

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from collections.abc import Iterator

    from .hwtypes import Clock, UartLike

_NAME = "sds011"
_HEAD = const(0xAA)
_TAIL = const(0xAB)
_SEND = const(0xB4)
DATA = const(0xC0)
REPLY = const(0xC5)
FRAME_LEN = const(10)
COMMAND_LEN = const(19)

CMD_REPORT_MODE = const(0x02)
CMD_QUERY = const(0x04)
CMD_DEVICE_ID = const(0x05)
CMD_SLEEP_WORK = const(0x06)
CMD_FIRMWARE = const(0x07)
CMD_WORKING_PERIOD = const(0x08)

MODE_ACTIVE = const(0)
MODE_QUERY = const(1)
ANY_DEVICE = const(0xFFFF)
MAX_WORKING_PERIOD_MIN = const(30)
_GET = const(0)
_SET = const(1)
_SLEEP = const(0)
_WORK = const(1)

# airrohr's practice (REFERENCE 4.3 / 8.1): warm up 15 s, then read 5 s at 1 Hz.
WARMUP_MS = const(15_000)
SAMPLES = const(5)
INTERVAL_MS = const(1_000)


def checksum(buf: bytes | bytearray, start: int, end: int) -> int:
    """Low byte of the sum of ``buf[start:end]``."""
    total = 0
    for i in range(start, end):
        total += buf[i]
    return total & 0xFF


def frame_error(buf: bytes | bytearray) -> int:
    """Check a 10-byte data or reply frame; FRAME_OK or a framesync.BAD_* code."""
    if buf[0] != _HEAD or (buf[1] != DATA and buf[1] != REPLY):
        return BAD_HEADER
    if buf[9] != _TAIL:
        return BAD_TAIL
    if checksum(buf, 2, 8) != buf[8]:
        return BAD_CHECKSUM
    return FRAME_OK


def _check(buf: bytes | bytearray, kind: int) -> None:
    if len(buf) < FRAME_LEN:
        raise FrameError(_NAME, BAD_TAIL, f"frame of {len(buf)} bytes, need {FRAME_LEN}")
    err = frame_error(buf)
    if err == BAD_CHECKSUM:
        raise ChecksumError(_NAME, err, checksum(buf, 2, 8), buf[8])
    if err != FRAME_OK:
        raise FrameError(_NAME, err, f"bad frame {bytes(buf[:FRAME_LEN]).hex()}")
    if buf[1] != kind:
        raise FrameError(_NAME, BAD_HEADER, f"frame kind 0x{buf[1]:02x}, expected 0x{kind:02x}")


def pm2_5_tenths(buf: bytes | bytearray) -> int:
    """PM2.5 of a checked data frame in 0.1 ug/m3 (allocation-free)."""
    return buf[2] | (buf[3] << 8)


def pm10_tenths(buf: bytes | bytearray) -> int:
    """PM10 of a checked data frame in 0.1 ug/m3 (allocation-free)."""
    return buf[4] | (buf[5] << 8)


def device_id(buf: bytes | bytearray) -> int:
    """The sensor's id carried in bytes 6-7 of a data or reply frame (ID1 high)."""
    return (buf[6] << 8) | buf[7]


class DataFrame:
    """A parsed data frame: ``pm2_5`` and ``pm10`` in ug/m3, ``device_id``."""

    def __init__(self, pm2_5: float, pm10: float, device_id: int) -> None:
        self.pm2_5 = pm2_5
        self.pm10 = pm10
        self.device_id = device_id


class Reply:
    """A parsed reply: the ``command`` answered, its data bytes ``d1``-``d3``, ``device_id``."""

    def __init__(self, command: int, d1: int, d2: int, d3: int, device_id: int) -> None:
        self.command = command
        self.d1 = d1
        self.d2 = d2
        self.d3 = d3
        self.device_id = device_id


def parse_data(buf: bytes | bytearray) -> DataFrame:
    """Parse a data frame; raises FrameError or ChecksumError (with fields) when bad."""
    _check(buf, DATA)
    return DataFrame(pm2_5_tenths(buf) / 10, pm10_tenths(buf) / 10, device_id(buf))


def parse_reply(buf: bytes | bytearray) -> Reply:
    """Parse a reply frame; raises FrameError or ChecksumError (with fields) when bad."""
    _check(buf, REPLY)
    return Reply(buf[2], buf[3], buf[4], buf[5], device_id(buf))


def build_command(
    command: int, data: bytes | bytearray = b"", device: int = ANY_DEVICE
) -> bytearray:
    """A 19-byte command frame; ``data`` fills D1.. (at most 12 bytes)."""
    if len(data) > 12:
        raise ValueError(f"{len(data)} data bytes for command 0x{command:02x}, at most 12")
    if not 0 <= device <= 0xFFFF:
        raise ValueError(f"device id {device} out of range 0..0xFFFF")
    frame = bytearray(COMMAND_LEN)
    frame[0] = _HEAD
    frame[1] = _SEND
    frame[2] = command
    for i in range(len(data)):
        frame[3 + i] = data[i]
    frame[15] = device >> 8
    frame[16] = device & 0xFF
    frame[17] = checksum(frame, 2, 17)
    frame[18] = _TAIL
    return frame


def report_mode_command(mode: int, device: int = ANY_DEVICE) -> bytearray:
    """Set the report mode: MODE_ACTIVE (a frame every second) or MODE_QUERY."""
    if mode != MODE_ACTIVE and mode != MODE_QUERY:
        raise ValueError(f"report mode {mode}: expected 0 (active) or 1 (query)")
    return build_command(CMD_REPORT_MODE, bytes((_SET, mode)), device)


def get_report_mode_command(device: int = ANY_DEVICE) -> bytearray:
    return build_command(CMD_REPORT_MODE, bytes((_GET,)), device)


def query_command(device: int = ANY_DEVICE) -> bytearray:
    """Ask for one data frame (query mode)."""
    return build_command(CMD_QUERY, b"", device)


def sleep_command(device: int = ANY_DEVICE) -> bytearray:
    """Laser and fan off. While asleep the sensor ignores all but ``work_command``."""
    return build_command(CMD_SLEEP_WORK, bytes((_SET, _SLEEP)), device)


def work_command(device: int = ANY_DEVICE) -> bytearray:
    """Laser and fan on."""
    return build_command(CMD_SLEEP_WORK, bytes((_SET, _WORK)), device)


def working_period_command(minutes: int, device: int = ANY_DEVICE) -> bytearray:
    """0 = continuous; 1-30 = work 30 s every ``minutes``. The sensor keeps it over power loss."""
    if not 0 <= minutes <= MAX_WORKING_PERIOD_MIN:
        raise ValueError(f"working period {minutes} min: not in 0..{MAX_WORKING_PERIOD_MIN}")
    return build_command(CMD_WORKING_PERIOD, bytes((_SET, minutes)), device)


def get_working_period_command(device: int = ANY_DEVICE) -> bytearray:
    return build_command(CMD_WORKING_PERIOD, bytes((_GET,)), device)


def firmware_version_command(device: int = ANY_DEVICE) -> bytearray:
    return build_command(CMD_FIRMWARE, b"", device)


def set_device_id_command(new_id: int, device: int = ANY_DEVICE) -> bytearray:
    if not 0 <= new_id < 0xFFFF:
        raise ValueError(f"new device id {new_id} out of range 0..0xFFFE")
    data = bytearray(12)
    data[10] = new_id >> 8
    data[11] = new_id & 0xFF
    return build_command(CMD_DEVICE_ID, data, device)


class SDS011Sync(FrameSync):
    """Finds 10-byte data (AA C0) and reply (AA C5) frames in the byte stream."""

    def __init__(self) -> None:
        super().__init__(_HEAD, b"\xc0\xc5", 2, FRAME_LEN)

    def frame_length(self, buf: bytearray) -> int:
        return FRAME_LEN

    def check(self, buf: bytearray, length: int) -> int:
        return frame_error(buf)


class SDS011Reading:
    """One sampling cycle: trimmed means ``pm2_5`` and ``pm10`` in ug/m3.

    ``samples`` data frames were averaged (min and max dropped when more than
    two), ``missed`` queries got no valid frame, ``asleep`` is False when the
    sensor did not confirm going back to sleep (its laser may still be on).
    """

    def __init__(self, pm2_5: float, pm10: float, samples: int, missed: int, asleep: bool) -> None:
        self.pm2_5 = pm2_5
        self.pm10 = pm10
        self.samples = samples
        self.missed = missed
        self.asleep = asleep


class SDS011:
    """Thin transport for one SDS011 on ``uart`` (9600 8N1); the UART is passed in.

    Waits are bounded: ``reply_ms`` for each reply, polling every ``poll_ms``
    on ``clock`` (the ``time`` module on the device, a fake in tests).
    ``hours`` accumulates laser-on time between confirmed wake and sleep.
    ``sync`` counts frames, garbage bytes and bad frames; ``stray`` counts
    valid frames that arrived while another one was awaited.
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
        self.sync = SDS011Sync()
        self._reader = FrameReader(uart, self.sync, clock, poll_ms)
        self._uart = uart
        self._clock = clock
        self._reply_ms = reply_ms
        self._attempts = attempts
        self.hours = hours if hours is not None else RunHours(clock)
        self._query = query_command()
        self._sleep = sleep_command()
        self._work = work_command()
        self._acc2_5 = TrimmedMean()
        self._acc10 = TrimmedMean()
        self.pm2_5_tenths = 0
        self.pm10_tenths = 0
        self.device_id = 0
        self.stray = 0
        self.last: SDS011Reading | None = None

    # -- frames ---------------------------------------------------------------

    def _take_data(self, buf: bytearray) -> None:
        self.pm2_5_tenths = buf[2] | (buf[3] << 8)
        self.pm10_tenths = buf[4] | (buf[5] << 8)
        self.device_id = (buf[6] << 8) | buf[7]

    def _await(self, kind: int, command: int, timeout_ms: int) -> bool:
        # Wait for a data frame (kind DATA) or the reply to ``command``; data
        # frames met on the way still update the latest values.
        clock = self._clock
        buf = self.sync.buf
        t0 = clock.ticks_ms()
        while True:
            left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), t0)
            if left <= 0 or not self._reader.wait(left):
                return False
            if buf[1] == DATA:
                self._take_data(buf)
                if kind == DATA:
                    return True
            elif kind == REPLY and buf[2] == command:
                self.device_id = (buf[6] << 8) | buf[7]
                return True
            self.stray += 1

    def _command(self, frame: bytearray, command: int) -> bytearray:
        # Send, wait for the reply; try ``attempts`` times. Returns the reply
        # frame (valid until the next read).
        for _ in range(self._attempts):
            self._uart.write(frame)
            if self._await(REPLY, command, self._reply_ms):
                return self.sync.buf
        raise NoReply(_NAME, command, self._attempts * self._reply_ms)

    def _expect(self, reply: bytearray, command: int, expected: int) -> None:
        if reply[4] != expected:
            raise UnexpectedReply(_NAME, command, expected, reply[4])

    # -- commands -------------------------------------------------------------

    def wake(self) -> None:
        """Laser and fan on; raises NoReply (a SensorMissing) when unconfirmed."""
        self._expect(self._command(self._work, CMD_SLEEP_WORK), CMD_SLEEP_WORK, _WORK)
        self.hours.start()

    def sleep(self) -> None:
        """Laser and fan off; raises NoReply (a SensorMissing) when unconfirmed."""
        self._expect(self._command(self._sleep, CMD_SLEEP_WORK), CMD_SLEEP_WORK, _SLEEP)
        self.hours.stop()
        self._reader.discard()

    def report_mode(self) -> int:
        """The current report mode (MODE_ACTIVE or MODE_QUERY)."""
        return self._command(get_report_mode_command(), CMD_REPORT_MODE)[4]

    def set_report_mode(self, mode: int) -> None:
        reply = self._command(report_mode_command(mode), CMD_REPORT_MODE)
        self._expect(reply, CMD_REPORT_MODE, mode)

    def working_period(self) -> int:
        """The working period in minutes (0 = continuous)."""
        return self._command(get_working_period_command(), CMD_WORKING_PERIOD)[4]

    def set_working_period(self, minutes: int) -> None:
        reply = self._command(working_period_command(minutes), CMD_WORKING_PERIOD)
        self._expect(reply, CMD_WORKING_PERIOD, minutes)

    def firmware_version(self) -> tuple[int, int, int]:
        """The firmware date as (year, month, day)."""
        reply = self._command(firmware_version_command(), CMD_FIRMWARE)
        return (2000 + reply[3], reply[4], reply[5])

    def setup(self) -> None:
        """Wake the sensor and put it in query mode, continuous working period.

        Both settings survive power loss on the sensor, so they are written
        only when they differ. Raises NoReply (a SensorMissing) when silent.
        """
        self.wake()
        if self.report_mode() != MODE_QUERY:
            self.set_report_mode(MODE_QUERY)
        if self.working_period() != 0:
            self.set_working_period(0)

    # -- sampling -------------------------------------------------------------

    def query(self) -> bool:
        """Query mode: ask for one frame; True when ``pm2_5_tenths``/``pm10_tenths`` are fresh.

        Allocation-free. A missed answer returns False (the caller counts it).
        """
        self._reader.discard()
        self._uart.write(self._query)
        return self._await(DATA, CMD_QUERY, self._reply_ms)

    def read(self, timeout_ms: int = 1500) -> bool:
        """Active mode: wait for the next data frame; True when one arrived."""
        return self._await(DATA, CMD_QUERY, timeout_ms)

    def cycle(
        self, warmup_ms: int = WARMUP_MS, samples: int = SAMPLES, interval_ms: int = INTERVAL_MS
    ) -> Iterator[int]:
        """One measurement cycle in query mode, as a generator of waits.

        Yields how many milliseconds to wait before resuming, so the caller
        chooses how: ``time.sleep_ms(ms)`` (see ``measure``) or, in an asyncio
        task, ``await asyncio.sleep_ms(ms)``. The result is left in ``last``.
        Raises NoReply when the sensor does not wake, SensorMissing when no
        query got a frame.
        """
        self.last = None
        self.wake()
        yield warmup_ms
        clock = self._clock
        acc2_5 = self._acc2_5
        acc10 = self._acc10
        acc2_5.reset()
        acc10.reset()
        missed = 0
        for i in range(samples):
            t0 = clock.ticks_ms()
            if self.query():
                acc2_5.add(self.pm2_5_tenths)
                acc10.add(self.pm10_tenths)
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
        mean2_5 = acc2_5.mean()
        mean10 = acc10.mean()
        if mean2_5 is None or mean10 is None:
            raise SensorMissing(_NAME, f"no data frame for {samples} queries")
        self.last = SDS011Reading(mean2_5 / 10, mean10 / 10, acc2_5.count, missed, asleep)

    def measure(
        self, warmup_ms: int = WARMUP_MS, samples: int = SAMPLES, interval_ms: int = INTERVAL_MS
    ) -> SDS011Reading:
        """``cycle`` run to the end with blocking sleeps; returns the reading."""
        for wait_ms in self.cycle(warmup_ms, samples, interval_ms):
            self._clock.sleep_ms(wait_ms)
        reading = self.last
        if reading is None:
            raise SensorMissing(_NAME, "cycle ended without a reading")
        return reading
