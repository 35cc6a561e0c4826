"""``machine.I2S`` on the simulated node: an INMP441 on the pins ``sim.json`` wires it to.

The words are what the ESP32's I2S receiver gets from the microphone: each 24-bit sample
MSB-aligned in a 32-bit little-endian slot (REFERENCE 1.6, 8.5). The INMP441 talks in the
slot its L/R pin selects (``"slot": "left"``, L/R to GND, WS low) and leaves its SD line
undriven in the other, which reads zeros (the pull-down). A stereo read gives both slots,
left first; a mono read gives the left slot. The microphone starts 2^18 SCK cycles after
its clock (4096 frames at 64 SCK per frame): each new ``I2S`` reads zeros that long.

``sim.json``: ``"i2s": [{"sck", "ws", "sd", "slot"}]`` (the board's wiring; a bus opened on
other pins hears nothing), ``"mic"`` (the sound, below), ``"audio_speed"`` and
``"faults"``: ``"mic": "missing"`` (zeros in both slots), ``"mic": "stuck"`` (the data
line stuck high: all ones), ``"i2s_quirk": "swap"`` (the driver swaps the slots) or
``"mono_zeros"`` (a mono read returns zeros), as some ESP-IDF versions do.

The sound (``"mic"``):

- ``"source": "street"``: road traffic at the node's site. A background that follows the
  hour of the node's clock (rush hours at 8 and 18 h, quiet nights) and vehicle pass-bys
  (Poisson arrivals whose rate follows the same hours; each a point source passing by:
  energy ``E / (1 + (t - t0)² / tau²)``), plus the microphone's own 33 dB(A) self-noise.
  ``"traffic"`` (0 park edge .. 1 busy road) scales both; ``"level_db"`` instead gives a
  steady level (tests). The waveform is white noise through a one-pole low-pass at 1 kHz
  (a traffic-like spectrum), made per sample by a viper loop, scaled once per read so that
  its A-weighted level is the model's level for a ``"sensitivity_dbfs"`` microphone (the
  A-weighted power of the filtered noise is integrated once, at start).
- ``"source": "wav"``: ``"file"`` holds the mono words of a recording (written by the host
  from a WAV file at the node's rate), played in a loop from the start.

Time and cost. Samples fall due on the node's clock, at ``rate`` a second. A DMA buffer of
``ibuf`` bytes holds them; when the reader is late, the oldest are lost (``overruns``
counts the frames), as on the ESP32. While the node's clock runs faster than real time
(backfilling history), full-rate audio would cost ``speed`` times real time of CPU, so the
emulated microphone hands out at most ``audio_speed`` (default 4) times real time of audio;
the rest of what falls due is lost as overruns. (The unix port polls a stream without a
file descriptor every millisecond, so a node reading 256 frames at a time cannot take much
more than 5 times real time anyway. And asyncio queues a task woken by I/O ahead of every
timer on the accelerated clock, so a stream readable at every look would starve the node's
timers: after each read the stream answers one poll unreadable.) A node backfilling at
1440x therefore measures contiguous stretches (up to the DMA buffer's 43 ms of stereo
frames) of the sound of its own time, at most 1 in 360 of it: each period of the firmware
(``period_s`` of samples) spans several hundred times as long on the node's clock. Live
(the clock at real speed), every sample is delivered and measured, at about 5 % of a core.

Until it is polled (``ioctl``, as ``asyncio.StreamReader`` does), ``readinto`` blocks
until the buffer is full, as on the ESP32; after that it returns what is there.
"""

import io
import math
from array import array

import micropython
import sim_clock
import sim_config

_STARTUP_FRAMES = 4096  # 2^18 SCK cycles / 64 SCK per stereo frame (INMP441 datasheet)
_READABLE = 256  # frames before a poll reports readable (a DMA buffer's worth)
_FULL = 8388607  # 2^23 - 1
_REF_DB = 94.0
_LOWPASS_HZ = 1000.0
_UNIFORM_VAR = 65536.0 * 65536.0 / 12.0  # variance of a uniform 16-bit sample
_CHUNK = 512  # frames per scaling step
_LEVEL_STEP_S = 0.04  # the street's level is evaluated every 40 ms of the node's time
_SLOT_S = 10  # pass-bys are drawn per 10 s of the node's time
_SELF_NOISE_DBA = 33.0  # INMP441 EIN (datasheet)
_DEFAULT_AUDIO_SPEED = 4.0
# After a read the stream answers this many polls unreadable: asyncio queues a task woken by
# I/O ahead of every timer on the accelerated clock, so a stream readable at every look would
# starve the node's timers (keep-alive, the watchdog's supervisor) while it backfills, however
# long the firmware takes per block (a busy machine).
_GAP_POLLS = 1
# IEC 61672-1 Annex E poles (REFERENCE 1.1) and the +2.00 dB normalisation.
_F1, _F2, _F3, _F4 = 20.598997, 107.65265, 737.86223, 12194.217


@micropython.viper
def _noise(buf: ptr32, base: int, n: int, step: int, at: int, st: ptr32, gain: int, other: int):  # noqa: F821
    """``n`` frames of low-passed white noise times ``gain``/65536 into slot ``at``."""
    # st: xorshift state, low-pass state + bias, coefficient (Q15), 2^32 - 1, the bias
    # (constants past 30 bits would be objects in viper: they come in through ``st``)
    mask = int(st[3])
    bias = int(st[4])
    x = int(st[0])
    lp = int(st[1]) - bias
    a = int(st[2])
    i = 0
    j = base * step + at
    k = base * step + (1 - at)
    while i < n:
        x = x ^ ((x << 13) & mask)
        x = x ^ (x >> 17)
        x = x ^ ((x << 5) & mask)
        w = (x & 0xFFFF) - 32768
        lp += ((w - lp) * a) >> 15
        s = (lp * gain) >> 16
        if s > 8388607:
            s = 8388607
        elif s < -8388607:
            s = -8388607
        buf[j] = s << 8
        if step == 2:
            buf[k] = other
        j += step
        k += step
        i += 1
    st[0] = x
    st[1] = lp + bias


@micropython.viper
def _spread(src: ptr32, n: int, buf: ptr32, base: int, step: int, at: int, other: int):  # noqa: F821
    """``n`` mono words of ``src`` into slot ``at`` of ``buf`` from frame ``base``."""
    i = 0
    j = base * step + at
    while i < n:
        buf[j] = src[i]
        if step == 2:
            buf[j + 1 - 2 * at] = other
        j += step
        i += 1


@micropython.viper
def _const(buf: ptr32, base: int, n: int, step: int, at: int, value: int, other: int):  # noqa: F821
    """``n`` frames of ``value`` in slot ``at`` (``other`` in the other one)."""
    i = 0
    j = base * step
    while i < n:
        if step == 2:
            buf[j + at] = value
            buf[j + 1 - at] = other
        else:
            buf[j] = value
        j += step
        i += 1


def _a_weight_sq(f):
    """A-weighting (REFERENCE 1.1, 0 dB at 1 kHz) as a power ratio."""
    f2 = f * f
    num = _F4 * _F4 * f2 * f2
    den = (f2 + _F1 * _F1) * math.sqrt((f2 + _F2 * _F2) * (f2 + _F3 * _F3)) * (f2 + _F4 * _F4)
    r = num / den * 1.2589254  # +2.00 dB
    return r * r


def _a_power(rate, a_q15, points=2000):
    """A-weighted power of the generator's noise at unit gain (counts²)."""
    a = a_q15 / 32768.0
    b = 1.0 - a
    total = 0.0
    half = rate / 2.0
    for i in range(points):
        f = (i + 0.5) * half / points
        w = 2.0 * math.pi * f / rate
        h2 = a * a / (1.0 - 2.0 * b * math.cos(w) + b * b)
        total += h2 * _a_weight_sq(f)
    return _UNIFORM_VAR * total / points


def _rush(hour):
    """0..1 traffic over the day (local time = UTC here): peaks at 8 h and 18 h."""
    morning = math.exp(-((hour - 8.0) ** 2) / 3.0)
    evening = math.exp(-((hour - 18.0) ** 2) / 4.0)
    daytime = 0.35 if 6.5 <= hour <= 22.0 else 0.05
    v = daytime + morning + 0.8 * evening
    return v if v < 1.0 else 1.0


class Street:
    """The level of a street over the node's time, as an energy (10^(L/10))."""

    def __init__(self, cfg):
        self.traffic = cfg.get("traffic", 0.5)
        self.seed = cfg.get("seed", 1)
        self.steady = cfg.get("level_db")
        self.self_noise = 10 ** (cfg.get("self_noise_dba", _SELF_NOISE_DBA) / 10)
        self._slots = {}
        self._k = None
        self._bg = 0.0
        self._near = []

    def _events(self, k):
        ev = self._slots.get(k)
        if ev is not None:
            return ev
        if len(self._slots) > 16:
            self._slots = {}
        state = [(self.seed * 1000003 + k * 7919) & 0x7FFFFFFF]

        def uniform():
            state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
            return state[0] / 2147483648.0

        for _ in range(3):
            uniform()
        start = k * _SLOT_S
        rate = 0.25 * self.traffic * _rush(((start + _SLOT_S / 2) % 86400) / 3600.0)
        ev = []
        t = start
        while rate > 0:
            t += -math.log(1.0 - uniform()) / rate
            if t >= start + _SLOT_S:
                break
            peak = 64.0 + 8.0 * self.traffic + 8.0 * (uniform() - 0.5)
            tau = 1.0 + 1.5 * uniform()
            ev.append((t, 10 ** (peak / 10), tau * tau))
        self._slots[k] = ev
        return ev

    def energy(self, t):
        if self.steady is not None:
            return 10 ** (self.steady / 10)
        k = int(t // _SLOT_S)
        if k != self._k:  # per 10 s: the background and the pass-bys within 20 s
            self._k = k
            hour = ((k + 0.5) * _SLOT_S % 86400) / 3600.0
            level = 40.0 + 12.0 * self.traffic * _rush(hour)
            self._bg = 10 ** (level / 10) + self.self_noise
            near = []
            for j in range(k - 2, k + 3):
                near.extend(self._events(j))
            self._near = near
        e = self._bg
        for t0, peak, tau2 in self._near:
            d = t - t0
            e += peak / (1.0 + d * d / tau2)
        return e


def _wiring(sck, ws, sd):
    for entry in sim_config.get().get("i2s", ()):
        if entry.get("sck") == sck and entry.get("ws") == ws and entry.get("sd") == sd:
            return entry
    return None


def _pin(p):
    return getattr(p, "_id", p)


class I2S(io.IOBase):
    RX = 0
    TX = 1
    MONO = 0
    STEREO = 1

    def __init__(self, id, *, sck=None, ws=None, sd=None, mode=0, bits=32, format=0,
                 rate=48000, ibuf=16384, **kw):  # fmt: skip
        if bits != 32:
            raise ValueError("the INMP441 needs 32-bit slots")
        self.rate = rate
        self._frame = 8 if format == 1 else 4
        self._step = 2 if format == 1 else 1
        self._cap = ibuf // self._frame
        entry = _wiring(_pin(sck), _pin(ws), _pin(sd))
        faults = sim_config.section("faults")
        mic = sim_config.section("mic")
        slot = 1 if entry is not None and entry.get("slot") == "right" else 0
        quirk = faults.get("i2s_quirk")
        if quirk == "swap":
            slot ^= 1
        # Where the microphone's words land in a frame: -1 nowhere (silence).
        self._at = slot if format == 1 else (0 if slot == 0 and quirk != "mono_zeros" else -1)
        if entry is None or faults.get("mic") == "missing":
            self._at = -1
        self._stuck = faults.get("mic") == "stuck"
        self._t0 = sim_clock.now()
        self._r = sim_clock.real_now()
        self._sent = 0
        self._budget = float(self._cap)
        speed = sim_config.get().get("audio_speed", _DEFAULT_AUDIO_SPEED)
        self._max_rate = speed * rate
        self._polled = False
        self._quiet_polls = 0
        self.overruns = 0
        self._file = None
        self._street = None
        self._scratch = None
        if mic.get("source") == "wav":
            self._file = open(mic.get("file", "mic.raw"), "rb")  # noqa: SIM115 (kept open)
            self._file.seek(0, 2)
            self._frames = self._file.tell() // 4
            self._scratch = bytearray(4 * _CHUNK)
        else:
            self._street = Street(mic)
            a = int(32768 * (1.0 - math.exp(-2.0 * math.pi * _LOWPASS_HZ / rate)))
            seed = (mic.get("seed", 1) * 2654435761) & 0xFFFFFFFF or 1
            self._st = array("I", [seed, 1 << 30, a, 0xFFFFFFFF, 1 << 30])
            ref = _FULL * 10 ** (mic.get("sensitivity_dbfs", -26.0) / 20) / math.sqrt(2.0)
            self._k = 65536.0 * ref * 10 ** (-_REF_DB / 20) / math.sqrt(_a_power(rate, a))
            self._bucket = -1
            self._gain = 0

    def deinit(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def _avail(self):
        due = int((sim_clock.now() - self._t0) * self.rate)
        if due - self._sent > self._cap:  # the DMA buffer overran: the oldest frames are lost
            lost = due - self._sent - self._cap
            self.overruns += lost
            self._sent += lost
        r = sim_clock.real_now()
        budget = self._budget + (r - self._r) * self._max_rate
        self._r = r
        if budget > self._cap:
            budget = float(self._cap)
        self._budget = budget
        have = due - self._sent
        return have if have < budget else int(budget)

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            self._polled = True
            if self._quiet_polls > 0:
                self._quiet_polls -= 1
                return 0
            return arg & 1 if self._avail() >= _READABLE else 0
        return -1  # no file descriptor (MP_STREAM_GET_FILENO), nothing else

    def readinto(self, buf):
        want = len(buf) // self._frame
        if self._polled:  # asyncio: what is there
            n = self._take(buf, 0, min(want, self._avail()))
            self._quiet_polls = _GAP_POLLS
            return n * self._frame
        done = 0  # blocking: until the buffer is full, as the frames arrive
        while done < want:
            have = self._avail()
            if have <= 0:  # wait for half a DMA buffer at most: it would overrun
                wait = min(want - done, self._cap // 2)
                if self._budget < 1:  # the emulation's CPU budget, in real time
                    sim_clock.real_sleep(wait / self._max_rate)
                else:  # the microphone's samples, on the node's clock
                    sim_clock.sleep_ms(wait * 1000 // self.rate + 1)
                continue
            done += self._take(buf, done, min(want - done, have))
        return want * self._frame

    def _take(self, buf, base, n):
        done = 0
        while done < n:
            k = min(_CHUNK, n - done)
            if self._sent < _STARTUP_FRAMES:  # the microphone still starting: zeros
                k = min(k, _STARTUP_FRAMES - self._sent)
                _const(buf, base + done, k, self._step, 0, 0, 0)
            else:
                self._produce(buf, base + done, k)
            done += k
            self._sent += k
        self._budget -= n
        return n

    def _produce(self, buf, base, n):
        step = self._step
        at = self._at
        start = self._sent
        if at < 0:
            _const(buf, base, n, step, 0, 0, 0)
            return
        if self._stuck:
            _const(buf, base, n, step, at, -1, 0)
            return
        if self._file is not None:
            f = self._file
            pos = start % self._frames
            view = memoryview(self._scratch)
            got = 0
            while got < n:
                take = min(n - got, self._frames - pos)
                f.seek(4 * pos)
                f.readinto(view[: 4 * take])
                _spread(self._scratch, take, buf, base + got, step, at, 0)
                got += take
                pos = 0
            return
        t = self._t0 + start / self.rate
        bucket = int(t / _LEVEL_STEP_S)
        if bucket != self._bucket:
            self._bucket = bucket
            self._gain = int(self._k * math.sqrt(self._street.energy(t)))
        _noise(buf, base, n, step, at, self._st, self._gain, 0)
