"""``commons noise analyze`` end to end: WAV formats, channels, periods, errors."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from commons.cli import main
from commons.noise import OUTPUT_KEYS, NoiseInputError, analyze

COMMONS = Path(sys.executable).parent / "commons"
PEAK_94 = (2**23 - 1) * 10 ** (-26 / 20)  # 24-bit counts, 1 kHz at 94 dB SPL


def _pcm(samples: np.ndarray, width: int) -> np.ndarray:
    """24-bit-scale samples as integers of ``width`` bytes."""
    if width == 2:
        return np.round(samples / 256).astype(np.int64)
    x = np.round(samples).astype(np.int64)
    return x << 8 if width == 4 else x


def _frames(channels: list[np.ndarray], width: int) -> bytes:
    ints = np.stack([_pcm(c, width) for c in channels], axis=1)
    return ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width].tobytes()


def write(path: Path, channels: list[np.ndarray], rate: int = 48000, width: int = 3) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(_frames(channels, width))
    return path


def write_extensible(path: Path, channels: list[np.ndarray], rate: int, width: int) -> Path:
    """WAVE_FORMAT_EXTENSIBLE with the PCM subformat GUID (what many recorders write)."""
    data = _frames(channels, width)
    n = len(channels)
    guid = bytes.fromhex("0100000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_PCM
    fmt = (
        struct.pack(
            "<HHLLHHHHL", 0xFFFE, n, rate, rate * n * width, n * width, 8 * width, 22, 8 * width, 3
        )
        + guid
    )
    body = b"WAVE" + b"fmt " + struct.pack("<L", len(fmt)) + fmt
    body += b"data" + struct.pack("<L", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<L", len(body)) + body)
    return path


def tone(level_db: float, seconds: float, rate: int = 48000, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return PEAK_94 * 10 ** ((level_db - 94) / 20) * np.sin(2 * math.pi * freq * t)


@pytest.mark.parametrize("width", [2, 3, 4])
@pytest.mark.parametrize("stereo", [False, True])
def test_formats_and_left_channel(tmp_path: Path, width: int, stereo: bool) -> None:
    left = tone(94.0, 2.0)
    channels = [left, tone(110.0, 2.0, freq=250.0)] if stereo else [left]
    readings = list(analyze(write(tmp_path / "a.wav", channels, width=width), period_s=1))
    assert len(readings) == 1  # 0.5 s discarded, then one full period; 0.5 s left over
    assert readings[0]["laeq"] == pytest.approx(94.0, abs=0.05)


@pytest.mark.parametrize("width", [2, 3])
def test_extensible_wav(tmp_path: Path, width: int) -> None:
    path = write_extensible(
        tmp_path / "x.wav", [tone(94.0, 2.0, 44100), tone(60.0, 2.0, 44100)], 44100, width
    )
    readings = list(analyze(path, period_s=1))
    assert readings[0]["laeq"] == pytest.approx(94.0, abs=0.05)


def test_cli_prints_one_json_object_per_period(tmp_path: Path) -> None:
    path = write(tmp_path / "p.wav", [tone(70.0, 5.5)])
    proc = subprocess.run(
        [str(COMMONS), "noise", "analyze", str(path), "--period", "2", "--offset", "1.0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [list(r) for r in lines] == [list(OUTPUT_KEYS)] * 3
    assert [(r["start"], r["period"]) for r in lines] == [(0.5, 2.0), (2.5, 2.0), (4.5, 1.0)]
    for r in lines:
        for key in ("laeq", "lafmax", "lafmin", "la10", "la50", "la90"):
            assert r[key] == pytest.approx(71.0, abs=0.1), (key, r)
        assert r["flags"] == []


def test_unsupported_rate_lists_the_supported_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "r.wav", [tone(94.0, 1.0, 16000)], rate=16000)
    with pytest.raises(NoiseInputError, match="16000 Hz not supported"):
        list(analyze(path))
    result = CliRunner().invoke(main, ["noise", "analyze", str(path)])
    assert result.exit_code == 1
    assert "sample rate 16000 Hz not supported; supported rates: 44100, 48000 Hz" in result.output


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    result = CliRunner().invoke(main, ["noise", "analyze", str(junk)])
    assert result.exit_code == 1
    assert "not a readable WAV file" in result.output
    eight = tmp_path / "eight.wav"
    with wave.open(str(eight), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(48000)
        w.writeframes(bytes(4800))
    result = CliRunner().invoke(main, ["noise", "analyze", str(eight)])
    assert "8-bit samples" in result.output
    result = CliRunner().invoke(main, ["noise", "analyze", str(eight), "--period", "0"])
    assert result.exit_code == 2


def test_short_recording_gives_no_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "s.wav", [tone(94.0, 1.2)])  # 0.7 s after the discarded 0.5 s
    assert list(analyze(path, period_s=1)) == []
