"""A BME280 (or BMP280) behind a fake ``machine.I2C``: a register map with
trimming parameters, forced-mode conversions that take a few status polls,
and raw values computed from the environment by the datasheet's formulas.
"""

import errno

import bme280_model

_MEASURING = 0x08
_IM_UPDATE = 0x01


class FakeBME280:
    """Options (all optional):

    calibration: a bme280_model set name or a dict (default "datasheet")
    env: [degC, hPa, %RH] the chip is in; raw: [adc_t, adc_p, adc_h] instead
    chip_id: 0x60 BME280 (default), 0x58 BMP280, anything else
    busy_polls: status reads that still show "measuring" after a forced write
    stuck: "measuring" never clears; reset_polls: status reads showing "im_update"
    ignore_ctrl_hum: humidity oversampling stays 0, so humidity is skipped
    record: keep a log of register reads and writes (off: allocation-free)
    """

    def __init__(self, opts):
        cal = opts.get("calibration", "datasheet")
        self.cal = bme280_model.SETS[cal] if isinstance(cal, str) else cal
        self.chip_id = opts.get("chip_id", 0x60)
        self.busy_polls = opts.get("busy_polls", 2)
        self.reset_polls = opts.get("reset_polls", 1)
        self.stuck = opts.get("stuck", False)
        self.ignore_ctrl_hum = opts.get("ignore_ctrl_hum", False)
        self.record = opts.get("record", True)
        self.regs = bytearray(256)
        self.regs[0xD0] = self.chip_id
        tp, h = bme280_model.registers(self.cal)
        self.regs[0x88 : 0x88 + 26] = tp
        if self.chip_id == 0x60:
            self.regs[0xE1 : 0xE1 + 7] = h
        self._skipped()
        self.raw = opts.get("raw")
        if self.raw is None:
            self.set_env(*opts.get("env", [21.5, 1013.25, 45.0]))
        self._busy = 0
        self._im_update = 0
        self.forced = 0
        self.status_reads = 0
        self.writes = []  # [reg, value]
        self.reads = []  # [reg, length]

    def set_env(self, temp_c, pres_hpa, rh):
        self.raw = list(bme280_model.raw_for(self.cal, temp_c, pres_hpa, rh))

    def _skipped(self):
        # Reset values of the data registers: 0x80000 / 0x8000 = "skipped".
        for i in range(8):
            self.regs[0xF7 + i] = 0x80 if i in (0, 3, 6) else 0

    def read(self, reg, buf):
        if self.record:
            self.reads.append([reg, len(buf)])
        if reg == 0xF3:
            self.status_reads += 1
            status = 0
            if self._busy or self.stuck:
                status |= _MEASURING
                self._busy = max(self._busy - 1, 0)
                if not self._busy and not self.stuck:
                    self._convert()
            if self._im_update:
                status |= _IM_UPDATE
                self._im_update -= 1
            self.regs[0xF3] = status
        for i in range(len(buf)):
            buf[i] = self.regs[(reg + i) & 0xFF]

    def write(self, reg, data):
        for i in range(len(data)):
            if self.record:
                self.writes.append([reg + i, data[i]])
            self._write_reg(reg + i, data[i])

    def _write_reg(self, reg, value):
        if reg == 0xE0 and value == 0xB6:
            self.regs[0xF2] = self.regs[0xF4] = self.regs[0xF5] = 0
            self._skipped()
            self._im_update = self.reset_polls
            return
        if reg == 0xF2 and self.ignore_ctrl_hum:
            return
        self.regs[reg] = value
        if reg == 0xF4 and value & 0x03 == 0x01:  # forced mode
            self.forced += 1
            self._busy = self.busy_polls
            if not self._busy and not self.stuck:
                self._convert()

    def _convert(self):
        ctrl = self.regs[0xF4]
        adc_t, adc_p, adc_h = self.raw
        self._skipped()
        if ctrl >> 5:
            self.regs[0xFA] = adc_t >> 12
            self.regs[0xFB] = (adc_t >> 4) & 0xFF
            self.regs[0xFC] = (adc_t & 0x0F) << 4
        if (ctrl >> 2) & 0x07:
            self.regs[0xF7] = adc_p >> 12
            self.regs[0xF8] = (adc_p >> 4) & 0xFF
            self.regs[0xF9] = (adc_p & 0x0F) << 4
        if self.chip_id == 0x60 and self.regs[0xF2] & 0x07:
            self.regs[0xFD] = adc_h >> 8
            self.regs[0xFE] = adc_h & 0xFF
        self.regs[0xF4] = ctrl & 0xFC  # back to sleep mode


class FakeI2C:
    """``machine.I2C`` with readfrom_mem_into / writeto_mem; devices by address.

    An address with no device raises OSError(ENODEV), as the ESP32 port does
    when nothing acknowledges.
    """

    def __init__(self, devices, record=True):
        self.devices = devices
        self.record = record
        self.calls = []

    def _device(self, addr):
        device = self.devices.get(addr)
        if device is None:
            raise OSError(errno.ENODEV)
        return device

    def readfrom_mem_into(self, addr, memaddr, buf):
        if self.record:
            self.calls.append("readfrom_mem_into")
        self._device(addr).read(memaddr, buf)

    def writeto_mem(self, addr, memaddr, buf):
        if self.record:
            self.calls.append("writeto_mem")
        self._device(addr).write(memaddr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes):
        if self.record:
            self.calls.append("readfrom_mem")  # the driver should not use this one
        buf = bytearray(nbytes)
        self._device(addr).read(memaddr, buf)
        return bytes(buf)
