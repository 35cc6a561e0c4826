"""Per sub-block, in integers (viper): Fast time weighting, LAFmax/LAFmin, energy sum, histogram.

``kernel.process`` leaves one energy per sub-block as three partial sums (h·h, h·l, l·l).
This stage turns each into a pseudo-float and runs, without a single float or allocation:

- the start-up discard (0.5 s), whose last half sets the Fast level's starting value;
- the Fast smoother stepped once per sub-block, F += β·(e - F), β = 1 - exp(-N/(τ·fs));
- LAFmax and LAFmin (the largest and smallest F), the period's energy sum;
- every 40 ms, F's level into the percentile histogram (0.1 dB bins), through an integer
  log2 (a 257-entry table with linear interpolation: error below 0.0001 dB).

Pseudo-floats are (m, x) pairs meaning m·2^x, m kept in [2^28, 2^29) (smaller only when
x = 0), so two of them compare by x first and then m, and every product and sum stays
below 2^31: the same results on the ESP32's 32-bit words as on the unix port's 64-bit ones.
Rounding to 29 bits per step costs nothing measurable (relative 2^-29 per sub-block).

``fs`` (``array('i')``) holds the state at the ``F_*`` indices and the log2 table from
``F_LOG``; it returns when the input is used up or a period completed (``fs[F_DONE]``), so
the meter can read the period's results (the only float work, once per period).
"""

import micropython
from micropython import const

F_FM = const(0)  # Fast level (m, x)
F_FX = const(1)
F_MAXM = const(2)  # LAFmax
F_MAXX = const(3)
F_MINM = const(4)  # LAFmin
F_MINX = const(5)
F_TM = const(6)  # energy sum of the period
F_TX = const(7)
F_N = const(8)  # sub-blocks in the period so far
F_PERIOD = const(9)  # sub-blocks per period
F_TICK = const(10)  # sub-blocks since the last histogram sample
F_TICK_SUBS = const(11)  # sub-blocks per histogram sample (40 ms)
F_TICKS = const(12)  # histogram samples in the period
F_CLIP = const(13)  # clipped input samples in the period
F_SKIP = const(14)  # sub-blocks still to discard
F_INIT_FROM = const(15)  # discard sub-blocks below this count set the start value
F_IM = const(16)  # their energy sum (m, x) and count
F_IX = const(17)
F_IN = const(18)
F_BM = const(19)  # beta as mantissa, shift, rounding (like the filter coefficients)
F_BE = const(20)
F_BR = const(21)
F_K = const(22)  # calibration: tenth-dB bin = (100·lg2·log2(F) in Q16 + F_K) >> 16
F_J = const(23)  # next word of ``out`` to read
F_DONE = const(24)  # 1 when the call stopped at the end of a period
F_BINS = const(25)  # histogram bins
F_LOG = const(32)  # log2(1 + i/256) in Q16, i = 0..256
F_LEN = const(289)
NO_MIN_X = const(0x3FFFFFFF)  # LAFmin "not yet": above any exponent
NORM_HI = const(0x20000000)  # 2^29
NORM_LO = const(0x10000000)  # 2^28


@micropython.viper
def run(out: ptr32, k: int, fs: ptr32, hist: ptr32) -> int:  # noqa: F821 (viper type)
    """Consume sub-blocks ``fs[F_J] // 4`` .. ``k - 1`` of ``out``; returns the next word."""
    fm = fs[0]
    fx = fs[1]
    maxm = fs[2]
    maxx = fs[3]
    minm = fs[4]
    minx = fs[5]
    tm = fs[6]
    tx = fs[7]
    n = fs[8]
    period = fs[9]
    tick = fs[10]
    tick_subs = fs[11]
    ticks = fs[12]
    clip = fs[13]
    skip = fs[14]
    init_from = fs[15]
    im = fs[16]
    ix = fs[17]
    inn = fs[18]
    bm = fs[19]
    be = fs[20]
    br = fs[21]
    kw = fs[22]
    hi = (kw >> 16) & 0xFFFF
    kcal = ((hi - ((hi & 0x8000) << 1)) << 16) | (kw & 0xFFFF)  # signed on both word sizes
    j = fs[23]
    bins = fs[25]
    done = 0
    end = k * 4
    while j < end:
        hh = out[j]
        hl = out[j + 1]
        ll = out[j + 2]
        clip += out[j + 3]
        j += 4
        # e = hh*2^24 + hl*2^13 + ll as (em, ex): each term shifted below 2^28, sum < 2^30
        b = 0
        x = hh
        if x:
            b = 24
            while x:
                x >>= 1
                b += 1
        x = hl
        c = 0
        if x:
            c = 13
            while x:
                x >>= 1
                c += 1
        if c > b:
            b = c
        x = ll
        c = 0
        while x:
            x >>= 1
            c += 1
        if c > b:
            b = c
        ex = b - 28
        if ex < 0:
            ex = 0
        s = 24 - ex
        em = hh << s if s >= 0 else hh >> (0 - s)
        s = 13 - ex
        if s >= 0:
            em += hl << s
        else:
            em += hl >> (0 - s)
        em += ll >> ex
        if skip:
            skip -= 1
            if skip < init_from:
                # im += e
                xx = ix
                if ex > xx:
                    xx = ex
                s = xx - ix
                a = 0
                if s == 0:
                    a = im
                elif s < 31:
                    a = (im + (1 << (s - 1))) >> s
                s = xx - ex
                d = 0
                if s == 0:
                    d = em
                elif s < 31:
                    d = (em + (1 << (s - 1))) >> s
                im = a + d
                ix = xx
                while im >= NORM_HI:
                    im = (im + 1) >> 1
                    ix += 1
                while im < NORM_LO and ix > 0 and im > 0:
                    im <<= 1
                    ix -= 1
                inn += 1
            if skip == 0:
                fm = im // inn
                fx = ix
                while fm < NORM_LO and fx > 0 and fm > 0:
                    fm <<= 1
                    fx -= 1
            continue
        # Fast: f += beta*(e - f), aligned to the larger exponent
        xx = fx
        if ex > xx:
            xx = ex
        s = xx - fx
        a = 0
        if s == 0:
            a = fm
        elif s < 31:
            a = fm >> s
        s = xx - ex
        d = 0
        if s == 0:
            d = em
        elif s < 31:
            d = em >> s
        d = d - a
        fm = a + ((bm * (d >> 15) + ((bm * (d & 0x7FFF)) >> 15) + br) >> be)
        fx = xx
        while fm >= NORM_HI:
            fm = (fm + 1) >> 1
            fx += 1
        while fm < NORM_LO and fx > 0 and fm > 0:
            fm <<= 1
            fx -= 1
        if fx > maxx or (fx == maxx and fm > maxm):
            maxm = fm
            maxx = fx
        if fx < minx or (fx == minx and fm < minm):
            minm = fm
            minx = fx
        # energy sum: tm += e, rounded
        xx = tx
        if ex > xx:
            xx = ex
        s = xx - tx
        a = 0
        if s == 0:
            a = tm
        elif s < 31:
            a = (tm + (1 << (s - 1))) >> s
        s = xx - ex
        d = 0
        if s == 0:
            d = em
        elif s < 31:
            d = (em + (1 << (s - 1))) >> s
        tm = a + d
        tx = xx
        while tm >= NORM_HI:
            tm = (tm + 1) >> 1
            tx += 1
        while tm < NORM_LO and tx > 0 and tm > 0:
            tm <<= 1
            tx -= 1
        # every 40 ms: F's tenth-dB bin into the histogram
        tick += 1
        if tick == tick_subs:
            tick = 0
            ticks += 1
            slot = 0
            if fm > 0:
                lb = 0
                x = fm
                while x:
                    x >>= 1
                    lb += 1
                m = fm << (29 - lb)  # [2^28, 2^29)
                idx = (m >> 20) & 0xFF
                frac = (m >> 4) & 0xFFFF
                t0 = fs[F_LOG + idx]
                l2 = ((fx + lb - 1) << 16) + t0 + (((fs[F_LOG + idx + 1] - t0) * frac) >> 16)
                slot = (l2 * 30 + (((l2 >> 8) * 6750) >> 8) + kcal) >> 16
                if slot < 0:
                    slot = 0
                if slot >= bins:
                    slot = bins - 1
            hist[slot] += 1
        n += 1
        if n == period:
            done = 1
            break
    fs[0] = fm
    fs[1] = fx
    fs[2] = maxm
    fs[3] = maxx
    fs[4] = minm
    fs[5] = minx
    fs[6] = tm
    fs[7] = tx
    fs[8] = n
    fs[10] = tick
    fs[12] = ticks
    fs[13] = clip
    fs[14] = skip
    fs[16] = im
    fs[17] = ix
    fs[18] = inn
    fs[23] = j
    fs[24] = done
    return j


TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from array import array

    def run_stage(out: array[int], k: int, fs: array[int], hist: array[int]) -> int: ...

else:
    run_stage = run
