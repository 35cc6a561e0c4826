"""Record the microphone to a WAV file on the node, for calibration only.

The node never stores audio in normal use. To calibrate it (docs/noise-calibration.md),
record a few seconds of a 94 dB / 1 kHz calibrator and copy the file to a computer:

    mpremote exec "from noise import record; record.record('cal.wav', 5, 32, 25, 33)"
    mpremote cp :cal.wav . + rm :cal.wav
    commons noise analyze cal.wav --period 1

The file holds the raw I2S words as 32-bit PCM (the 24-bit sample in the top bytes), which
``commons noise analyze`` reads as the microphone's stream. If the flash cannot keep up with
192 KB/s, the I2S buffer overruns and drops samples; for a steady calibrator tone that does
not change the level.
"""

import struct

from micropython import const

from noise.source import open_i2s

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from noise.source import Readable

BITS = const(32)
BLOCK_BYTES = const(4096)


def wav_header(rate: int, frames: int) -> bytes:
    """44-byte header of a mono 32-bit PCM WAV file of ``frames`` samples."""
    data = 4 * frames
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, 4 * rate, 4, BITS)
        + b"data"
        + struct.pack("<I", data)
    )


def record_from(source: Readable, path: str, seconds: int, rate: int) -> int:
    """``seconds`` of words from ``source`` (``readinto``) into a WAV file; frames written."""
    frames = seconds * rate
    buf = bytearray(BLOCK_BYTES)
    written = 0
    with open(path, "wb") as f:
        f.write(wav_header(rate, frames))
        while written < frames:
            n = source.readinto(buf) or 0
            if n <= 0:
                break
            take = min(n >> 2, frames - written)
            f.write(memoryview(buf)[: 4 * take])
            written += take
        if written < frames:
            f.seek(0)
            f.write(wav_header(rate, written))
    return written


def record(
    path: str, seconds: int, sck: int, ws: int, sd: int, rate: int = 48000, bus: int = 0
) -> int:
    """Record the INMP441 on I2S ``bus`` (pins ``sck``, ``ws``, ``sd``) to ``path``.

    As the node does: the bus is read in stereo, the microphone's first half second is
    discarded, and the slot that talks is kept (REFERENCE.md 8.5: some ESP-IDF versions
    return zeros for a mono read or swap the slots).
    """
    from noise.source import ACTIVE_SPAN, slot_spans
    from noise.streams import SlotSource

    i2s = open_i2s(bus, sck, ws, sd, rate, True)
    try:
        buf = bytearray(BLOCK_BYTES)
        skip = rate  # words: half a second of stereo frames
        while skip > 0:
            skip -= (i2s.readinto(buf) or 0) >> 2
        left, right = slot_spans(buf, i2s.readinto(buf) or 0)
        slot = 1 if right >= ACTIVE_SPAN > left else 0
        print(f"record: I2S slots left={left} right={right}: reading slot {slot}")
        del buf
        return record_from(SlotSource(i2s, slot, BLOCK_BYTES // 4), path, seconds, rate)
    finally:
        i2s.deinit()
