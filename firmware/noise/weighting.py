"""A-weighting as cascaded first-order sections in fixed point, designed for a sample rate.

The analog A filter of IEC 61672-1:2013 Annex E has only real poles: a double pole at
f1 = 20.598997 Hz, single poles at f2 = 107.65265 Hz and f3 = 737.86223 Hz, a double pole
at f4 = 12194.217 Hz, and four zeros at DC. Each real pole maps through the plain bilinear
transform (s = 2·fs·(1 - z⁻¹)/(1 + z⁻¹)) to one first-order section, so the cascade is
four high-pass sections (f1, f1, f2, f3) and two low-pass sections (f4, f4), preceded by a
DC blocker (a fifth high-pass section at 2 Hz). Pairing them gives the usual three
second-order sections (s²/(s+w1)², s²/((s+w2)(s+w3)), 1/(s+w4)²); running them as first-
order sections keeps every coefficient a single small number, which is what a 32-bit
fixed-point loop without 64-bit products needs.

For a section with pole p = 1 - c (c = 2w/(2fs + w), computed without cancellation):

    high-pass  y = p·y1 + (1 + p)/2·(x - x1) = y1 + d - c·(y1 + d/2),   d = x - x1
    low-pass   y = p·y1 + (1 - p)/2·(x + x1) = y1 + c·((x + x1)/2 - y1)

so each section needs one product by c. c is stored as a 15-bit mantissa m and a shift e
(c = m / 2^(15+e)), which keeps 15 significant bits even for the DC blocker's c ≈ 2.6e-4.

Plain BLT warps the response near Nyquist: REFERENCE.md 1.5 gives -0.53 dB at 8 kHz and
-2.74 dB at 12.5 kHz for 48 kHz (44.1 kHz: -0.65 / -3.46 dB), inside the class 1 acceptance
limits of IEC 61672-1:2013 Table 3 at every nominal frequency; at 32 kHz and below it fails
class 1, so only 44.1 and 48 kHz are supported. The gain of the whole chain at 1 kHz is
computed from the quantised coefficients, and the meter divides it out, so the response is
0 dB at 1 kHz by construction.
"""

import math

from micropython import const

# IEC 61672-1:2013 Annex E pole frequencies (Hz), REFERENCE.md 1.1.
F1 = 20.598997
F2 = 107.65265
F3 = 737.86223
F4 = 12194.217
# DC blocker corner (Hz): 0.017 dB down at 31.5 Hz, settled (5 time constants) in 0.4 s.
F_DC = 2.0

# Rates at which plain-BLT A-weighting meets class 1 (REFERENCE.md 1.5).
SUPPORTED_RATES = (44100, 48000)

HIGH_PASS = const(0)
LOW_PASS = const(1)
# Section order in the cascade: (kind, pole frequency).
SECTIONS = (
    (HIGH_PASS, F_DC),
    (HIGH_PASS, F1),
    (HIGH_PASS, F1),
    (HIGH_PASS, F2),
    (HIGH_PASS, F3),
    (LOW_PASS, F4),
    (LOW_PASS, F4),
)
MANTISSA_BITS = const(15)


class UnsupportedRate(ValueError):
    """A sample rate at which this design does not meet class 1."""

    def __init__(self, rate: int) -> None:
        super().__init__(
            f"sample rate {rate} Hz not supported; supported rates: "
            + ", ".join(str(r) for r in SUPPORTED_RATES)
            + " Hz"
        )
        self.rate = rate


def section_coefficient(pole_hz: float, rate: int) -> float:
    """c = 1 - p for the bilinear transform of the real pole at ``pole_hz``."""
    w = 2.0 * math.pi * pole_hz
    return 2.0 * w / (2.0 * rate + w)


def quantise(c: float) -> tuple[int, int]:
    """(m, e) with c ≈ m / 2^(15+e) and 2^14 ≤ m < 2^15 (0 < c < 1)."""
    if not 0.0 < c < 1.0:
        raise ValueError(f"section coefficient {c!r} outside (0, 1)")
    e = 0
    while c * (1 << (MANTISSA_BITS + e)) < (1 << (MANTISSA_BITS - 1)):
        e += 1
    m = int(c * (1 << (MANTISSA_BITS + e)) + 0.5)
    if m >= 1 << MANTISSA_BITS:
        m = (1 << MANTISSA_BITS) - 1
    return m, e


def design(rate: int) -> list[tuple[int, int, int]]:
    """The cascade for ``rate``: (kind, m, e) per section, in order."""
    if rate not in SUPPORTED_RATES:
        raise UnsupportedRate(rate)
    out = []
    for kind, pole in SECTIONS:
        m, e = quantise(section_coefficient(pole, rate))
        out.append((kind, m, e))
    return out


def power_gain(sections: list[tuple[int, int, int]], rate: int, freq: float) -> float:
    """|H(f)|² of the quantised cascade (what the fixed-point loop implements)."""
    cw = math.cos(2.0 * math.pi * freq / rate)
    gain = 1.0
    for kind, m, e in sections:
        c = m / (1 << (MANTISSA_BITS + e))
        p = 1.0 - c
        den = 1.0 - 2.0 * p * cw + p * p
        if kind == HIGH_PASS:
            g = (1.0 + p) / 2.0
            gain *= g * g * (2.0 - 2.0 * cw) / den
        else:
            g = c / 2.0
            gain *= g * g * (2.0 + 2.0 * cw) / den
    return gain


def response_db(rate: int, freq: float) -> float:
    """The design's response at ``freq`` relative to 1 kHz, in dB."""
    sections = design(rate)
    return 10.0 * math.log10(power_gain(sections, rate, freq) / power_gain(sections, rate, 1000.0))
