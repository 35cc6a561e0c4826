"""Test signals for the noise meter, as the INMP441 would deliver them, written as WAV files.

Levels are in dB SPL with the datasheet calibration (REFERENCE.md 1.6): a 1 kHz sine of
94 dB SPL peaks at (2^23 - 1)·10^(-26/20) = 420 426 counts (24-bit). The reference
computations here are independent of the firmware: double precision, scipy's bilinear
transform of the analog A filter, and the per-sample exponential smoother of REFERENCE.md 1.3.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
from scipy import signal

FULL_SCALE = 2**23 - 1
SENSITIVITY_DBFS = -26.0
PEAK_94 = FULL_SCALE * 10 ** (SENSITIVITY_DBFS / 20)  # 420 426 counts
DISCARD_S = 0.5
TICK_S = 0.040  # the firmware samples the Fast level every 40 ms for the percentiles
TAU_FAST = 0.125

# IEC 61672-1 Annex E poles (REFERENCE.md 1.1).
F1, F2, F3, F4 = 20.598997, 107.65265, 737.86223, 12194.217


def peak_for(level_db: float) -> float:
    """Peak (24-bit counts) of a sine of ``level_db`` dB SPL."""
    return PEAK_94 * 10 ** ((level_db - 94.0) / 20)


def tone(rate: int, freq: float, level_db: float, seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return peak_for(level_db) * np.sin(2 * np.pi * freq * t)


def write_wav(
    path: Path, samples: np.ndarray, rate: int, width: int = 3, channels: int = 1
) -> Path:
    """24-bit-scale ``samples`` as PCM of ``width`` bytes; extra channels hold zeros."""
    x = np.clip(np.round(samples), -(2**23), 2**23 - 1).astype(np.int64)
    if width == 2:
        x = np.clip(np.round(samples / 256), -(2**15), 2**15 - 1).astype(np.int64)
    elif width == 4:
        x = x << 8
    frames = np.zeros((len(x), channels), dtype=np.int64)
    frames[:, 0] = x
    raw = frames.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw.tobytes())
    return path


def a_weighting_analytic(freq: float) -> float:
    """A(f) in dB, IEC 61672-1 Annex E."""
    f2 = freq * freq
    num = F4**2 * f2 * f2
    den = (f2 + F1**2) * math.sqrt(f2 + F2**2) * math.sqrt(f2 + F3**2) * (f2 + F4**2)
    return 20 * math.log10(num / den) + 2.0


def a_weight(x: np.ndarray, rate: int) -> np.ndarray:
    """A-weighted signal: plain bilinear transform of the analog filter, 0 dB at 1 kHz."""
    w = [2 * np.pi * f for f in (F1, F1, F2, F3, F4, F4)]
    b, a = signal.zpk2tf([0, 0, 0, 0], [-p for p in w], 1.0)
    bz, az = signal.bilinear(b, a, rate)
    _, h = signal.freqz(bz, az, worN=[1000.0], fs=rate)
    sos = signal.tf2sos(bz / abs(h[0]), az)
    return signal.sosfilt(sos, x)


def fast_levels(x: np.ndarray, rate: int) -> np.ndarray:
    """LAF(t) in dB SPL per sample (Fast smoother on the squared A-weighted signal)."""
    alpha = 1 - math.exp(-1 / (TAU_FAST * rate))
    p2 = a_weight(x, rate) ** 2
    ms = signal.lfilter([alpha], [1, -(1 - alpha)], p2)
    return 94.0 + 10 * np.log10(np.maximum(ms, 1e-30) / (PEAK_94**2 / 2))


def laeq(x: np.ndarray, rate: int, start: int, stop: int) -> float:
    """Energy mean over samples [start, stop) of the A-weighted signal, dB SPL."""
    p2 = a_weight(x, rate)[start:stop] ** 2
    return 94.0 + 10 * math.log10(float(np.mean(p2)) / (PEAK_94**2 / 2))
