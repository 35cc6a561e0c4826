"""The firmware's noise meter against IEC 61672-1:2013 and an independent computation.

Each test writes one WAV of consecutive test signals and runs it through the firmware's
own code under the MicroPython unix port (``commons.noise.analyze``: the same path a
resident uses), one period per signal. The meter discards the first 0.5 s, so period k
covers [0.5 + k·P, 0.5 + (k+1)·P) seconds of the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from noisesignals import (
    DISCARD_S,
    TICK_S,
    a_weighting_analytic,
    fast_levels,
    laeq,
    peak_for,
    tone,
    write_wav,
)

from commons.noise import analyze

# IEC 61672-1:2013 Table 3 (REFERENCE.md 1.2): nominal frequency, A (dB), class 1 limits.
TABLE3_CLASS1 = [
    (31.5, -39.4, 1.5, -1.5),
    (40, -34.6, 1.0, -1.0),
    (50, -30.2, 1.0, -1.0),
    (63, -26.2, 1.0, -1.0),
    (80, -22.5, 1.0, -1.0),
    (100, -19.1, 1.0, -1.0),
    (125, -16.1, 1.0, -1.0),
    (160, -13.4, 1.0, -1.0),
    (200, -10.9, 1.0, -1.0),
    (250, -8.6, 1.0, -1.0),
    (315, -6.6, 1.0, -1.0),
    (400, -4.8, 1.0, -1.0),
    (500, -3.2, 1.0, -1.0),
    (630, -1.9, 1.0, -1.0),
    (800, -0.8, 1.0, -1.0),
    (1000, 0.0, 0.7, -0.7),
    (1250, 0.6, 1.0, -1.0),
    (1600, 1.0, 1.0, -1.0),
    (2000, 1.2, 1.0, -1.0),
    (2500, 1.3, 1.0, -1.0),
    (3150, 1.2, 1.0, -1.0),
    (4000, 1.0, 1.0, -1.0),
    (5000, 0.5, 1.5, -1.5),
    (6300, -0.1, 1.5, -2.0),
    (8000, -1.1, 1.5, -2.5),
    (10000, -2.5, 2.0, -3.0),
    (12500, -4.3, 2.0, -5.0),
]
# Fast time weighting, toneburst design goals (REFERENCE.md 1.3) with the class 1
# acceptance limits of IEC 61672-1:2013 Table 4: ±0.5 dB from 1000 to 200 ms, ±1.0 dB
# from 100 to 5 ms, then +1.0 and -1.5 / -2.0 / -2.5 / -3.0 dB for 2 / 1 / 0.5 / 0.25 ms.
TONEBURST_F = [
    (1000, 0.0, 0.5, -0.5),
    (500, -0.1, 0.5, -0.5),
    (200, -1.0, 0.5, -0.5),
    (100, -2.6, 1.0, -1.0),
    (50, -4.8, 1.0, -1.0),
    (20, -8.3, 1.0, -1.0),
    (10, -11.1, 1.0, -1.0),
    (5, -14.1, 1.0, -1.0),
    (2, -18.0, 1.0, -1.5),
    (1, -21.0, 1.0, -2.0),
    (0.5, -24.0, 1.0, -2.5),
    (0.25, -27.0, 1.0, -3.0),
]
# What this implementation achieves beyond the standard's limits (measured: within 0.1 dB).
OWN_TONEBURST_TOLERANCE = 0.2
TONE_LEVEL = 84.0  # dB SPL, unweighted: 44.6 dB(A) at 31.5 Hz, still 6 dB above the floor


def run(path: Path, period: int, **kw: Any) -> list[dict[str, Any]]:
    return list(analyze(path, period, **kw))


def exact(nominal: float) -> float:
    """The exact base-10 frequency behind a nominal one (REFERENCE.md 1.1)."""
    return 1000.0 * 10 ** (round(10 * math.log10(nominal / 1000.0)) / 10)


def segments(rate: int, parts: list[np.ndarray], lead: float = DISCARD_S) -> np.ndarray:
    return np.concatenate([np.zeros(round(lead * rate)), *parts])


@pytest.mark.parametrize("rate", [48000, 44100])
def test_frequency_response_meets_class_1(tmp_path: Path, rate: int) -> None:
    # Two seconds per tone: the first period settles the filters, the second is read.
    freqs = [exact(f) for f, *_ in TABLE3_CLASS1]
    x = segments(rate, [tone(rate, f, TONE_LEVEL, 2.0) for f in freqs])
    readings = run(write_wav(tmp_path / "tones.wav", x, rate), 1)
    assert len(readings) == 2 * len(freqs)
    errors = {}
    for i, (nominal, a_nom, upper, lower) in enumerate(TABLE3_CLASS1):
        deviation = readings[2 * i + 1]["laeq"] - (TONE_LEVEL + a_nom)
        errors[nominal] = round(deviation, 2)
        assert lower <= deviation <= upper, (nominal, deviation)
        if nominal == 1000:
            assert abs(deviation) <= 0.2
    # Well inside the limits where the bilinear transform does not warp (up to 4 kHz the
    # nominal values are rounded to 0.1 dB; REFERENCE.md 1.5 gives the warp above).
    for nominal, _a, *_ in TABLE3_CLASS1:
        if nominal <= 4000:
            assert abs(errors[nominal]) <= 0.15, errors


def test_response_follows_the_analytic_curve_below_4khz(tmp_path: Path) -> None:
    rate = 48000
    freqs = [exact(f) for f in (31.5, 100, 250, 1000, 2000, 4000)]
    x = segments(rate, [tone(rate, f, TONE_LEVEL, 2.0) for f in freqs])
    readings = run(write_wav(tmp_path / "tones.wav", x, rate), 1)
    for i, f in enumerate(freqs):
        expected = TONE_LEVEL + a_weighting_analytic(f)
        assert readings[2 * i + 1]["laeq"] == pytest.approx(expected, abs=0.1), f


def test_level_linearity_40_to_110_db(tmp_path: Path) -> None:
    rate = 48000
    levels = [40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 94.0, 100.0, 110.0]
    x = segments(rate, [tone(rate, 1000.0, lv, 2.0) for lv in levels])
    readings = run(write_wav(tmp_path / "levels.wav", x, rate), 1)
    for i, lv in enumerate(levels):
        r = readings[2 * i + 1]
        assert r["laeq"] == pytest.approx(lv, abs=0.3), (lv, r)
        assert r["lafmax"] == pytest.approx(lv, abs=0.3), (lv, r)
        assert r["lafmin"] == pytest.approx(lv, abs=0.3), (lv, r)
        assert "clip" not in r["flags"]


def test_toneburst_lafmax_follows_the_fast_response(tmp_path: Path) -> None:
    # A steady 4 kHz tone, then one burst per 3 s period (starting and ending at zero
    # crossings, 0.5 s into it), longest first: 2.5 s of silence after the longest burst
    # lets its Fast level fall 52 dB before the next period starts.
    rate, freq, level = 48000, 4000.0, 100.0
    parts = [tone(rate, freq, level, 1.0)]
    for tb_ms, *_ in TONEBURST_F:
        burst = tone(rate, freq, level, tb_ms / 1000.0)
        period = np.zeros(3 * rate)
        period[rate // 2 : rate // 2 + len(burst)] = burst
        parts.append(period)
    readings = run(write_wav(tmp_path / "bursts.wav", segments(rate, parts), rate), 1)
    steady = readings[0]["laeq"]
    # Periods are 1 s: the burst's period is 1 + 3·k, its 2 quiet seconds follow.
    for k, (tb_ms, goal, upper, lower) in enumerate(TONEBURST_F):
        r = readings[1 + 3 * k]
        delta = r["lafmax"] - steady
        assert lower <= delta - goal <= upper, (tb_ms, delta)
        assert abs(delta - goal) <= OWN_TONEBURST_TOLERANCE, (tb_ms, delta)


def test_fast_decay_rate(tmp_path: Path) -> None:
    # After a steady tone stops, LAF falls 34.7 dB/s (+3.8 / -3.7 dB/s): period 1 starts as
    # a 100 dB tone stops, so its LAFmax is at its start and its LAFmin 1 s later.
    rate = 48000
    x = segments(rate, [tone(rate, 1000.0, 100.0, 1.0), tone(rate, 1000.0, 20.0, 1.0)])
    readings = run(write_wav(tmp_path / "decay.wav", x, rate), 1)
    assert readings[0]["lafmax"] == pytest.approx(100.0, abs=0.1)
    decay = readings[1]["lafmax"] - readings[1]["lafmin"]
    assert decay == pytest.approx(34.7, abs=0.3)


def test_percentiles_and_energy_mean_match_an_independent_computation(tmp_path: Path) -> None:
    # White noise whose level wanders between 50 and 85 dB over a 10 s period: LAeq must be
    # the energy mean (not the mean of dB values), the percentiles those of the Fast level
    # sampled every 40 ms, LA10 the 90th percentile.
    rate = 48000
    rng = np.random.default_rng(61672)
    n = round((DISCARD_S + 10.0) * rate)
    t = np.arange(n) / rate
    envelope_db = 67.5 + 17.5 * np.sin(2 * np.pi * t / 7.0) * np.cos(2 * np.pi * t / 2.3)
    envelope_db[: round(1.0 * rate)] = envelope_db[round(1.0 * rate)]
    x = rng.standard_normal(n) * peak_for(envelope_db) / math.sqrt(2)
    readings = run(write_wav(tmp_path / "noise.wav", x, rate), 10)
    assert len(readings) == 1
    r = readings[0]

    start = round(DISCARD_S * rate)
    levels = fast_levels(x, rate)
    tick = round(TICK_S * rate)
    sampled = levels[start + tick - 1 :: tick][: round(10.0 / TICK_S)]
    expected = {
        "laeq": laeq(x, rate, start, n),
        "lafmax": float(levels[start:].max()),
        "lafmin": float(levels[start:].min()),
        "la10": float(np.percentile(sampled, 90)),
        "la50": float(np.percentile(sampled, 50)),
        "la90": float(np.percentile(sampled, 10)),
    }
    for key, value in expected.items():
        assert r[key] == pytest.approx(value, abs=0.15), (key, r[key], value)
    arithmetic_mean = float(np.mean(levels[start:]))
    assert abs(r["laeq"] - arithmetic_mean) > 1.0  # the two differ: energy, not dB
    assert r["la10"] > r["la50"] > r["la90"]


def test_flags_clip_and_below_floor(tmp_path: Path) -> None:
    rate = 48000
    clipped = np.clip(4.0 * tone(rate, 1000.0, 110.0, 2.0), -(2**23), 2**23 - 1)
    parts = [
        tone(rate, 1000.0, 35.0, 2.0),
        tone(rate, 1000.0, 45.0, 2.0),
        clipped,
        tone(rate, 1000.0, 110.0, 2.0),
    ]
    readings = run(write_wav(tmp_path / "flags.wav", segments(rate, parts), rate), 2)
    assert [r["flags"] for r in readings] == [["below_floor"], [], ["clip"], []]
    assert readings[0]["laeq"] == pytest.approx(35.0, abs=0.3)


def test_calibration_sensitivity_and_offset(tmp_path: Path) -> None:
    rate = 48000
    path = write_wav(tmp_path / "cal.wav", segments(rate, [tone(rate, 1000.0, 94.0, 2.0)]), rate)
    default = run(path, 1)[1]["laeq"]
    hotter = run(path, 1, sensitivity_dbfs=-23.0)[1]["laeq"]
    offset = run(path, 1, offset_db=1.5)[1]["laeq"]
    assert default == pytest.approx(94.0, abs=0.05)
    assert hotter == pytest.approx(91.0, abs=0.05)
    assert offset == pytest.approx(95.5, abs=0.05)
