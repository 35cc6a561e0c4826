"""Fake ``machine.I2S`` (tests only): ``machine`` hands it out on first use, so it costs
an air node's heap nothing."""

import io
import math
import time

from hwconf import HW


class I2S(io.IOBase):
    """An INMP441 on I2S receiving: a steady tone, paced by the clock, as 32-bit words.

    ``hw.json``'s ``"i2s": {"hz": 1000, "db": 94.0}`` (the defaults) is a ``hz`` tone of
    ``db`` SPL for a -26 dBFS microphone; ``null`` is no microphone (silence). Only the
    calls the node makes: the constructor, ``readinto`` and polling (``ioctl``), so
    ``asyncio.StreamReader`` waits for the samples as it would for the DMA buffer. One
    period of the tone is computed once (``rate // hz`` words: exact for 1 kHz at 48 kHz).
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
        if conf is not None:
            hz = conf.get("hz", 1000)
            peak = 8388607 * 10 ** ((conf.get("db", 94.0) - 94.0 - 26.0) / 20)
        n = rate // hz
        self.words = bytearray(4 * n)
        for i in range(n):
            s = int(peak * math.sin(2 * math.pi * i / n)) & 0xFFFFFF
            self.words[4 * i + 1] = s & 0xFF
            self.words[4 * i + 2] = (s >> 8) & 0xFF
            self.words[4 * i + 3] = s >> 16
        self.src = memoryview(self.words)
        self.rate = rate
        self.cap = ibuf // 4
        self.t0 = time.ticks_ms()
        self.sent = 0  # words handed out
        self.pos = 0  # byte offset in the tone's period
        self.overruns = 0
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
            return arg & 1 if self._due() >= 256 else 0
        return -1  # no file descriptor (MP_STREAM_GET_FILENO) or anything else

    def readinto(self, buf):
        words = min(len(buf) >> 2, self._due())
        nbytes = words << 2
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
        self.sent += words
        return nbytes
