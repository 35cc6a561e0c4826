"""The sound level meter: I2S words in, one ``NoiseReading`` per period out.

``kernel.process`` turns each block of raw words into A-weighted energies per sub-block
(120 samples at 48 kHz, 126 at 44.1 kHz: 400 or 350 a second); ``fast.run`` then does, per
sub-block and in integers as well:

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
to every level. Floats appear only here, once per period, turning the integer results
into dB; between readings ``feed`` allocates nothing.

Flags: ``clip`` when any input sample reached full scale during the period, ``below_floor``
when LAeq is within 6 dB of the INMP441's 33 dBA self-noise (a reading below 39 dBA is
biased by more than 1 dB), ``sensor_missing`` when even LAFmax lies 20 dB below that
self-noise: a working microphone never reads that low, but a disconnected INMP441 (its SD
line reads zeros) or a stuck data line (a constant word, removed by the DC blocker) does.

The first half second after start is discarded (the microphone starts 85 ms after its
clock; REFERENCE.md 8.5): it runs through the filters to settle them, and the last quarter
second of it sets the Fast level's starting value.
"""

import math
from array import array

from micropython import const

from . import fast, kernel, weighting

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
MISSING_MARGIN_DB = 20.0  # LAFmax this far below the EIN: no microphone is talking
HIST_MIN_DB = 0.0
HIST_BINS_PER_DB = const(10)
HIST_BINS = const(1400)  # 0 .. 140 dB
LEVEL_MAX_DB = 140.0
MIN_PERIOD_S = 1.0
DEFAULT_BLOCK = const(1024)  # words per readinto: 21 ms at 48 kHz, 4 KB
_PIN_KEYS = ("sck", "ws", "sd")
_PIN_MAX = const(39)
_SECTION_INTS = ("rate", "period_s", "i2s", "sck", "ws", "sd")
_SECTION_NUMBERS = ("sensitivity_dbfs", "offset_db")


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
        # The microphone's I2S bus and pins, when read from a node's configuration.
        self.i2s: int | None = None
        self.sck: int | None = None
        self.ws: int | None = None
        self.sd: int | None = None

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> "NoiseConfig":
        """The ``noise`` section of a node's ``config.json``, checked key by key.

        ``{"rate": 48000, "period_s": 60, "sensitivity_dbfs": -26.0, "offset_db": -1.37,
        "i2s": 0, "sck": 32, "ws": 25, "sd": 33}``: every key optional (defaults as the
        constructor's; pins absent means the node's pin map decides). A bad value raises
        ``ConfigError`` naming ``noise.<key>``.
        """
        for key in section:
            if key not in _SECTION_NUMBERS and key not in _SECTION_INTS:
                raise ConfigError(key, section[key], "unknown key")
        for key in _SECTION_INTS:
            value = section.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(key, value, "expected a whole number")
        for key in _SECTION_NUMBERS:
            value = section.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise ConfigError(key, value, "expected a number")
        rate = section.get("rate", 48000)
        if rate not in weighting.SUPPORTED_RATES:
            rates = ", ".join(str(r) for r in weighting.SUPPORTED_RATES)
            raise ConfigError("rate", rate, "supported rates: " + rates + " Hz")
        for key in _PIN_KEYS:
            pin = section.get(key)
            if pin is not None and not 0 <= pin <= _PIN_MAX:
                raise ConfigError(key, pin, "an ESP32 GPIO number, 0 to 39")
        i2s = section.get("i2s")
        if i2s is not None and i2s not in (0, 1):
            raise ConfigError("i2s", i2s, "I2S bus 0 or 1")
        config = cls(
            rate,
            section.get("period_s", 60),
            section.get("sensitivity_dbfs", -26.0),
            section.get("offset_db", 0.0),
        )
        config.i2s = i2s
        config.sck = section.get("sck")
        config.ws = section.get("ws")
        config.sd = section.get("sd")
        return config


class NoiseReading:
    """One period's levels in dB(A) and its flags (payload v1 noise fields)."""

    def __init__(
        self,
        start_s: float,
        period: float,
        levels: tuple[float, float, float, float, float, float],
        clipped: int,
        offset_db: float = 0.0,
    ) -> None:
        self.start_s = start_s
        self.period = period
        self.laeq, self.lafmax, self.lafmin, self.la10, self.la50, self.la90 = levels
        self.clipped = clipped  # input samples at full scale
        self.offset_db = offset_db  # the unit's calibration offset, included in the levels

    @property
    def clip(self) -> bool:
        return self.clipped > 0

    @property
    def below_floor(self) -> bool:
        return self.laeq < EIN_DBA + FLOOR_MARGIN_DB

    @property
    def sensor_missing(self) -> bool:
        """Silence no microphone makes: zeros, or a stuck value, for the whole period."""
        return self.lafmax - self.offset_db < EIN_DBA - MISSING_MARGIN_DB

    def flags(self) -> list[str]:
        out = []
        if self.sensor_missing:
            out.append("sensor_missing")
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


def _zeros(typecode: str, n: int) -> "array[int]":
    """An array of ``n`` zeros, built in place: ``[0] * n`` would first need a list 2-4 times
    its size, a block a node's fragmented heap may not have at boot."""
    a = array(typecode, range(n))  # sized from len(range): no temporary
    for i in range(n):
        a[i] = 0
    return a


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
        self._out = _zeros("i", kernel.OUT_WORDS * (config.block // size + 1))
        self._hist = _zeros("I", HIST_BINS)
        # level = k + 10 lg(F), F a sub-block energy (sum of `size` squared samples)
        peak = FULL_SCALE * 10.0 ** (config.sensitivity_dbfs / 20.0)
        ref = size * SINE_PEAK_TO_MS * peak * peak * weighting.power_gain(sections, rate, 1000.0)
        self._k = CALIBRATOR_DB + config.offset_db - 10.0 * math.log10(ref)
        self._tiny = ref * 1e-16  # 0 dB when the offset is 0: the floor of the levels
        fs = _zeros("i", fast.F_LEN)
        beta = 1.0 - math.exp(-size / (TAU_FAST_S * rate))
        m, e = weighting.quantise(beta)
        fs[fast.F_BM] = m
        fs[fast.F_BE] = e
        fs[fast.F_BR] = (1 << e) >> 1
        fs[fast.F_PERIOD] = self._period_subs
        fs[fast.F_TICK_SUBS] = self._tick_subs
        fs[fast.F_SKIP] = (rate // 2) // size  # discard the first 0.5 s
        fs[fast.F_INIT_FROM] = fs[fast.F_SKIP] // 2  # its last half sets the Fast level
        # tenth-dB bin = 10 k + 100 lg F = (100 lg 2 · log2 F in Q16 + F_K) >> 16
        fs[fast.F_K] = int((self._k - HIST_MIN_DB) * HIST_BINS_PER_DB * 65536.0 + 0.5)
        fs[fast.F_BINS] = HIST_BINS
        for i in range(257):
            fs[fast.F_LOG + i] = int(math.log(1.0 + i / 256.0) / math.log(2.0) * 65536.0 + 0.5)
        self._fs = fs
        self.subblocks = 0  # since start, discarded ones included
        self._start = fs[fast.F_SKIP]
        self._reset()

    def _reset(self) -> None:
        fs = self._fs  # the Fast level (F_FM, F_FX) carries over into the next period
        for i in (fast.F_MAXM, fast.F_MAXX, fast.F_MINM, fast.F_TM, fast.F_TX, fast.F_N):
            fs[i] = 0
        for i in (fast.F_TICK, fast.F_TICKS, fast.F_CLIP):
            fs[i] = 0
        fs[fast.F_MINX] = fast.NO_MIN_X
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
        """Process ``words`` 32-bit I2S words from ``buf`` (at most ``config.block``).

        Allocates nothing unless a period completes (then the reading and its floats).
        """
        if words > self.config.block:
            raise ConfigError("block", words, "more words than the meter was sized for")
        k = kernel.run(buf, words, self._st, self._out)
        fs = self._fs
        fs[fast.F_J] = 0
        done = None
        while fast.run_stage(self._out, k, fs, self._hist) and fs[fast.F_DONE]:
            done = self._finish()
            self._start = self.subblocks + fs[fast.F_J] // kernel.OUT_WORDS
            self._reset()
        self.subblocks += k
        return done

    def flush(self) -> NoiseReading | None:
        """The partial period so far, if it covers at least a second (end of a recording)."""
        fs = self._fs
        if fs[fast.F_N] * self.size < MIN_PERIOD_S * self.config.rate or not fs[fast.F_TICKS]:
            return None
        done = self._finish()
        self._reset()
        return done

    def percentile(self, fraction: float) -> float:
        """Level below which ``fraction`` of the F samples lie (the bin's centre: ±0.05 dB)."""
        hist = self._hist
        target = fraction * self._fs[fast.F_TICKS]
        cum = 0
        for b in range(HIST_BINS):
            c = hist[b]
            if c and cum + c >= target:
                return HIST_MIN_DB + (b + 0.5) / HIST_BINS_PER_DB
            cum += c
        return LEVEL_MAX_DB

    def _energy(self, m_index: int) -> float:
        """The pseudo-float (m, x) at ``fs[m_index]``, ``fs[m_index + 1]`` as a float."""
        return self._fs[m_index] * 2.0 ** self._fs[m_index + 1]

    def _finish(self) -> NoiseReading:
        rate = self.config.rate
        n = self._fs[fast.F_N]
        levels = (
            self.level(self._energy(fast.F_TM) / n),
            self.level(self._energy(fast.F_MAXM)),
            self.level(self._energy(fast.F_MINM)),
            self.percentile(0.9),
            self.percentile(0.5),
            self.percentile(0.1),
        )
        start = (self._start * self.size) / rate
        period = n * self.size / rate
        return NoiseReading(start, period, levels, self._fs[fast.F_CLIP], self.config.offset_db)
