"""``commons noise analyze``: the firmware's own noise meter over a WAV recording.

The recording is turned into what the INMP441 would put on the I2S bus — each sample as a
24-bit value MSB-aligned in a 32-bit little-endian word — and streamed to
``firmware/noise/hostrun.py`` running under the MicroPython unix port, which prints one
JSON object per period. Nothing is re-implemented on the host: the levels are the node's.

WAV input: PCM, 16, 24 or 32 bits, mono or the left channel of a multi-channel file,
plain or WAVE_FORMAT_EXTENSIBLE, at a rate the firmware supports (44.1 or 48 kHz).
"""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import threading
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from commons.micropython import FIRMWARE_DIR, micropython_command, micropython_env

# The firmware's rates (firmware/noise/weighting.py SUPPORTED_RATES), checked here first so
# a bad file fails before a MicroPython process starts; the firmware checks them again.
SUPPORTED_RATES = (44100, 48000)
SAMPLE_WIDTHS = (2, 3, 4)
HOSTRUN = FIRMWARE_DIR / "noise" / "hostrun.py"
CHUNK_FRAMES = 48000
# The order of each output line: where it starts, the payload's noise fields, the flags.
OUTPUT_KEYS = ("start", "period", "laeq", "lafmax", "lafmin", "la10", "la50", "la90", "flags")
_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class NoiseInputError(Exception):
    """A recording the meter cannot take, with the file and what was wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class NoiseRunError(Exception):
    """The MicroPython process failed."""

    def __init__(self, returncode: int, detail: str) -> None:
        super().__init__(f"the noise meter exited with status {returncode}: {detail}")
        self.returncode = returncode
        self.detail = detail


class _WaveRead(wave.Wave_read):
    """``wave.Wave_read`` that also takes WAVE_FORMAT_EXTENSIBLE with PCM data.

    Python 3.12 reads these itself; 3.11's ``wave`` refuses them, so the format chunk is
    parsed here the same way (subformat GUID's first two bytes are the format tag).
    """

    def _read_fmt_chunk(self, chunk: Any) -> None:
        head = chunk.read(16)
        if len(head) < 16:
            raise EOFError
        tag, channels, rate, _bps, _align, bits = struct.unpack("<HHLLHH", head)
        if tag == _WAVE_FORMAT_EXTENSIBLE:
            ext = chunk.read(24)
            if len(ext) < 24:
                raise EOFError
            tag = struct.unpack_from("<H", ext, 8)[0]
        if tag != _WAVE_FORMAT_PCM:
            raise wave.Error(f"not PCM (format tag {tag:#06x})")
        if not channels or not bits:
            raise wave.Error("bad channel count or sample width")
        self._nchannels = channels
        self._framerate = rate
        self._sampwidth = (bits + 7) // 8
        self._framesize = channels * self._sampwidth
        self._comptype = "NONE"
        self._compname = "not compressed"


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    width: int
    frames: int


def _open(path: Path) -> tuple[_WaveRead, WavInfo]:
    try:
        reader = _WaveRead(str(path))
    except (wave.Error, EOFError) as exc:
        raise NoiseInputError(path, f"not a readable WAV file ({str(exc) or 'truncated'})") from exc
    except OSError as exc:
        raise NoiseInputError(path, exc.strerror or str(exc)) from exc
    info = WavInfo(
        reader.getframerate(), reader.getnchannels(), reader.getsampwidth(), reader.getnframes()
    )
    if info.width not in SAMPLE_WIDTHS:
        reader.close()
        raise NoiseInputError(path, f"{8 * info.width}-bit samples; use 16, 24 or 32-bit PCM")
    if info.rate not in SUPPORTED_RATES:
        reader.close()
        rates = ", ".join(str(r) for r in SUPPORTED_RATES)
        raise NoiseInputError(
            path, f"sample rate {info.rate} Hz not supported; supported rates: {rates} Hz"
        )
    return reader, info


def i2s_words(frames: bytes, info: WavInfo) -> bytes:
    """The left channel of PCM frames as INMP441 words: 24-bit sample << 8, int32 LE."""
    width, step = info.width, info.width * info.channels
    count = len(frames) // step
    out = bytearray(4 * count)
    # One byte slice per sample byte: a 24-bit sample is the top three bytes of the word.
    if width == 2:
        out[2::4] = frames[0::step][:count]
        out[3::4] = frames[1::step][:count]
    else:
        out[1::4] = frames[width - 3 :: step][:count]
        out[2::4] = frames[width - 2 :: step][:count]
        out[3::4] = frames[width - 1 :: step][:count]
    return bytes(out)


def wav_words(path: Path) -> tuple[WavInfo, Iterator[bytes]]:
    """The recording's rate and a stream of its I2S words, in chunks."""
    reader, info = _open(path)

    def chunks() -> Iterator[bytes]:
        with reader:
            while frames := reader.readframes(CHUNK_FRAMES):
                yield i2s_words(frames, info)

    return info, chunks()


def _feed(stdin: IO[bytes], chunks: Iterator[bytes]) -> None:
    try:
        for chunk in chunks:
            stdin.write(chunk)
    except BrokenPipeError:
        pass  # the meter stopped early; its exit status tells why
    finally:
        with contextlib.suppress(BrokenPipeError):
            stdin.close()


def analyze(
    path: Path, period_s: int = 60, sensitivity_dbfs: float = -26.0, offset_db: float = 0.0
) -> Iterator[dict[str, Any]]:
    """Run the firmware's meter over ``path``; one dict per period, as it completes."""
    info, chunks = wav_words(path)
    argv = micropython_command(
        HOSTRUN, [str(info.rate), str(period_s), repr(sensitivity_dbfs), repr(offset_db)]
    )
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=micropython_env([FIRMWARE_DIR]),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    feeder = threading.Thread(target=_feed, args=(proc.stdin, chunks), daemon=True)
    feeder.start()
    errors: list[str] = []
    try:
        for raw in proc.stdout:
            line = raw.decode().strip()
            if line.startswith("{"):
                reading = json.loads(line)
                yield {key: reading[key] for key in OUTPUT_KEYS}
            elif line:
                errors.append(line)
    finally:
        feeder.join()
        stderr = proc.stderr.read().decode()
        code = proc.wait()
    if code != 0:
        detail = "; ".join(e.removeprefix("ERROR ") for e in errors) or stderr.strip()
        raise NoiseRunError(code, detail)


# -- command line ----------------------------------------------------------------------------


@click.group()
def noise() -> None:
    """The noise meter of the firmware, run on this machine."""


@noise.command("analyze")
@click.argument("wav", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--period",
    type=click.IntRange(1, 86400),
    default=60,
    show_default=True,
    help="Seconds per reading.",
)
@click.option(
    "--sensitivity",
    type=click.FloatRange(-60.0, 0.0),
    default=-26.0,
    show_default=True,
    help="Microphone sensitivity in dBFS for 94 dB SPL at 1 kHz (INMP441 datasheet: -26).",
)
@click.option(
    "--offset",
    type=click.FloatRange(-20.0, 20.0),
    default=0.0,
    show_default=True,
    help="Per-unit calibration offset in dB, added to every level.",
)
def analyze_command(wav: Path, period: int, sensitivity: float, offset: float) -> None:
    """Run the firmware's noise meter over WAV; one JSON object per period.

    WAV: 16/24/32-bit PCM at 44.1 or 48 kHz, mono or its left channel, taken as the
    microphone's I2S stream (the first half second is discarded, as on the node). Each
    line has the noise payload fields (period, laeq, lafmax, lafmin, la10, la50, la90 in
    dB(A)), the flags (clip, below_floor) and start (seconds into the file).
    """
    try:
        for reading in analyze(wav, period, sensitivity, offset):
            click.echo(json.dumps(reading))
    except NoiseInputError as exc:
        raise click.ClickException(str(exc)) from exc
    except NoiseRunError as exc:
        raise click.ClickException(str(exc)) from exc
