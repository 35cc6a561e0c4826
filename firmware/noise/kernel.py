"""The per-sample loop: I2S words in, A-weighted energy per sub-block out (viper, integers).

One call runs a block of raw INMP441 words through: 24-bit extraction (arithmetic shift by
8, done portably), clip detection, the DC blocker and the A-weighting sections of
``weighting`` in fixed point, and the sum of squares of the weighted signal over sub-blocks
of ``size`` samples (120 at 48 kHz, 126 at 44.1 kHz). Floats never appear here: on the ESP32
a float is a heap object, so the loop allocates nothing and runs as machine code.

Word size. Viper integers are machine words: 32 bits on the ESP32, 64 on the unix port
that runs the tests. Every intermediate here stays below 2^31 in magnitude for inputs up to
full scale, so both give the same results bit for bit:

- samples are 24-bit (|s| < 2^23) and carry FRAC = 3 fraction bits (2^26); a first-order
  high-pass section can at most double a peak (l1 norm of its impulse response is 2), and
  sine-like signals are never amplified, so the states stay far below 2^30;
- a product c·t is formed as m·(t >> 15) + (m·(t & 0x7FFF)) >> 15 with a 15-bit mantissa
  m, each part below 2^15 · 2^15 = 2^30;
- the weighted sample v (clamped to 24 bits) is squared in 12-bit halves, h = |v| >> 12
  and l = |v| & 0xFFF, accumulating h·h, h·l and l·l, each at most 4095² per sample and
  so below 2^31 over up to 128 samples; v² = h·h·2^24 + h·l·2^13 + l·l.

Word loads go through ``ptr32``, which reads unsigned on a 64-bit port: the sample is
recovered as a 24-bit field and sign-extended by hand, which is right on both; the state
words in ``st`` (negative values included) are sign-extended the same way, once per call.

Layout of ``st`` (``array('i')``): see the ``ST_*`` indices. ``out`` receives four words per
completed sub-block: h·h, h·l, l·l and the number of clipped input samples.
"""

import micropython
from micropython import const

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from array import array

FRAC = const(3)
# |input| at or above this is clipping: full scale of a 16-bit source shifted to 24 bits
# (0x7FFF00), 0.0003 dB under 24-bit full scale, so 16-bit recordings flag too.
CLIP_LEVEL = const(0x7FFF00)
V_MAX = const(0xFFFFFF)
MAX_SUBBLOCK = const(128)

ST_XP = const(0)  # previous input (scaled)
ST_Y = const(1)  # 7 section outputs, ST_Y .. ST_Y + 6
ST_HH = const(8)
ST_HL = const(9)
ST_LL = const(10)
ST_COUNT = const(11)  # samples in the current sub-block
ST_CLIP = const(12)  # clipped samples in the current sub-block
ST_SIZE = const(13)  # sub-block length
ST_COEF = const(14)  # (m, e, rounding) per section: 7 x 3 words
ST_LEN = const(35)
OUT_WORDS = const(4)  # words per sub-block in ``out``
SECTION_COUNT = const(7)  # 5 high-pass (DC, f1, f1, f2, f3) then 2 low-pass (f4, f4)


@micropython.viper
def _signed(w: int) -> int:
    """A 32-bit word as a signed integer on 32- and 64-bit ports alike."""
    hi = (w >> 16) & 0xFFFF
    return ((hi - ((hi & 0x8000) << 1)) << 16) | (w & 0xFFFF)


@micropython.viper
def process(buf: ptr32, n: int, st: ptr32, out: ptr32) -> int:  # noqa: F821 (viper type)
    """Run ``n`` words of ``buf``; return the number of sub-blocks written to ``out``."""
    xp = int(_signed(st[0]))
    y0 = int(_signed(st[1]))
    y1 = int(_signed(st[2]))
    y2 = int(_signed(st[3]))
    y3 = int(_signed(st[4]))
    y4 = int(_signed(st[5]))
    y5 = int(_signed(st[6]))
    y6 = int(_signed(st[7]))
    hh = st[8]
    hl = st[9]
    ll = st[10]
    count = st[11]
    clip = st[12]
    size = st[13]
    m0 = st[14]
    e0 = st[15]
    r0 = st[16]
    m1 = st[17]
    e1 = st[18]
    r1 = st[19]
    m2 = st[20]
    e2 = st[21]
    r2 = st[22]
    m3 = st[23]
    e3 = st[24]
    r3 = st[25]
    m4 = st[26]
    e4 = st[27]
    r4 = st[28]
    m5 = st[29]
    e5 = st[30]
    r5 = st[31]
    m6 = st[32]
    e6 = st[33]
    r6 = st[34]
    k = 0
    for i in range(n):
        t = (buf[i] >> 8) & 0xFFFFFF
        s = t - ((t & 0x800000) << 1)
        a = s
        if a < 0:
            a = -a
        if a >= CLIP_LEVEL:
            clip += 1
        x = s << FRAC
        # high-pass sections: y = y1 + d - c*(y1 + d/2), d = input - previous input
        d = x - xp
        xp = x
        t = y0 + (d >> 1)
        o = y0
        y0 = y0 + d - ((m0 * (t >> 15) + ((m0 * (t & 0x7FFF)) >> 15) + r0) >> e0)
        d = y0 - o
        t = y1 + (d >> 1)
        o = y1
        y1 = y1 + d - ((m1 * (t >> 15) + ((m1 * (t & 0x7FFF)) >> 15) + r1) >> e1)
        d = y1 - o
        t = y2 + (d >> 1)
        o = y2
        y2 = y2 + d - ((m2 * (t >> 15) + ((m2 * (t & 0x7FFF)) >> 15) + r2) >> e2)
        d = y2 - o
        t = y3 + (d >> 1)
        o = y3
        y3 = y3 + d - ((m3 * (t >> 15) + ((m3 * (t & 0x7FFF)) >> 15) + r3) >> e3)
        d = y3 - o
        t = y4 + (d >> 1)
        o = y4
        y4 = y4 + d - ((m4 * (t >> 15) + ((m4 * (t & 0x7FFF)) >> 15) + r4) >> e4)
        # low-pass sections: y = y1 + c*((x + x1)/2 - y1)
        t = ((y4 + o) >> 1) - y5
        o = y5
        y5 = y5 + ((m5 * (t >> 15) + ((m5 * (t & 0x7FFF)) >> 15) + r5) >> e5)
        t = ((y5 + o) >> 1) - y6
        y6 = y6 + ((m6 * (t >> 15) + ((m6 * (t & 0x7FFF)) >> 15) + r6) >> e6)
        v = y6 >> FRAC
        if v < 0:
            v = -v
        if v > V_MAX:
            v = V_MAX
        h = v >> 12
        v = v & 0xFFF
        hh += h * h
        hl += h * v
        ll += v * v
        count += 1
        if count == size:
            out[k] = hh
            out[k + 1] = hl
            out[k + 2] = ll
            out[k + 3] = clip
            k += OUT_WORDS
            hh = 0
            hl = 0
            ll = 0
            clip = 0
            count = 0
    st[0] = xp
    st[1] = y0
    st[2] = y1
    st[3] = y2
    st[4] = y3
    st[5] = y4
    st[6] = y5
    st[7] = y6
    st[8] = hh
    st[9] = hl
    st[10] = ll
    st[11] = count
    st[12] = clip
    return k // OUT_WORDS


# What callers pass: viper turns a buffer into a pointer at the call, so the Python-side
# signature takes buffers where ``process`` declares ``ptr32``.
if TYPE_CHECKING:

    def run(buf: bytearray | array[int], n: int, st: array[int], out: array[int]) -> int: ...

else:
    run = process


@micropython.viper
def pick_slot(src: ptr32, n: int, slot: int, dst: ptr32) -> int:  # noqa: F821 (viper type)
    """Copy slot ``slot`` (0 left, 1 right) of ``n`` stereo word pairs into ``dst``."""
    for i in range(n):
        dst[i] = src[2 * i + slot]
    return n


if TYPE_CHECKING:

    def pick(src: bytearray, n: int, slot: int, dst: bytearray) -> int: ...

else:
    pick = pick_slot
