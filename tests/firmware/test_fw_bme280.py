"""The BME280 driver under the MicroPython unix port, against a fake I2C chip."""

from __future__ import annotations

import importlib.util
import itertools
from types import ModuleType
from typing import Any

import pytest
from mprunner import DEVICES_DIR, MicroPython


def _load_model() -> ModuleType:
    # The same file the fake chip uses on the MicroPython side: the datasheet's
    # floating-point formulas, plain Python for both runtimes.
    spec = importlib.util.spec_from_file_location(
        "fw_bme280_model", DEVICES_DIR / "bme280_model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODEL = _load_model()
# Across the operating range: -40..85 degC, 300..1100 hPa, 0..100 %RH.
ENVS = [
    [t, p, rh]
    for t, p, rh in itertools.product(
        [-40.0, -10.0, 0.0, 21.5, 45.0, 85.0], [300.0, 870.0, 1013.25, 1100.0], [0.5, 45.0, 99.5]
    )
]


def _readings(mp: MicroPython, **args: Any) -> dict[str, Any]:
    result: dict[str, Any] = mp.run("scen_bme280", "readings", args)
    return result


def test_datasheet_example_is_exact(mp: MicroPython) -> None:
    # BMP280 datasheet 3.11.3: adc_T 519888 -> t_fine 128422, 25.08 degC;
    # adc_P 415148 -> 100653.27 Pa (double); the int64 variant lands within 1 Pa.
    case = {"cal": MODEL.DATASHEET_TP, "adc_t": 519888, "adc_p": 415148, "adc_h": 0}
    (result,) = mp.run("scen_bme280", "compensate", {"cases": [case]})
    assert result["t_fine"] == 128422
    assert result["t_centi"] == 2508
    assert result["p_q24_8"] / 256 == pytest.approx(100653.27, abs=1.0)
    assert result["h_q22_10"] == 0  # clamped


def _i32(x: int) -> int:
    x &= 0xFFFF_FFFF
    return x - (1 << 32) if x & 0x8000_0000 else x


def _i64(x: int) -> int:
    x &= 0xFFFF_FFFF_FFFF_FFFF
    return x - (1 << 64) if x & (1 << 63) else x


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _c_reference(c: dict[str, int], adc_t: int, adc_p: int, adc_h: int) -> dict[str, int]:
    """The datasheet's integer code with C's int32/int64 wrap-around after every step."""
    var1 = _i32(_i32(_i32((adc_t >> 3) - _i32(c["t1"] << 1)) * c["t2"]) >> 11)
    d = _i32((adc_t >> 4) - c["t1"])
    var2 = _i32(_i32(_i32(_i32(d * d) >> 12) * c["t3"]) >> 14)
    t_fine = _i32(var1 + var2)
    t_centi = _i32(_i32(t_fine * 5 + 128) >> 8)

    v1 = _i64(t_fine - 128000)
    v2 = _i64(_i64(v1 * v1) * c["p6"])
    v2 = _i64(v2 + _i64(_i64(v1 * c["p5"]) << 17))
    v2 = _i64(v2 + _i64(c["p4"] << 35))
    v1 = _i64((_i64(_i64(v1 * v1) * c["p3"]) >> 8) + _i64(_i64(v1 * c["p2"]) << 12))
    v1 = _i64(_i64(_i64((1 << 47) + v1) * c["p1"]) >> 33)
    p = 1048576 - adc_p
    p = _c_div(_i64(_i64(_i64(p << 31) - v2) * 3125), v1)
    v1 = _i64(_i64(_i64(c["p9"] * (p >> 13)) * (p >> 13)) >> 25)
    v2 = _i64(_i64(c["p8"] * p) >> 19)
    p_q24_8 = _i64((_i64(p + v1 + v2) >> 8) + _i64(c["p7"] << 4)) & 0xFFFF_FFFF

    v = _i32(t_fine - 76800)
    a = _i32(_i32(_i32(_i32(adc_h << 14) - _i32(c["h4"] << 20)) - _i32(c["h5"] * v)) + 16384) >> 15
    inner = _i32(_i32(_i32(v * c["h6"]) >> 10) * _i32(_i32(_i32(v * c["h3"]) >> 11) + 32768))
    b = _i32(_i32(_i32(_i32(inner >> 10) + 2097152) * c["h2"]) + 8192) >> 14
    v = _i32(a * b)
    v = _i32(v - _i32(_i32(_i32(_i32((v >> 15) * (v >> 15)) >> 7) * c["h1"]) >> 4))
    v = min(max(v, 0), 419430400)
    return {"t_fine": t_fine, "t_centi": t_centi, "p_q24_8": p_q24_8, "h_q22_10": v >> 12}


@pytest.mark.parametrize("calibration", sorted(MODEL.SETS))
def test_integer_compensation_equals_the_c_code(mp_source: MicroPython, calibration: str) -> None:
    # MicroPython's integers never wrap; over the operating range the Bosch
    # code never overflows either, so the results must be the C results, bit
    # for bit (a float comparison could not see a rounding-order slip).
    cal = MODEL.SETS[calibration]
    cases = []
    for env in ENVS:
        adc_t, adc_p, adc_h = MODEL.raw_for(cal, *env)
        cases.append({"cal": cal, "adc_t": adc_t, "adc_p": adc_p, "adc_h": adc_h})
    result = mp_source.run("scen_bme280", "compensate", {"cases": cases})
    for case, got in zip(cases, result, strict=True):
        assert got == _c_reference(cal, case["adc_t"], case["adc_p"], case["adc_h"]), case


@pytest.mark.parametrize("calibration", sorted(MODEL.SETS))
def test_compensation_matches_the_datasheet_float_formulas(
    mp: MicroPython, calibration: str
) -> None:
    cal = MODEL.SETS[calibration]
    result = _readings(mp, chip={"calibration": calibration}, envs=ENVS)
    assert len(result["readings"]) == len(ENVS)
    for env, reading in zip(ENVS, result["readings"], strict=True):
        temp, rh, pres = reading["ok"]
        adc_t, adc_p, adc_h = reading["raw"]
        # Against the float formulas on the same raw values: within the integer
        # versions' resolution (0.01 degC; 1/256 Pa and 1/1024 %RH plus their
        # truncations, measured below 0.1 Pa and 0.007 %RH).
        f_temp, t_fine = MODEL.temperature(cal, adc_t)
        assert temp == pytest.approx(f_temp, abs=0.01), env
        assert pres == pytest.approx(MODEL.pressure(cal, t_fine, adc_p) / 100, abs=0.002), env
        assert rh == pytest.approx(MODEL.humidity(cal, t_fine, adc_h), abs=0.01), env
        # Against the conditions the chip was put in: plus half a step of the
        # 16-bit temperature and pressure at x1 oversampling (2.6 Pa a step).
        assert temp == pytest.approx(env[0], abs=0.01), env
        assert pres == pytest.approx(env[1], abs=0.02), env
        assert rh == pytest.approx(env[2], abs=0.01), env


def test_decodes_signed_and_shared_nibble_trimming_registers(mp: MicroPython) -> None:
    # dig_H4 / dig_H5 are signed 12-bit values sharing register 0xE5; dig_H2 is
    # signed 16-bit, dig_H6 signed 8-bit. Values chosen to hit every sign.
    cal = dict(MODEL.TYPICAL_PART, h2=-300, h3=17, h4=-1000, h5=-2047, h6=-5, t3=-1, p9=-1)
    assert mp.run("scen_bme280", "decode", {"cal": cal}) == cal
    cal = dict(MODEL.TYPICAL_PART, h4=2047, h5=1234, h6=127, h1=255, h3=255)
    assert mp.run("scen_bme280", "decode", {"cal": cal}) == cal


def test_forced_mode_once_per_read(mp: MicroPython) -> None:
    result = _readings(mp, envs=[None, None, None])
    assert result["chip_id"] == 0x60 and result["has_humidity"]
    assert result["forced"] == 3
    writes = [tuple(w) for w in result["writes"]]
    # Soft reset, filter off; then per read: ctrl_hum x1 before ctrl_meas
    # (T x1, P x1, forced mode).
    assert writes == [(0xE0, 0xB6), (0xF5, 0x00)] + [(0xF2, 0x01), (0xF4, 0x25)] * 3
    reads = [tuple(r) for r in result["reads"]]
    assert (0x88, 26) in reads and (0xE1, 7) in reads
    assert reads.count((0xF7, 8)) == 3  # one burst read of the data per reading
    assert set(result["calls"]) == {"readfrom_mem_into", "writeto_mem"}
    # 10 ms (the datasheet's maximum conversion time), then status polls 2 ms apart.
    assert all(r["ms"] == 10 + 2 * 2 for r in result["readings"])


def test_bmp280_has_no_humidity(mp: MicroPython) -> None:
    result = _readings(mp, chip={"chip_id": 0x58})
    assert result["chip_id"] == 0x58 and not result["has_humidity"]
    temp, rh, pres = result["readings"][0]["ok"]
    assert rh is None
    assert temp == pytest.approx(21.5, abs=0.01) and pres == pytest.approx(1013.25, abs=0.02)
    assert (0xE1, 7) not in [tuple(r) for r in result["reads"]]
    assert 0xF2 not in [w[0] for w in result["writes"]]


@pytest.mark.parametrize("chip_id", [0x00, 0x61, 0xFF])
def test_another_chip_is_refused(mp: MicroPython, chip_id: int) -> None:
    result = _readings(mp, chip={"chip_id": chip_id})
    err = result["init_error"]
    assert err["type"] == "ChipIdMismatch"
    assert (err["chip_id"], err["address"], err["missing"]) == (chip_id, 0x76, True)
    assert result["writes"] == []  # an unknown chip is not reset


@pytest.mark.parametrize(("chip_address", "address"), [(0x77, 0x76), (0x76, 0x77)])
def test_no_chip_at_the_address_is_missing(
    mp: MicroPython, chip_address: int, address: int
) -> None:
    result = _readings(mp, chip_address=chip_address, address=address)
    err = result["init_error"]
    assert (err["type"], err["missing"]) == ("BusError", True)
    assert (err["address"], err["errno"]) == (address, 19)  # ENODEV: no ACK
    assert result["writes"] == []


def test_a_conversion_that_never_ends_is_bounded(mp: MicroPython) -> None:
    result = _readings(mp, chip={"stuck": True}, envs=[None, None])
    for reading in result["readings"]:
        err = reading["error"]
        assert (err["type"], err["polls"], err["missing"]) == ("MeasurementTimeout", 10, True)
        assert reading["ms"] == 10 + 10 * 2
    # The constructor's two polls (NVM copy after reset, then done), 10 per reading.
    assert result["status_reads"] == 2 + 2 * 10


def test_a_slow_conversion_is_waited_for(mp: MicroPython) -> None:
    result = _readings(mp, chip={"busy_polls": 6})
    reading = result["readings"][0]
    assert reading["ok"][0] == pytest.approx(21.5, abs=0.01)
    assert reading["ms"] == 10 + 6 * 2


def test_skipped_humidity_is_an_error_not_a_value(mp: MicroPython) -> None:
    result = _readings(mp, chip={"ignore_ctrl_hum": True})
    err = result["readings"][0]["error"]
    assert (err["type"], err["quantity"], err["raw"]) == ("InvalidMeasurement", "humidity", 0x8000)
    assert not err["missing"]


def test_reading_the_chip_allocates_nothing(mp: MicroPython) -> None:
    result = mp.run("scen_bme280", "no_alloc", {"rounds": 20})
    assert result["failure"] is None
    assert result["forced"] == 20
