"""Fake ``machine.I2S`` (tests only): ``machine`` hands it out on first use, so it costs
an air node's heap nothing."""

import io
import math
import time

from hwconf import HW


class I2S(io.IOBase):
    """An INMP441 on I2S receiving: a steady tone, paced by the clock, as 32-bit words.

    ``hw.json``'s ``"i2s": {"hz": 1000, "db": 94.0, "slot": "left"}`` (the defaults) is a
    ``hz`` tone of ``db`` SPL for a -26 dBFS microphone talking in the ``slot`` its L/R pin
    selects (or a driver that swaps the slots puts it in); the other slot reads zeros (the
    INMP441 leaves SD undriven there). ``null`` is no microphone (silence); ``"stuck": n``
    a data line stuck at the 24-bit value ``n`` in that slot. A mono read gives the left
    slot. Until it is polled
    (``ioctl``, as ``asyncio.StreamReader`` does) ``readinto`` blocks until the buffer is
    full, as on the ESP32. One period of the tone is computed once (``rate // hz`` words:
    exact for 1 kHz at 48 kHz).
    """

    RX = 0
    MONO = 0
    STEREO = 1

    def __init__(
        self, bus, sck=None, ws=None, sd=None, mode=0, bits=32, format=0, rate=48000, ibuf=16384
    ):
        conf = HW.get("i2s", {})
        hz = 1000
        peak = 0
        slot = 0
        stuck = 0
        if conf is not None:
            stuck = conf.get("stuck", 0)
            if stuck:
                conf = {"db": -999.0, "slot": conf.get("slot")}
            hz = conf.get("hz", 1000)
            peak = 8388607 * 10 ** ((conf.get("db", 94.0) - 94.0 - 26.0) / 20)
            slot = 1 if conf.get("slot") == "right" else 0
            if format == 0 and slot:
                peak = 0
        stereo = format == 1
        n = rate // hz
        step = 8 if stereo else 4
        self.words = bytearray(step * n)
        at = 4 * slot if stereo else 0
        for i in range(n):
            s = (int(peak * math.sin(2 * math.pi * i / n)) + stuck) & 0xFFFFFF
            self.words[step * i + at + 1] = s & 0xFF
            self.words[step * i + at + 2] = (s >> 8) & 0xFF
            self.words[step * i + at + 3] = s >> 16
        self.src = memoryview(self.words)
        self.rate = rate
        self.frame = step
        self.cap = ibuf // step
        self.t0 = time.ticks_ms()
        self.sent = 0  # frames handed out
        self.pos = 0  # byte offset in the tone's period
        self.overruns = 0
        self.polled = False
        print(f"I2S bus={bus} rate={rate} bits={bits} format={format}")

    def _due(self):
        due = time.ticks_diff(time.ticks_ms(), self.t0) * self.rate // 1000 - self.sent
        if due > self.cap:  # the DMA buffer overran: the oldest samples are lost
            self.overruns += 1
            self.sent += due - self.cap
            due = self.cap
        return due

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL: readable once a few ms of samples are there
            self.polled = True
            return arg & 1 if self._due() >= 256 else 0
        return -1  # no file descriptor (MP_STREAM_GET_FILENO) or anything else

    def deinit(self):
        pass

    def readinto(self, buf):
        want = len(buf) // self.frame
        while not self.polled and self._due() < want:
            time.sleep_ms(1)
        frames = min(want, self._due())
        nbytes = frames * self.frame
        src = self.src
        size = len(src)
        pos = self.pos
        out = memoryview(buf)
        done = 0
        while done < nbytes:
            k = min(size - pos, nbytes - done)
            out[done : done + k] = src[pos : pos + k]
            done += k
            pos = (pos + k) % size
        self.pos = pos
        self.sent += frames
        return nbytes
