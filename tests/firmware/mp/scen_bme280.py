"""BME280 scenarios: the real driver against the fake I2C chip."""

import bme280_model
from bme280_device import FakeBME280, FakeI2C
from drivers import bme280
from fakes import FakeClock, describe_error, heap_locked


def _open(args):
    clock = FakeClock()
    chip = FakeBME280(args.get("chip", {}))
    i2c = FakeI2C({args.get("chip_address", 0x76): chip}, record=args.get("record", True))
    bus = bme280.BME280I2C(i2c, args.get("address", 0x76))
    return clock, chip, i2c, bus


def _cal_dict(cal):
    return {
        k: getattr(cal, k)
        for k in (
            "t1", "t2", "t3", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9",
            "h1", "h2", "h3", "h4", "h5", "h6",
        )
    }  # fmt: skip


def readings(args):
    """Construct the driver, then read once per environment in ``envs``."""
    clock, chip, i2c, bus = _open(args)
    try:
        sensor = bme280.BME280(bus, clock, **args.get("driver", {}))
    except Exception as exc:  # the test compares the error class
        return {"init_error": describe_error(exc), "writes": chip.writes}
    out = []
    for env in args.get("envs", [None]):
        if env is not None:
            chip.set_env(*env)
        t_before = clock.now
        try:
            r = sensor.read()
            out.append(
                {
                    "ok": [r.temperature, r.humidity, r.pressure],
                    "raw": [sensor.adc_t, sensor.adc_p, sensor.adc_h],
                    "ms": clock.now - t_before,
                }
            )
        except Exception as exc:
            out.append({"error": describe_error(exc), "ms": clock.now - t_before})
    return {
        "readings": out,
        "chip_id": sensor.chip_id,
        "has_humidity": sensor.has_humidity,
        "calibration": _cal_dict(sensor.calibration),
        "writes": chip.writes,
        "reads": chip.reads,
        "calls": i2c.calls,
        "forced": chip.forced,
        "status_reads": chip.status_reads,
    }


def compensate(args):
    """The pure integer compensation on given raw values: exact ints out."""
    out = []
    for case in args["cases"]:
        tp, h = bme280_model.registers(case["cal"])
        cal = bme280.Calibration(tp, h)
        fine = bme280.t_fine(cal, case["adc_t"])
        out.append(
            {
                "t_fine": fine,
                "t_centi": bme280.temperature_centi(fine),
                "p_q24_8": bme280.pressure_q24_8(cal, fine, case["adc_p"]),
                "h_q22_10": bme280.humidity_q22_10(cal, fine, case.get("adc_h", 0)),
            }
        )
    return out


def decode(args):
    """Calibration registers built from ``cal`` and decoded by the driver."""
    tp, h = bme280_model.registers(args["cal"])
    return _cal_dict(bme280.Calibration(tp, h))


def no_alloc(args):
    """measure_raw() with the heap locked (the fake chip records nothing)."""
    args = dict(args)
    args["record"] = False
    args["chip"] = dict(args.get("chip", {}), record=False)
    clock, chip, _i2c, bus = _open(args)
    sensor = bme280.BME280(bus, clock)
    failure = heap_locked(sensor.measure_raw, args.get("rounds", 20))
    return {"failure": failure, "forced": chip.forced, "raw": [sensor.adc_t, sensor.adc_p]}
