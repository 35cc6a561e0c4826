"""The noise meter's parts on the unix port: kernel heap use and word size, sources, slot
check, the A-weighting design against REFERENCE.md 1.5, settings, and the native build."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

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
