"""The air the emulated sensors sit in, and the sensors themselves.

The host writes the environment as a timeline (``env.bin``: one record per
``step`` seconds of the node's time, five little-endian uint16: PM2.5 and PM10
in 0.1 ug/m3 as an optical sensor sees them (humidity growth included),
temperature in 0.01 degC + 50 degC, RH in 0.01 %, pressure in 0.1 hPa) from
commons/sim/physics.py; it is read here record by record, so
it costs the node's heap nothing. The sensors add their own 1 Hz noise and the
occasional corrupted frame, seeded per node.
"""

import random
import struct

import bme280_model
import sim_clock
import sim_config
from bme280_device import FakeBME280
from pms5003_device import PMS5003Device
from sds011_device import SDS011Device

_RECORD = 10
_FORMAT = "<HHHHH"


class Environment:
    def __init__(self, cfg):
        self.path = cfg.get("file", "env.bin")
        self.start = cfg.get("start", 0)
        self.step = cfg.get("step", 60)
        self.count = cfg.get("count", 0)
        self._index = -1
        self._values = (0.0, 0.0, 20.0, 50.0, 1013.25)
        self._buf = bytearray(_RECORD)

    def at(self, t):
        """(pm2_5, pm10, temp, rh, pres) at the node's time ``t`` (UTC seconds)."""
        if not self.count:
            return self._values
        index = int((t - self.start) // self.step) % self.count
        if index != self._index:
            with open(self.path, "rb") as f:
                f.seek(index * _RECORD)
                f.readinto(self._buf)
            a, b, c, d, e = struct.unpack(_FORMAT, self._buf)
            self._values = (a / 10, b / 10, c / 100 - 50, d / 100, e / 10)
            self._index = index
        return self._values

    def now(self):
        return self.at(sim_clock.now())


_shared = []


def environment():
    if not _shared:
        _shared.append(Environment(sim_config.section("env")))
        random.seed(sim_config.get().get("seed", 1))
    return _shared[0]


def _jitter(value, rel, floor):
    noise = value * rel
    if noise < floor:
        noise = floor
    out = value + random.uniform(-noise, noise)
    return out if out > 0 else 0.0


class _Faults:
    def __init__(self, opts):
        self.rate = opts.get("corrupt_rate", 0.0)
        self.corrupted = 0

    def fault(self):
        if self.rate and random.random() < self.rate:
            self.corrupted += 1
            return "corrupt" if random.random() < 0.7 else "truncate"
        return None


class SimSDS011(SDS011Device):
    """An SDS011 in the simulated air: 0.1 ug/m3 steps, saturating at 999.9."""

    def __init__(self, opts):
        opts = dict(opts)
        opts["record"] = False
        super().__init__(opts)
        self.env = environment()
        self.faults = _Faults(opts)

    def frame_values(self, index, now):
        pm2_5, pm10 = self.env.now()[:2]
        pm2_5 = _jitter(pm2_5, 0.05, 0.3)
        pm10 = _jitter(pm10, 0.05, 0.3)
        if pm10 < pm2_5:
            pm10 = pm2_5
        return [min(int(pm2_5 * 10), 9999), min(int(pm10 * 10), 9999)]

    def frame_fault(self, index):
        return self.faults.fault()


class SimPMS5003(PMS5003Device):
    """A PMS5003 in the simulated air: CF=1 and atmospheric values, particle counts."""

    def __init__(self, opts):
        opts = dict(opts)
        opts["record"] = False
        super().__init__(opts)
        self.env = environment()
        self.faults = _Faults(opts)

    def frame_values(self, index, now):
        pm2_5, pm10 = self.env.now()[:2]
        atm2_5 = int(_jitter(pm2_5, 0.05, 1.0))
        atm10 = max(int(_jitter(pm10, 0.05, 1.0)), atm2_5)
        atm1 = int(atm2_5 * 0.7)

        # CF=1 equals "atmospheric" up to about 30 ug/m3 and reads higher above.
        def cf1(v):
            return v if v <= 30 else int(30 + (v - 30) * 1.5)

        n25 = atm2_5 * 12
        return [
            cf1(atm1), cf1(atm2_5), cf1(atm10), atm1, atm2_5, atm10,
            atm2_5 * 150, atm2_5 * 45, n25 * 2, n25, (atm10 - atm2_5) * 3 + 1,
            (atm10 - atm2_5) // 2, 0x9700,
        ]  # fmt: skip

    def frame_fault(self, index):
        return self.faults.fault()


class SimBME280(FakeBME280):
    """A BME280 whose raw ADC values follow the simulated temperature, pressure and RH."""

    def __init__(self, opts):
        opts = dict(opts)
        opts["record"] = False
        super().__init__(opts)
        self.env = environment()

    def _convert(self):
        temp, rh, pres = self.env.now()[2:]
        self.raw = list(
            bme280_model.raw_for(
                self.cal, _jitter(temp, 0.0, 0.02), _jitter(pres, 0.0, 0.02), _jitter(rh, 0.0, 0.05)
            )
        )
        super()._convert()


UART_DEVICES = {"sds011": SimSDS011, "pms5003": SimPMS5003}
I2C_DEVICES = {"bme280": SimBME280}
