"""The BME280's floating-point compensation (Bosch BME280 datasheet rev 1.6,
section 8.1, double precision) and its inverse: which raw ADC values a chip
with given trimming parameters reports for a given temperature, pressure and
humidity. Plain Python that runs on CPython and on the MicroPython unix port.

Trimming parameter sets (dicts with keys t1..t3, p1..p9, h1..h6):

DATASHEET_TP: the temperature and pressure example of the Bosch BMP280
datasheet (section 3.11.3), the only computation example Bosch publishes; the
BME280 uses the same formulas. Its humidity parameters are the ones real
BME280 parts report: dig_H1 = 75, dig_H3 = 0, dig_H6 = 30 recur in every
published register dump, dig_H2/H4/H5 vary by part around these values.

TYPICAL_PART: a whole parameter set of the shape real BME280 parts report
(dig_T3 = 50, dig_P3 = 3024, dig_P6 = -7, dig_P7 = 9900, dig_P8 = -10230,
dig_P9 = 4285 recur across published dumps).
"""

DATASHEET_TP = {
    "t1": 27504, "t2": 26435, "t3": -1000,
    "p1": 36477, "p2": -10685, "p3": 3024, "p4": 2855, "p5": 140, "p6": -7,
    "p7": 15500, "p8": -14600, "p9": 6000,
    "h1": 75, "h2": 362, "h3": 0, "h4": 313, "h5": 50, "h6": 30,
}  # fmt: skip

TYPICAL_PART = {
    "t1": 28209, "t2": 26575, "t3": 50,
    "p1": 37882, "p2": -10739, "p3": 3024, "p4": 6140, "p5": -8, "p6": -7,
    "p7": 9900, "p8": -10230, "p9": 4285,
    "h1": 75, "h2": 354, "h3": 0, "h4": 339, "h5": 0, "h6": 30,
}  # fmt: skip

SETS = {"datasheet": DATASHEET_TP, "typical": TYPICAL_PART}


def temperature(cal, adc_t):
    """(degC, t_fine) from raw temperature: BME280_compensate_T_double."""
    var1 = (adc_t / 16384.0 - cal["t1"] / 1024.0) * cal["t2"]
    x = adc_t / 131072.0 - cal["t1"] / 8192.0
    var2 = x * x * cal["t3"]
    return (var1 + var2) / 5120.0, int(var1 + var2)


def pressure(cal, t_fine, adc_p):
    """Pa from raw pressure: BME280_compensate_P_double."""
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * cal["p6"] / 32768.0
    var2 = var2 + var1 * cal["p5"] * 2.0
    var2 = var2 / 4.0 + cal["p4"] * 65536.0
    var1 = (cal["p3"] * var1 * var1 / 524288.0 + cal["p2"] * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * cal["p1"]
    if var1 == 0.0:
        return 0.0
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = cal["p9"] * p * p / 2147483648.0
    var2 = p * cal["p8"] / 32768.0
    return p + (var1 + var2 + cal["p7"]) / 16.0


def humidity(cal, t_fine, adc_h):
    """%RH from raw humidity: bme280_compensate_H_double, clamped to 0..100."""
    h = t_fine - 76800.0
    h = (adc_h - (cal["h4"] * 64.0 + cal["h5"] / 16384.0 * h)) * (
        cal["h2"]
        / 65536.0
        * (1.0 + cal["h6"] / 67108864.0 * h * (1.0 + cal["h3"] / 67108864.0 * h))
    )
    h = h * (1.0 - cal["h1"] * h / 524288.0)
    return 100.0 if h > 100.0 else 0.0 if h < 0.0 else h


def _invert(f, target, increasing, step, top):
    # The code (a multiple of ``step`` in 0..top) whose value is nearest ``target``;
    # ``f`` is monotonic in the code.
    lo, hi = 0, top // step
    while lo < hi:
        mid = (lo + hi) // 2
        below = f(mid * step) < target if increasing else f(mid * step) > target
        if below:
            lo = mid + 1
        else:
            hi = mid
    best = lo
    if lo > 0 and abs(f((lo - 1) * step) - target) <= abs(f(lo * step) - target):
        best = lo - 1
    return best * step


def raw_for(cal, temp_c, pres_hpa, rh):
    """(adc_t, adc_p, adc_h) a chip reports at x1 oversampling, filter off.

    At x1 temperature and pressure have 16-bit resolution: the 20-bit values
    are multiples of 16. Humidity is always 16 bits.
    """
    adc_t = _invert(lambda a: temperature(cal, a)[0], temp_c, True, 16, 0xFFFFF)
    t_fine = temperature(cal, adc_t)[1]
    adc_p = _invert(lambda a: pressure(cal, t_fine, a), pres_hpa * 100.0, False, 16, 0xFFFFF)
    adc_h = _invert(lambda a: humidity(cal, t_fine, a), rh, True, 1, 0xFFFF)
    return adc_t, adc_p, adc_h


def registers(cal):
    """The calibration registers: (26 bytes at 0x88, 7 bytes at 0xE1)."""

    def le16(v):
        v &= 0xFFFF
        return [v & 0xFF, v >> 8]

    tp = []
    for key in ("t1", "t2", "t3", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"):
        tp += le16(cal[key])
    tp += [0, cal["h1"]]  # 0xA0 is not used
    h4, h5 = cal["h4"] & 0xFFF, cal["h5"] & 0xFFF
    h = le16(cal["h2"])
    h += [
        cal["h3"],
        h4 >> 4,
        ((h5 & 0x0F) << 4) | (h4 & 0x0F),
        h5 >> 4,
        cal["h6"] & 0xFF,
    ]
    return bytes(tp), bytes(h)
