"""Bosch BME280 (temperature, humidity, pressure) and BMP280 (no humidity) on I2C.

Chip logic (``BME280``) is separate from the bus (``BME280I2C``): the chip
class needs only ``read_into(reg, buf)`` and ``write(reg, value)``. One
reading is one forced-mode conversion at x1 oversampling with the IIR filter
off (the datasheet's "weather monitoring" setting, which keeps self-heating
down), then the datasheet's integer compensation (BME280 datasheet rev 1.6,
section 4.2.3: temperature int32, pressure int64, humidity int32).
MicroPython's integers grow past 32/64 bits instead of overflowing, and the
Bosch formulas are written not to overflow, so the results are the C results.
"""

import struct
import time

from micropython import const

from .errors import BusError, ChipIdMismatch, InvalidMeasurement, MeasurementTimeout

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from .hwtypes import Clock, I2CLike

_NAME = "bme280"
ADDRESS_PRIMARY = const(0x76)
ADDRESS_SECONDARY = const(0x77)
CHIP_ID_BME280 = const(0x60)
CHIP_ID_BMP280 = const(0x58)

_REG_CALIB_TP = const(0x88)  # 0x88..0xA1: dig_T1..dig_P9, (0xA0 unused), dig_H1
_CALIB_TP_LEN = const(26)
_REG_CALIB_H = const(0xE1)  # 0xE1..0xE7: dig_H2..dig_H6
_CALIB_H_LEN = const(7)
_REG_CHIP_ID = const(0xD0)
_REG_RESET = const(0xE0)
_REG_CTRL_HUM = const(0xF2)
_REG_STATUS = const(0xF3)
_REG_CTRL_MEAS = const(0xF4)
_REG_CONFIG = const(0xF5)
_REG_DATA = const(0xF7)  # press_msb .. hum_lsb
_DATA_LEN = const(8)

_RESET_WORD = const(0xB6)
_STATUS_MEASURING = const(0x08)
_STATUS_IM_UPDATE = const(0x01)
_OSRS_X1 = const(0b001)
_MODE_FORCED = const(0b01)
_CTRL_MEAS_FORCED = const((_OSRS_X1 << 5) | (_OSRS_X1 << 2) | _MODE_FORCED)
_CONFIG_FILTER_OFF = const(0)
# Datasheet appendix B: t_measure,max = 1.25 + 2.3*1 + (2.3*1 + 0.575) + (2.3*1 + 0.575)
# = 9.3 ms at x1/x1/x1; wait that long before polling the status register.
_MEASURE_MAX_MS = const(10)
_STARTUP_MS = const(2)  # datasheet: start-up time 2 ms after power-on or reset
# Reset values left in the data registers when a measurement was skipped.
_SKIPPED_TP = const(0x80000)
_SKIPPED_H = const(0x8000)


def _s8(value: int) -> int:
    return value - 256 if value > 127 else value


class Calibration:
    """The trimming parameters ``dig_T1`` .. ``dig_H6`` (datasheet table 16)."""

    def __init__(self, tp: bytes | bytearray, h: bytes | bytearray | None) -> None:
        words: tuple[int, ...] = struct.unpack_from("<HhhHhhhhhhhh", tp, 0)
        self.t1, self.t2, self.t3 = words[0], words[1], words[2]
        self.p1, self.p2, self.p3 = words[3], words[4], words[5]
        self.p4, self.p5, self.p6 = words[6], words[7], words[8]
        self.p7, self.p8, self.p9 = words[9], words[10], words[11]
        self.h1 = tp[25]
        if h is None:
            self.h2 = self.h3 = self.h4 = self.h5 = self.h6 = 0
        else:
            self.h2 = _s8(h[1]) << 8 | h[0]
            self.h3 = h[2]
            # dig_H4 and dig_H5 are signed 12-bit values sharing 0xE5.
            self.h4 = (_s8(h[3]) << 4) | (h[4] & 0x0F)
            self.h5 = (_s8(h[5]) << 4) | (h[4] >> 4)
            self.h6 = _s8(h[6])


def t_fine(cal: Calibration, adc_t: int) -> int:
    """The datasheet's ``t_fine`` (BME280_compensate_T_int32) from raw temperature."""
    var1 = (((adc_t >> 3) - (cal.t1 << 1)) * cal.t2) >> 11
    x = (adc_t >> 4) - cal.t1
    var2 = (((x * x) >> 12) * cal.t3) >> 14
    return var1 + var2


def temperature_centi(fine: int) -> int:
    """Temperature in 0.01 degC from ``t_fine``."""
    return (fine * 5 + 128) >> 8


def _div_c(a: int, b: int) -> int:
    # C integer division (truncates toward zero); Python's // floors.
    q = a // b
    if q < 0 and q * b != a:
        q += 1
    return q


def pressure_q24_8(cal: Calibration, fine: int, adc_p: int) -> int:
    """Pressure in Pa as Q24.8 (BME280_compensate_P_int64); 0 if the trimming is degenerate."""
    var1 = fine - 128000
    var2 = var1 * var1 * cal.p6
    var2 += (var1 * cal.p5) << 17
    var2 += cal.p4 << 35
    var1 = ((var1 * var1 * cal.p3) >> 8) + ((var1 * cal.p2) << 12)
    var1 = (((1 << 47) + var1) * cal.p1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _div_c(((p << 31) - var2) * 3125, var1)
    var1 = (cal.p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.p8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.p7 << 4)


def humidity_q22_10(cal: Calibration, fine: int, adc_h: int) -> int:
    """Relative humidity in % as Q22.10 (bme280_compensate_H_int32), clamped to 0..100."""
    v = fine - 76800
    a = (((adc_h << 14) - (cal.h4 << 20) - (cal.h5 * v)) + 16384) >> 15
    b = (((((v * cal.h6) >> 10) * (((v * cal.h3) >> 11) + 32768)) >> 10) + 2097152) * cal.h2 + 8192
    v = a * (b >> 14)
    v -= ((((v >> 15) * (v >> 15)) >> 7) * cal.h1) >> 4
    if v < 0:
        v = 0
    elif v > 419430400:
        v = 419430400
    return v >> 12


class BME280Reading:
    """``temperature`` in degC, ``humidity`` in %RH (None on a BMP280), ``pressure`` in hPa."""

    def __init__(self, temperature: float, humidity: float | None, pressure: float) -> None:
        self.temperature = temperature
        self.humidity = humidity
        self.pressure = pressure


class BME280I2C:
    """The bus side: register access at one I2C address through a ``machine.I2C``.

    Reads go through ``readfrom_mem_into`` into the caller's preallocated
    buffer. An OSError (no ACK, bus timeout) becomes BusError, a SensorMissing.
    """

    def __init__(self, i2c: I2CLike, address: int = ADDRESS_PRIMARY) -> None:
        self._i2c = i2c
        self.address = address
        self._one = bytearray(1)

    def read_into(self, reg: int, buf: bytearray) -> None:
        try:
            self._i2c.readfrom_mem_into(self.address, reg, buf)
        except OSError as exc:
            raise BusError(_NAME, self.address, exc.args[0]) from None

    def write(self, reg: int, value: int) -> None:
        self._one[0] = value
        try:
            self._i2c.writeto_mem(self.address, reg, self._one)
        except OSError as exc:
            raise BusError(_NAME, self.address, exc.args[0]) from None


class BME280:
    """One BME280 or BMP280, read in forced mode once per ``read()``.

    The constructor checks the chip id (ChipIdMismatch otherwise), soft-resets
    the chip and reads its trimming parameters. Waiting for a conversion is
    bounded: the datasheet's maximum conversion time, then at most
    ``max_polls`` status reads ``poll_ms`` apart (MeasurementTimeout after).
    """

    def __init__(
        self,
        bus: BME280I2C,
        clock: Clock = time,
        max_polls: int = 10,
        poll_ms: int = 2,
        address: int | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._max_polls = max_polls
        self._poll_ms = poll_ms
        self._one = bytearray(1)
        self._data = bytearray(_DATA_LEN)
        self.address = bus.address if address is None else address
        chip_id = self._read_u8(_REG_CHIP_ID)
        if chip_id != CHIP_ID_BME280 and chip_id != CHIP_ID_BMP280:
            raise ChipIdMismatch(_NAME, self.address, chip_id)
        self.chip_id = chip_id
        self.has_humidity = chip_id == CHIP_ID_BME280
        bus.write(_REG_RESET, _RESET_WORD)
        clock.sleep_ms(_STARTUP_MS)
        self._wait_status(_STATUS_IM_UPDATE)
        tp = bytearray(_CALIB_TP_LEN)
        bus.read_into(_REG_CALIB_TP, tp)
        h = None
        if self.has_humidity:
            h = bytearray(_CALIB_H_LEN)
            bus.read_into(_REG_CALIB_H, h)
        self.calibration = Calibration(tp, h)
        bus.write(_REG_CONFIG, _CONFIG_FILTER_OFF)
        self.adc_t = 0
        self.adc_p = 0
        self.adc_h = 0

    def _read_u8(self, reg: int) -> int:
        self._bus.read_into(reg, self._one)
        return self._one[0]

    def _wait_status(self, mask: int) -> None:
        for _ in range(self._max_polls):
            if not self._read_u8(_REG_STATUS) & mask:
                return
            self._clock.sleep_ms(self._poll_ms)
        raise MeasurementTimeout(_NAME, self._max_polls)

    def measure_raw(self) -> None:
        """One forced conversion; leaves ``adc_t``, ``adc_p``, ``adc_h``. Allocation-free."""
        bus = self._bus
        if self.has_humidity:
            # ctrl_hum takes effect with the next ctrl_meas write; written every
            # time so a chip that reset itself still measures humidity.
            bus.write(_REG_CTRL_HUM, _OSRS_X1)
        bus.write(_REG_CTRL_MEAS, _CTRL_MEAS_FORCED)
        self._clock.sleep_ms(_MEASURE_MAX_MS)
        self._wait_status(_STATUS_MEASURING)
        d = self._data
        bus.read_into(_REG_DATA, d)
        self.adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        self.adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        self.adc_h = (d[6] << 8) | d[7]

    def read(self) -> BME280Reading:
        """Measure once and compensate: degC, %RH (None on a BMP280), hPa."""
        self.measure_raw()
        if self.adc_t == _SKIPPED_TP:
            raise InvalidMeasurement(_NAME, "temperature", self.adc_t)
        if self.adc_p == _SKIPPED_TP:
            raise InvalidMeasurement(_NAME, "pressure", self.adc_p)
        cal = self.calibration
        fine = t_fine(cal, self.adc_t)
        humidity = None
        if self.has_humidity:
            if self.adc_h == _SKIPPED_H:
                raise InvalidMeasurement(_NAME, "humidity", self.adc_h)
            humidity = humidity_q22_10(cal, fine, self.adc_h) / 1024
        return BME280Reading(
            temperature_centi(fine) / 100,
            humidity,
            pressure_q24_8(cal, fine, self.adc_p) / 25600,
        )
