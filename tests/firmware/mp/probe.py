"""Which files the firmware modules were loaded from, and the runtime's .mpy version."""

import sys


def modules(args):
    out = {}
    for name in args["modules"]:
        module = __import__(name, None, None, ["__name__"])
        out[name] = module.__file__
    return {"files": out, "mpy": sys.implementation._mpy}


def memory(args):
    """Heap taken by importing the three drivers and by one instance of each."""
    import gc

    from bme280_device import FakeBME280, FakeI2C
    from fakes import FakeClock, FakeUart

    clock = FakeClock()
    uarts = [FakeUart(clock, size=64), FakeUart(clock, size=64)]
    i2c = FakeI2C({0x76: FakeBME280({"record": False})}, record=False)
    gc.collect()
    before = gc.mem_alloc()
    from drivers import bme280, pms5003, sds011

    gc.collect()
    imported = gc.mem_alloc()
    sensors = [
        sds011.SDS011(uarts[0], clock),
        pms5003.PMS5003(uarts[1], clock),
        bme280.BME280(bme280.BME280I2C(i2c), clock),
    ]
    gc.collect()
    return {"import": imported - before, "instances": gc.mem_alloc() - imported, "n": len(sensors)}
