"""PM sensor frames on a serial byte stream, for the gateway (CPython): pure, no I/O.

The wire formats are those of the node firmware's drivers (``firmware/drivers/sds011.py``,
``pms5003.py``; REFERENCE §8.1-8.2), written again here because those modules are
MicroPython (``micropython.const``, allocation-free loops) and the gateway is not:

- SDS011: 10 bytes ``AA C0 PM25_L PM25_H PM10_L PM10_H ID1 ID2 CS AB``, CS = low byte of the
  sum of bytes 2-7, PM = (high * 256 + low) / 10 µg/m³. Command replies are ``AA C5 … AB``.
- PMS5003: ``42 4D``, a 16-bit length (28 for data, 4 for a command acknowledgement), then
  big-endian words and a 16-bit checksum = sum of all preceding bytes. Data words 0-2 are
  PM1/PM2.5/PM10 "CF=1 standard particle" in µg/m³, the values the node firmware reports.

A :class:`FrameParser` takes bytes as they come and returns the valid data frames. It
resynchronises after garbage, truncated frames and bad checksums by rescanning from the
byte after a rejected header, so a good frame that began inside a bad one is still found.
Every byte fed ends up in exactly one place: a valid frame, ``garbage``, or the pending
partial frame; a rejected frame is also counted in ``bad_checksum`` or ``bad_format``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SensorModel(StrEnum):
    SDS011 = "sds011"
    PMS5003 = "pms5003"


@dataclass(frozen=True)
class PmFrame:
    """One valid data frame's mass concentrations in µg/m³ (``pm1`` None for the SDS011)."""

    pm2_5: float
    pm10: float
    pm1: float | None = None


@dataclass(frozen=True)
class FrameCounts:
    frames: int
    replies: int
    bad_checksum: int
    bad_format: int
    garbage: int


# -- SDS011 --------------------------------------------------------------------------------

SDS011_HEAD = 0xAA
SDS011_TAIL = 0xAB
SDS011_DATA = 0xC0
SDS011_REPLY = 0xC5
SDS011_FRAME_LEN = 10
SDS011_COMMAND_LEN = 19
SDS011_ANY_DEVICE = 0xFFFF
_SDS011_CMD_REPORT_MODE = 0x02
_SDS011_CMD_SLEEP_WORK = 0x06
_SDS011_CMD_WORKING_PERIOD = 0x08


def sds011_checksum(frame: bytes | bytearray) -> int:
    return sum(frame[2:8]) & 0xFF


def sds011_frame(pm2_5: float, pm10: float, device: int = 0x1234) -> bytes:
    """A valid SDS011 data frame (values rounded to the sensor's 0.1 µg/m³)."""
    a = round(pm2_5 * 10)
    b = round(pm10 * 10)
    body = bytes((a & 0xFF, a >> 8, b & 0xFF, b >> 8, device >> 8, device & 0xFF))
    return bytes((SDS011_HEAD, SDS011_DATA)) + body + bytes((sum(body) & 0xFF, SDS011_TAIL))


def sds011_command(command: int, data: bytes = b"", device: int = SDS011_ANY_DEVICE) -> bytes:
    """A 19-byte command frame ``AA B4 CMD D1..D12 ID1 ID2 CS AB``."""
    frame = bytearray(SDS011_COMMAND_LEN)
    frame[0] = SDS011_HEAD
    frame[1] = 0xB4
    frame[2] = command
    frame[3 : 3 + len(data)] = data
    frame[15] = device >> 8
    frame[16] = device & 0xFF
    frame[17] = sum(frame[2:17]) & 0xFF
    frame[18] = SDS011_TAIL
    return bytes(frame)


# Laser and fan on, active reporting (a frame a second), continuous working period: a
# sensor left asleep or in query mode by an earlier owner would otherwise stay silent.
SDS011_START = (
    sds011_command(_SDS011_CMD_SLEEP_WORK, b"\x01\x01")
    + sds011_command(_SDS011_CMD_REPORT_MODE, b"\x01\x00")
    + sds011_command(_SDS011_CMD_WORKING_PERIOD, b"\x01\x00")
)


# -- PMS5003 -------------------------------------------------------------------------------

PMS5003_HEAD = b"\x42\x4d"
PMS5003_DATA_LEN = 32
PMS5003_ACK_LEN = 8
_PMS5003_LENGTH_FIELDS = {28: PMS5003_DATA_LEN, 4: PMS5003_ACK_LEN}


def _pms5003_checksum(frame: bytes | bytearray, length: int) -> int:
    return sum(frame[: length - 2]) & 0xFFFF


def pms5003_frame(pm1: float, pm2_5: float, pm10: float) -> bytes:
    """A valid PMS5003 data frame: CF=1 and atmospheric values alike, counts zero."""
    words = [round(pm1), round(pm2_5), round(pm10)] * 2 + [0] * 7
    body = PMS5003_HEAD + (28).to_bytes(2, "big") + b"".join(w.to_bytes(2, "big") for w in words)
    return body + (sum(body) & 0xFFFF).to_bytes(2, "big")


def pms5003_command(command: int, value: int) -> bytes:
    frame = PMS5003_HEAD + bytes((command, 0, value))
    return frame + (sum(frame) & 0xFFFF).to_bytes(2, "big")


# Wake (fan and laser on), then active mode (the sensor streams frames).
PMS5003_START = pms5003_command(0xE4, 1) + pms5003_command(0xE1, 1)


# -- parsing -------------------------------------------------------------------------------


class FrameParser:
    """Bytes in, valid data frames out, with counters; one per sensor model."""

    def __init__(self, model: SensorModel) -> None:
        self.model = model
        self.frames = 0
        self.replies = 0  # valid answers to commands: not data, not garbage
        self.bad_checksum = 0
        self.bad_format = 0
        self.garbage = 0  # bytes that belong to no valid frame
        self.framed_bytes = 0  # bytes of valid frames, data and replies
        self._buf = bytearray()
        self._head = bytes((SDS011_HEAD,)) if model is SensorModel.SDS011 else PMS5003_HEAD

    def counts(self) -> FrameCounts:
        return FrameCounts(
            self.frames, self.replies, self.bad_checksum, self.bad_format, self.garbage
        )

    def pending(self) -> int:
        """Bytes held as the start of a frame not yet complete."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial frame (its bytes count as garbage): the stream was cut."""
        self.garbage += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[PmFrame]:
        buf = self._buf
        buf += data
        out: list[PmFrame] = []
        while buf:
            start = buf.find(self._head)
            if start < 0:
                # Keep a last byte that may be the first of a two-byte header.
                keep = 1 if buf[-1] == self._head[0] else 0
                self.garbage += len(buf) - keep
                del buf[: len(buf) - keep]
                break
            if start:
                self.garbage += start
                del buf[:start]
            length, verdict = self._check(buf)
            if verdict == "partial":
                break
            if verdict == "ok":
                frame = self._parse(buf, length)
                self.framed_bytes += length
                if frame is None:
                    self.replies += 1
                else:
                    self.frames += 1
                    out.append(frame)
                del buf[:length]
                continue
            if verdict == "checksum":
                self.bad_checksum += 1
            elif verdict == "format":
                self.bad_format += 1
            # Not a frame here: drop its first byte and look for the next header.
            self.garbage += 1
            del buf[:1]
        return out

    def _check(self, buf: bytearray) -> tuple[int, str]:
        """(frame length, verdict): ok, partial, checksum, format, or garbage."""
        if self.model is SensorModel.SDS011:
            if len(buf) < 2:
                return 0, "partial"
            if buf[1] not in (SDS011_DATA, SDS011_REPLY):
                return 0, "garbage"
            if len(buf) < SDS011_FRAME_LEN:
                return 0, "partial"
            if buf[9] != SDS011_TAIL:
                return 0, "format"
            if sds011_checksum(buf) != buf[8]:
                return 0, "checksum"
            return SDS011_FRAME_LEN, "ok"
        if len(buf) < 4:
            return 0, "partial"
        length = _PMS5003_LENGTH_FIELDS.get(int.from_bytes(buf[2:4], "big"), 0)
        if length == 0:
            return 0, "format"
        if len(buf) < length:
            return 0, "partial"
        if _pms5003_checksum(buf, length) != int.from_bytes(buf[length - 2 : length], "big"):
            return 0, "checksum"
        return length, "ok"

    def _parse(self, buf: bytearray, length: int) -> PmFrame | None:
        """The data frame at the start of ``buf``; None for a command reply."""
        if self.model is SensorModel.SDS011:
            if buf[1] == SDS011_REPLY:
                return None
            return PmFrame(
                pm2_5=(buf[2] | buf[3] << 8) / 10,
                pm10=(buf[4] | buf[5] << 8) / 10,
            )
        if length != PMS5003_DATA_LEN:
            return None
        return PmFrame(
            pm1=float(int.from_bytes(buf[4:6], "big")),
            pm2_5=float(int.from_bytes(buf[6:8], "big")),
            pm10=float(int.from_bytes(buf[8:10], "big")),
        )


START_COMMANDS = {SensorModel.SDS011: SDS011_START, SensorModel.PMS5003: PMS5003_START}
