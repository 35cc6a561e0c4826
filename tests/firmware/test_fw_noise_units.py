"""The noise meter's parts on the unix port: kernel heap use and word size, sources, slot
check, the A-weighting design against REFERENCE.md 1.5, settings, and the native build."""

from __future__ import annotations

import math
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mprunner import FIRMWARE, MICROPYTHON, MPY_CROSS, MicroPython
from noisesignals import a_weighting_analytic, tone, write_wav

from commons.contract import parse_message
from commons.noise import HOSTRUN, analyze, wav_words

INT32 = 1 << 31
RUN_HOSTRUN = "import sys; from noise import hostrun; hostrun.run(sys.argv[1:])"


def test_meter_allocates_nothing_between_readings(mp_source: MicroPython) -> None:
    result = mp_source.run("scen_noise", "kernel_heap")
    assert result["failure"] is None
    assert result["feed_failure"] is None
    assert result["subblocks"] == 200 * 1024 // 120


def _check(value: int) -> int:
    assert -INT32 <= value < INT32, value
    return value


def _model(words: list[int], st: list[int]) -> tuple[list[int], list[int]]:
    """The kernel in plain Python with every intermediate checked against 32 bits."""
    xp, *y = st[0:8]
    hh, hl, ll, count, clip, size = st[8:14]
    coef = [st[14 + 3 * j : 17 + 3 * j] for j in range(7)]
    out: list[int] = []

    def mul(j: int, t: int) -> int:
        m, e, r = coef[j]
        hi = _check(m * (t >> 15))
        lo = _check(m * (t & 0x7FFF)) >> 15
        return _check(hi + lo + r) >> e

    for w in words:
        s = ((w >> 8) & 0xFFFFFF) - (((w >> 8) & 0x800000) << 1)
        clip += abs(s) >= 0x7FFF00
        x = _check(s << 3)
        d = _check(x - xp)
        xp = x
        for j in range(5):
            t = _check(y[j] + (d >> 1))
            o = y[j]
            y[j] = _check(y[j] + d - mul(j, t))
            d = _check(y[j] - o)
        t = _check(((y[4] + o) >> 1) - y[5])
        o = y[5]
        y[5] = _check(y[5] + mul(5, t))
        t = _check(((y[5] + o) >> 1) - y[6])
        y[6] = _check(y[6] + mul(6, t))
        v = min(abs(y[6] >> 3), 0xFFFFFF)
        h, v = v >> 12, v & 0xFFF
        hh, hl, ll = _check(hh + h * h), _check(hl + h * v), _check(ll + v * v)
        count += 1
        if count == size:
            out += [hh, hl, ll, clip]
            hh = hl = ll = clip = count = 0
    return [xp, *y, hh, hl, ll, count, clip, size, *st[14:]], out


def test_kernel_stays_within_32_bits_at_full_scale(mp_source: MicroPython) -> None:
    # The unix port's viper integers are 64-bit, the ESP32's 32-bit: a full-scale square
    # wave (the worst case for the high-pass sections) must never need more than 32 bits,
    # which the model checks, and the port must compute exactly what the model does.
    result = mp_source.run("scen_noise", "full_scale")
    top = (1 << 23) - 1
    words = [((top if (i // 24) % 2 else -top - 1) << 8) & 0xFFFFFFFF for i in range(1024)]
    start = [0] * 13 + result["states"][13:]
    states, out = _model(words, start)
    assert states == result["states"]
    assert out == result["out"]
    size = result["states"][13]
    assert result["k"] == 1024 // size
    assert all(out[j + 3] == size for j in range(0, len(out), 4))  # every sample clipped


def test_stream_source_returns_whole_words(mp_source: MicroPython) -> None:
    sizes = mp_source.run("scen_noise", "stream_source")["sizes"]
    assert sizes == [400, 400, 224]  # 226 bytes left: the stray 2 are dropped


def test_slot_check_finds_the_talking_slot(mp_source: MicroPython) -> None:
    result = mp_source.run("scen_noise", "slots")
    assert result["left"] == [True, False]
    assert result["right"] == [False, True]
    assert result["none"] == [False, False]


def test_design_matches_the_reference_bilinear_deviation(mp_source: MicroPython) -> None:
    # REFERENCE.md 1.5: plain BLT minus analytic A, at 48 and 44.1 kHz.
    table = {
        2000: (0.0, 0.0),
        4000: (-0.04, -0.04),
        5000: (-0.09, -0.11),
        6300: (-0.23, -0.27),
        8000: (-0.53, -0.65),
        10000: (-1.22, -1.50),
        12500: (-2.74, -3.46),
    }
    freqs = [1000.0 * 10 ** (round(10 * math.log10(f / 1000)) / 10) for f in table]
    result = mp_source.run("scen_noise", "design", {"freqs": freqs})
    for column, rate in enumerate((48000, 44100)):
        for f, got, expected in zip(freqs, result[str(rate)], table.values(), strict=True):
            # 0.02 dB: the table's rounding plus the DC blocker and 15-bit coefficients
            assert got - a_weighting_analytic(f) == pytest.approx(expected[column], abs=0.02)


def test_settings_are_checked_with_their_names(mp_source: MicroPython) -> None:
    cases = [
        {"rate": 32000},
        {"period_s": 0},
        {"sensitivity_dbfs": 3.0},
        {"offset_db": 25.0},
        {"block": 16},
        {"rate": 44100, "period_s": 10},
    ]
    result = mp_source.run("scen_noise", "config_errors", {"cases": cases})
    assert result[0][0:2] == ["rate", 32000]
    assert "44100, 48000" in result[0][2]
    assert [r[1] for r in result[1:5]] == ["period_s", "sensitivity_dbfs", "offset_db", "block"]
    assert result[5] is None


def test_hostrun_reports_an_unsupported_rate() -> None:
    proc = subprocess.run(
        [str(MICROPYTHON), str(HOSTRUN), "16000", "60", "-26", "0"],
        input=b"",
        capture_output=True,
        env={"MICROPYPATH": str(FIRMWARE)},
        timeout=20,
        check=False,
    )
    assert proc.returncode == 2
    assert b"16000 Hz not supported; supported rates: 44100, 48000 Hz" in proc.stdout


def test_compiled_native_build_gives_the_same_readings(tmp_path: Path) -> None:
    # What a device build does (with -march=xtensawin there): the noise package compiled by
    # mpy-cross, the kernel as machine code for this machine, run from the .mpy files.
    build = tmp_path / "build"
    for source in sorted((FIRMWARE / "noise").glob("*.py")):
        relative = source.relative_to(FIRMWARE)
        out = build / relative.with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(MPY_CROSS), "-march=x64", "-o", str(out), "-s", str(relative), str(source)],
            check=True,
            timeout=20,
        )
    wav = write_wav(tmp_path / "t.wav", tone(48000, 1000.0, 80.0, 2.5), 48000)
    info, chunks = wav_words(wav)
    stream = b"".join(chunks)
    runs = []
    for path in (build, FIRMWARE):
        proc = subprocess.run(
            [str(MICROPYTHON), "-c", RUN_HOSTRUN, str(info.rate), "1", "-26", "0"],
            input=stream,
            capture_output=True,
            env={"MICROPYPATH": str(path)},
            timeout=20,
            check=True,
        )
        runs.append(proc.stdout)
    assert runs[0] == runs[1]
    assert runs[0].count(b"\n") == 2
    assert [r["laeq"] for r in analyze(wav, 1)] == pytest.approx([80.0, 80.0], abs=0.05)


def test_calibration_recording_reads_back_as_the_calibrator(
    mp_source: MicroPython, tmp_path: Path
) -> None:
    # noise.record writes the raw words as a 32-bit WAV: what a resident copies off the node.
    path = tmp_path / "cal.wav"
    peak = (2**23 - 1) * 10 ** (-26 / 20)
    result = mp_source.run("scen_noise", "record", {"path": str(path), "seconds": 3, "peak": peak})
    assert result == {"frames": 3 * 48000}
    readings = list(analyze(path, 1))
    assert [r["laeq"] for r in readings] == pytest.approx([94.0, 94.0], abs=0.05)
    corrected = list(analyze(path, 1, offset_db=94.0 - readings[0]["laeq"]))
    assert corrected[0]["laeq"] == pytest.approx(94.0, abs=0.01)


def test_node_task_publishes_contract_valid_noise_messages(mp_source: MicroPython) -> None:
    peak = (2**23 - 1) * 10 ** ((-26 + 70 - 94) / 20)  # 70 dB SPL
    args = {"peak": peak, "blocks": 250, "period_s": 1, "ts": 1_790_000_000}  # 2.5 s
    result = mp_source.run("scen_noise", "node_task", args)
    assert result["blocks"] == 250
    assert len(result["messages"]) == 2
    for seq, text in enumerate(result["messages"], 1):
        reading = parse_message(
            "commons/v1/esp32-a1b2c3/noise", text.encode(), received_at=1_790_000_000.0
        )
        assert reading.seq == seq
        assert reading.flags == ()
        assert reading.values["period"] == 1.0
        for key in ("laeq", "lafmax", "lafmin", "la10", "la50", "la90"):
            assert reading.values[key] == pytest.approx(70.0, abs=0.1), key
    quiet = mp_source.run("scen_noise", "node_task", {**args, "peak": peak / 100})  # 30 dB
    assert '"flags":["below_floor"]' in quiet["messages"][0]


def _shr_round(v: int, s: int) -> int:
    if s == 0:
        return v
    return _check(v + (1 << (s - 1))) >> s if s < 31 else 0


def _normalise(m: int, x: int) -> tuple[int, int]:
    while m >= 1 << 29:
        m = _check(m + 1) >> 1
        x += 1
    while m < 1 << 28 and x > 0 and m > 0:
        m = _check(m << 1)
        x -= 1
    return m, x


FastSnapshot = dict[str, Any]


def _fast_model(subs: list[list[int]], fs: list[int]) -> list[FastSnapshot]:
    """``noise.fast.run`` in plain Python, every intermediate checked against 32 bits.

    Returns the state and histogram at each period's end (then reset as the meter does)
    and at the end of the input.
    """
    fs = list(fs)
    hist: dict[str, int] = {}
    snapshots: list[FastSnapshot] = []
    kcal = fs[22]
    j = 0
    while j < 4 * len(subs):
        hh, hl, ll, cl = subs[j // 4]
        fs[13] = _check(fs[13] + cl)
        j += 4
        b = max(hh.bit_length() + 24 if hh else 0, hl.bit_length() + 13 if hl else 0)
        ex = max(max(b, ll.bit_length()) - 28, 0)
        em = _check(hh << (24 - ex) if 24 - ex >= 0 else hh >> (ex - 24))
        em = _check(em + (hl << (13 - ex) if 13 - ex >= 0 else hl >> (ex - 13)))
        em = _check(em + (ll >> ex))
        if fs[14]:
            fs[14] -= 1
            if fs[14] < fs[15]:
                xx = max(fs[17], ex)
                total = _check(_shr_round(fs[16], xx - fs[17]) + _shr_round(em, xx - ex))
                fs[16], fs[17] = _normalise(total, xx)
                fs[18] += 1
            if fs[14] == 0:
                fs[0], fs[1] = _normalise(fs[16] // fs[18], fs[17])
            continue
        xx = max(fs[1], ex)
        a = fs[0] >> (xx - fs[1]) if xx - fs[1] < 31 else 0
        d = _check((em >> (xx - ex) if xx - ex < 31 else 0) - a)
        bm, be, br = fs[19:22]
        t = _check(_check(bm * (d >> 15)) + (_check(bm * (d & 0x7FFF)) >> 15) + br) >> be
        fs[0], fs[1] = _normalise(_check(a + t), xx)
        if (fs[1], fs[0]) > (fs[3], fs[2]):
            fs[2], fs[3] = fs[0], fs[1]
        if (fs[1], fs[0]) < (fs[5], fs[4]):
            fs[4], fs[5] = fs[0], fs[1]
        xx = max(fs[7], ex)
        total = _check(_shr_round(fs[6], xx - fs[7]) + _shr_round(em, xx - ex))
        fs[6], fs[7] = _normalise(total, xx)
        fs[10] += 1
        if fs[10] == fs[11]:
            fs[10] = 0
            fs[12] += 1
            slot = 0
            if fs[0] > 0:
                lb = fs[0].bit_length()
                m = fs[0] << (29 - lb)
                idx, frac = (m >> 20) & 0xFF, (m >> 4) & 0xFFFF
                t0 = fs[32 + idx]
                l2 = _check(((fs[1] + lb - 1) << 16) + t0 + (((fs[33 + idx] - t0) * frac) >> 16))
                v = _check(_check(l2 * 30) + (_check((l2 >> 8) * 6750) >> 8) + kcal)
                slot = min(max(v >> 16, 0), fs[25] - 1)
            hist[str(slot)] = hist.get(str(slot), 0) + 1
        fs[8] += 1
        if fs[8] == fs[9]:
            fs[23], fs[24] = j, 1
            snapshots.append({"fs": fs[:32], "hist": dict(hist)})
            for i in (2, 3, 4, 6, 7, 8, 10, 12, 13):  # NoiseMeter._reset
                fs[i] = 0
            fs[5] = 0x3FFFFFFF
            hist.clear()
    fs[23], fs[24] = j, 0
    snapshots.append({"fs": fs[:32], "hist": dict(hist)})
    return snapshots


def test_fast_stage_stays_within_32_bits(mp_source: MicroPython) -> None:
    # Sub-block sums from silence to the largest the kernel can produce (120 samples of
    # 24-bit full scale), in jumps and at random scales, through the discard, four periods
    # and their histogram ticks: the model checks every intermediate against 32 bits, and
    # the port must compute exactly what the model does.
    top = 120 * 4095 * 4095
    rng = random.Random(61672)
    subs = [[0, 0, 0, 0]] * 200 + [[top, top, top, 120]] * 300
    subs += [[rng.randrange(0, 1 << k) for _ in range(3)] + [0] for k in range(1, 32)] * 30
    subs += [[0, rng.randrange(1 << 20), rng.randrange(1 << 31), 0] for _ in range(400)]
    result = mp_source.run("scen_noise", "fast_stage", {"subs": subs, "period_s": 1})
    expected = _fast_model(subs, result["initial"])
    assert len(expected) == 5
    assert result["snapshots"] == expected


def test_node_config_section_is_checked_key_by_key(mp_source: MicroPython) -> None:
    sections = [
        {},
        {"rate": 44100, "period_s": 10, "offset_db": -1.37, "sck": 32, "ws": 25, "sd": 33},
        {"rate": 16000},
        {"offset_db": "1.5"},
        {"period_s": 1.5},
        {"sd": 40},
        {"gain": 3},
        {"i2s": 2},
        {"sensitivity_dbfs": True},
    ]
    result = mp_source.run("scen_noise", "config_sections", {"sections": sections})
    assert result[0] == [48000, 60, -26.0, 0.0, None, None, None]
    assert result[1] == [44100, 10, -26.0, -1.37, 32, 25, 33]
    errors = [(r[1], r[2]) for r in result[2:]]
    assert [key for key, _ in errors] == [
        "rate",
        "offset_db",
        "period_s",
        "sd",
        "gain",
        "i2s",
        "sensitivity_dbfs",
    ]
    assert errors[0][1] == "noise.rate = 16000: supported rates: 44100, 48000 Hz"
    assert errors[4][1] == "noise.gain = 3: unknown key"


def test_ram_cost_stays_small(mp_source: MicroPython) -> None:
    # 64-bit unix port: imports ~25 KB (about half on the ESP32), a meter with its block
    # buffer ~12 KB (mostly byte arrays: the same there). A guard against creeping growth.
    result = mp_source.run("scen_noise", "memory")
    assert result["import"] < 32_000
    assert result["instance"] < 14_000


def test_slot_source_keeps_the_talking_slot(mp_source: MicroPython) -> None:
    result = mp_source.run("scen_noise", "slot_source")
    assert result["0"] == [i * 1000 for i in range(64)]
    assert result["1"] == [-(i * 7) for i in range(64)]
