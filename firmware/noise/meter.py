"""The sound level meter: I2S words in, one ``NoiseReading`` per period out.

``kernel.process`` turns each block of raw words into A-weighted energies per sub-block
(120 samples at 48 kHz, 126 at 44.1 kHz: 400 or 350 a second). Per sub-block, this module
then does the few float operations the integer loop leaves out:

- energy integration for LAeq (the sum of the sub-block energies over the period);
- Fast time weighting (τ = 125 ms): the exponential smoother of REFERENCE.md 1.3 stepped
  once per sub-block, F ← F + β·(e - F) with β = 1 - exp(-N/(τ·fs)), which is the per-sample
  smoother with the power inside a sub-block taken as uniform (weights differ by at most
  N/(τ·fs) = 2 %, 0.09 dB at most, for a burst shorter than a sub-block);
- LAFmax and LAFmin from F at every sub-block (2.5 ms apart: the Fast level falls 0.09 dB
  in that time);
- LA10, LA50, LA90 from F sampled every 40 ms (25 a second; the standard needs at least
  every 125 ms) into a histogram of 0.1 dB bins from 0 to 140 dB, so any period length
  costs the same RAM; a percentile is the centre of its bin (within 0.05 dB). LA10 is the
  level exceeded 10 % of the time, the 90th percentile.

Calibration (REFERENCE.md 1.6): a 1 kHz sine of 94 dB SPL peaks at (2^23 - 1)·10^(S/20)
counts for a sensitivity of S dBFS (-26 dBFS typical for the INMP441), so its mean square
is that squared over 2; the per-unit ``offset_db`` from a 94 dB / 1 kHz calibrator is added
to every level. Flags: ``clip`` when any input sample reached full scale during the period,
``below_floor`` when LAeq is within 6 dB of the INMP441's 33 dBA self-noise (a reading
below 39 dBA is biased by more than 1 dB).

The first half second after start is discarded (the microphone starts 85 ms after its
clock; REFERENCE.md 8.5): it runs through the filters to settle them, and the last quarter
second of it sets the Fast level's starting value.
"""

import math
from array import array

from micropython import const

from . import kernel, weighting

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from typing import Any

FULL_SCALE = const(8388607)  # 2^23 - 1, 24-bit samples
CALIBRATOR_DB = 94.0  # 1 Pa RMS
SINE_PEAK_TO_MS = 0.5  # mean square of a sine / peak²
TAU_FAST_S = 0.125
LEVEL_TICKS_PER_S = const(25)  # F samples for the percentiles: every 40 ms
EIN_DBA = 33.0  # INMP441 equivalent input noise (datasheet)
FLOOR_MARGIN_DB = 6.0  # bias above 1 dB when closer than this to the EIN
HIST_MIN_DB = 0.0
HIST_BINS_PER_DB = const(10)
HIST_BINS = const(1400)  # 0 .. 140 dB
LEVEL_MAX_DB = 140.0
MIN_PERIOD_S = 1.0
DEFAULT_BLOCK = const(1024)  # words per readinto: 21 ms at 48 kHz, 4 KB


class ConfigError(ValueError):
    """A noise setting outside what the meter supports."""

    def __init__(self, key: str, value: object, why: str) -> None:
        super().__init__(f"noise.{key} = {value!r}: {why}")
        self.key = key
        self.value = value


class NoiseConfig:
    """The meter's settings, checked once: rate (Hz), period (s), sensitivity, offset."""

    def __init__(
        self,
        rate: int = 48000,
        period_s: int = 60,
        sensitivity_dbfs: float = -26.0,
        offset_db: float = 0.0,
        block: int = DEFAULT_BLOCK,
    ) -> None:
        if rate not in weighting.SUPPORTED_RATES:
            raise weighting.UnsupportedRate(rate)
        if not isinstance(period_s, int) or not 1 <= period_s <= 86400:
            raise ConfigError("period_s", period_s, "whole seconds from 1 to 86400")
        if not -60.0 <= sensitivity_dbfs <= 0.0:
            raise ConfigError("sensitivity_dbfs", sensitivity_dbfs, "dBFS from -60 to 0")
        if not -20.0 <= offset_db <= 20.0:
            raise ConfigError("offset_db", offset_db, "dB from -20 to 20")
        if not 64 <= block <= rate:
            raise ConfigError("block", block, "words from 64 to one second")
        self.rate = rate
        self.period_s = period_s
        self.sensitivity_dbfs = float(sensitivity_dbfs)
        self.offset_db = float(offset_db)
        self.block = block


class NoiseReading:
    """One period's levels in dB(A) and its flags (payload v1 noise fields)."""

    def __init__(
        self,
        start_s: float,
        period: float,
        levels: tuple[float, float, float, float, float, float],
        clipped: int,
    ) -> None:
        self.start_s = start_s
        self.period = period
        self.laeq, self.lafmax, self.lafmin, self.la10, self.la50, self.la90 = levels
        self.clipped = clipped  # input samples at full scale

    @property
    def clip(self) -> bool:
        return self.clipped > 0

    @property
    def below_floor(self) -> bool:
        return self.laeq < EIN_DBA + FLOOR_MARGIN_DB

    def flags(self) -> list[str]:
        out = []
        if self.clip:
            out.append("clip")
        if self.below_floor:
            out.append("below_floor")
        return out

    def fields(self) -> dict[str, Any]:
        """The payload's noise fields (v1), levels to 0.01 dB."""
        return {
            "period": self.period,
            "laeq": round(self.laeq, 2),
            "lafmax": round(self.lafmax, 2),
            "lafmin": round(self.lafmin, 2),
            "la10": round(self.la10, 2),
            "la50": round(self.la50, 2),
            "la90": round(self.la90, 2),
        }


def subblock_size(rate: int) -> int:
    """Largest sub-block of at most 128 samples that divides both 40 ms and 0.5 s.

    120 samples at 48 kHz (400 a second), 126 at 44.1 kHz (350 a second).
    """
    a, b = rate // LEVEL_TICKS_PER_S, rate // 2
    while b:
        a, b = b, a % b
    for n in range(kernel.MAX_SUBBLOCK, 0, -1):
        if a % n == 0:
            return n
    return 1


class NoiseMeter:
    """Feed it blocks of raw I2S words; it returns a reading when a period completes."""

    def __init__(self, config: NoiseConfig) -> None:
        self.config = config
        rate = config.rate
        size = subblock_size(rate)
        self.size = size
        self._tick_subs = rate // LEVEL_TICKS_PER_S // size
        self._period_subs = config.period_s * LEVEL_TICKS_PER_S * self._tick_subs
        sections = weighting.design(rate)
        st = array("i", [0] * kernel.ST_LEN)
        st[kernel.ST_SIZE] = size
        for j, (_kind, m, e) in enumerate(sections):
            st[kernel.ST_COEF + 3 * j] = m
            st[kernel.ST_COEF + 3 * j + 1] = e
            st[kernel.ST_COEF + 3 * j + 2] = (1 << e) >> 1
        self._st = st
        self._out = array("i", [0] * (kernel.OUT_WORDS * (config.block // size + 1)))
        self._hist = array("I", [0] * HIST_BINS)
        self._beta = 1.0 - math.exp(-size / (TAU_FAST_S * rate))
        # level = k + 10 lg(F), F a sub-block energy (sum of `size` squared samples)
        peak = FULL_SCALE * 10.0 ** (config.sensitivity_dbfs / 20.0)
        ref = size * SINE_PEAK_TO_MS * peak * peak * weighting.power_gain(sections, rate, 1000.0)
        self._k = CALIBRATOR_DB + config.offset_db - 10.0 * math.log10(ref)
        self._tiny = ref * 1e-16  # 0 dB when the offset is 0: the floor of the levels
        self.subblocks = 0  # since start, discarded ones included
        # Sub-blocks to discard (0.5 s), and how many of their last ones set the Fast level.
        self._skip = (rate // 2) // size
        self._init_from = self._skip // 2
        self._init_sum = 0.0
        self._init_n = 0
        self._fast = 0.0
        self._reset()

    def _reset(self) -> None:
        self._total = 0.0
        self._n = 0
        self._fmax = 0.0
        self._fmin = 1e38
        self._tick = 0
        self._ticks = 0
        self._clipped = 0
        self._start = self.subblocks
        hist = self._hist
        for b in range(HIST_BINS):
            hist[b] = 0

    def level(self, energy: float) -> float:
        """dB(A) of a sub-block energy, clamped to 0 .. 140 dB."""
        if energy <= self._tiny:
            return HIST_MIN_DB
        lv = self._k + 10.0 * math.log10(energy)
        if lv < HIST_MIN_DB:
            return HIST_MIN_DB
        return lv if lv < LEVEL_MAX_DB else LEVEL_MAX_DB

    def feed(self, buf: bytearray, words: int) -> NoiseReading | None:
        """Process ``words`` 32-bit I2S words from ``buf`` (at most ``config.block``)."""
        if words > self.config.block:
            raise ConfigError("block", words, "more words than the meter was sized for")
        k = kernel.run(buf, words, self._st, self._out)
        if self._skip:
            return self._discard(k)
        return self._measure(0, k * kernel.OUT_WORDS)

    def _discard(self, k: int) -> NoiseReading | None:
        out = self._out
        for j in range(0, k * kernel.OUT_WORDS, kernel.OUT_WORDS):
            self.subblocks += 1
            self._skip -= 1
            if self._skip < self._init_from:
                self._init_sum += out[j] * 16777216.0 + out[j + 1] * 8192.0 + out[j + 2]
                self._init_n += 1
            if not self._skip:
                self._fast = self._init_sum / self._init_n
                self._reset()
                return self._measure(j + kernel.OUT_WORDS, k * kernel.OUT_WORDS)
        return None

    def _measure(self, j: int, end: int) -> NoiseReading | None:
        # The one loop that runs for every sub-block: locals only, no attribute lookups.
        out = self._out
        done = None
        beta = self._beta
        fast = self._fast
        total = self._total
        fmax = self._fmax
        fmin = self._fmin
        clipped = self._clipped
        tick = self._tick
        tick_subs = self._tick_subs
        n = self._n
        period_subs = self._period_subs
        base = self.subblocks
        j0 = j
        while j < end:
            e = out[j] * 16777216.0 + out[j + 1] * 8192.0 + out[j + 2]
            fast += beta * (e - fast)
            total += e
            clipped += out[j + 3]
            if fast > fmax:
                fmax = fast
            if fast < fmin:
                fmin = fast
            tick += 1
            if tick == tick_subs:
                tick = 0
                self._sample(fast)
            n += 1
            j += kernel.OUT_WORDS
            if n == period_subs:
                self.subblocks = base + (j - j0) // kernel.OUT_WORDS
                self._total, self._fmax, self._fmin, self._clipped, self._n = (
                    total,
                    fmax,
                    fmin,
                    clipped,
                    n,
                )
                done = self._finish()
                self._reset()
                total, fmax, fmin, clipped, n = 0.0, 0.0, 1e38, 0, 0
        self.subblocks = base + (end - j0) // kernel.OUT_WORDS
        self._fast = fast
        self._total, self._fmax, self._fmin, self._clipped, self._n = total, fmax, fmin, clipped, n
        self._tick = tick
        return done

    def _sample(self, fast: float) -> None:
        """One Fast level into the percentile histogram (every 40 ms)."""
        b = int((self.level(fast) - HIST_MIN_DB) * HIST_BINS_PER_DB)
        self._hist[b if b < HIST_BINS else HIST_BINS - 1] += 1
        self._ticks += 1

    def flush(self) -> NoiseReading | None:
        """The partial period so far, if it covers at least a second (end of a recording)."""
        if self._n * self.size < MIN_PERIOD_S * self.config.rate or self._ticks == 0:
            return None
        done = self._finish()
        self._reset()
        return done

    def percentile(self, fraction: float) -> float:
        """Level below which ``fraction`` of the F samples lie (the bin's centre: ±0.05 dB)."""
        hist = self._hist
        target = fraction * self._ticks
        cum = 0
        for b in range(HIST_BINS):
            c = hist[b]
            if c and cum + c >= target:
                return HIST_MIN_DB + (b + 0.5) / HIST_BINS_PER_DB
            cum += c
        return LEVEL_MAX_DB

    def _finish(self) -> NoiseReading:
        rate = self.config.rate
        n = self._n
        levels = (
            self.level(self._total / n),
            self.level(self._fmax),
            self.level(self._fmin),
            self.percentile(0.9),
            self.percentile(0.5),
            self.percentile(0.1),
        )
        start = (self._start * self.size) / rate
        period = n * self.size / rate
        return NoiseReading(start, period, levels, self._clipped)
