"""Fake ``machine`` for running the node under the unix port (tests only).

Small on purpose: the node runs in a 100 KB heap on a 64-bit port, and the
fakes share it. The UART answers as an SDS011 in query mode would (frames
built here, checksums and all); the I2C bus holds a BME280 whose registers
are those of bme280_device's model at 18.5 degC, 1013.25 hPa, 55 %RH. ``hw.json``
(see hwconf) can make either sensor absent, or put a PMS5003 on the UART
(``"pm": {"kind": "pms5003"}``). WDT prints each feed.
"""

import sys
import time

from hwconf import HW

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_BME_TP = bytes.fromhex("706b436718fc7d8e43d6d00b270b8c00f9ff8c3cf8c67017004b")
_BME_H = bytes.fromhex("6a01001329031e")
_BME_DATA = bytes.fromhex("62f30079cd00755c")


class Pin:
    IN = 1
    OUT = 3

    def __init__(self, n, mode=-1, pull=-1):
        self.n = n


class _SDS011Uart:
    """An SDS011 behind a UART: replies to commands at once, data on query."""

    def __init__(self, present):
        self.present = present
        self.rx = bytearray(64)
        self.count = 0
        self.queries = 0

    def _frame(self, kind, d0, d1, d2, d3):
        if not self.present or self.count + 10 > len(self.rx):
            return
        rx = self.rx
        i = self.count
        rx[i] = 0xAA
        rx[i + 1] = kind
        rx[i + 2] = d0
        rx[i + 3] = d1
        rx[i + 4] = d2
        rx[i + 5] = d3
        rx[i + 6] = 0xA1
        rx[i + 7] = 0x60
        rx[i + 8] = (d0 + d1 + d2 + d3 + 0xA1 + 0x60) & 0xFF
        rx[i + 9] = 0xAB
        self.count = i + 10

    def write(self, data):
        if len(data) == 19 and data[0] == 0xAA and data[1] == 0xB4:
            cmd = data[2]
            if cmd == 0x04:
                self.queries += 1
                pm2_5 = 100 + self.queries % 50
                pm10 = 2 * pm2_5
                self._frame(0xC0, pm2_5 & 0xFF, pm2_5 >> 8, pm10 & 0xFF, pm10 >> 8)
            elif cmd == 0x02:
                self._frame(0xC5, 0x02, data[3], 1, 0)
            elif cmd == 0x08:
                self._frame(0xC5, 0x08, data[3], 0, 0)
            elif cmd == 0x06:
                self._frame(0xC5, 0x06, data[3], data[4], 0)
        return len(data)

    def any(self):
        return self.count

    def readinto(self, buf, nbytes=-1):
        n = len(buf) if nbytes < 0 else nbytes
        if n > self.count:
            n = self.count
        if n == 0:
            return None
        rx = self.rx
        for i in range(n):
            buf[i] = rx[i]
        for i in range(n, self.count):
            rx[i - n] = rx[i]
        self.count -= n
        return n

    def read(self, nbytes=-1):
        buf = bytearray(self.count if nbytes < 0 else nbytes)
        n = self.readinto(buf)
        return None if n is None else bytes(buf[:n])


class _PMS5003Uart(_SDS011Uart):
    """A PMS5003 behind a UART: acknowledges mode and sleep, a data frame on read."""

    def __init__(self, present):
        super().__init__(present)
        self.rx = bytearray(96)

    def _pms(self, words):
        # 42 4D, length, words, 16-bit sum of all bytes before it.
        n = 2 * len(words) + 2
        if not self.present or self.count + n + 4 > len(self.rx):
            return
        rx = self.rx
        i = self.count
        rx[i] = 0x42
        rx[i + 1] = 0x4D
        rx[i + 2] = n >> 8
        rx[i + 3] = n & 0xFF
        for k, w in enumerate(words):
            rx[i + 4 + 2 * k] = w >> 8
            rx[i + 5 + 2 * k] = w & 0xFF
        total = 0
        for k in range(i, i + n + 2):
            total += rx[k]
        rx[i + n + 2] = (total >> 8) & 0xFF
        rx[i + n + 3] = total & 0xFF
        self.count = i + n + 4

    def write(self, data):
        if len(data) == 7 and data[0] == 0x42 and data[1] == 0x4D:
            cmd = data[2]
            if cmd == 0xE2:
                self.queries += 1
                pm2_5 = 10 + self.queries % 20
                self._pms((pm2_5 // 2, pm2_5, 2 * pm2_5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x9700))
            elif cmd == 0xE1 or (cmd == 0xE4 and data[4] == 0):
                self._pms(((cmd << 8) | data[4],))  # wake-up (E4 01) is not acknowledged
        return len(data)


def UART(uart_id, baudrate=9600, tx=None, rx=None, timeout=0, rxbuf=256):
    pm = HW.get("pm")
    if pm is not None and pm.get("kind") == "pms5003":
        return _PMS5003Uart(True)
    return _SDS011Uart(pm is not None)


class _I2C:
    """A BME280 at 0x76 with fixed readings (absent: OSError ENODEV, no ACK)."""

    def __init__(self, present):
        self.present = present

    def _check(self, addr):
        if not self.present or addr != 0x76:
            raise OSError(19)

    def readfrom_mem_into(self, addr, memaddr, buf):
        self._check(addr)
        if memaddr == 0xD0:
            src = b"\x60"
        elif memaddr == 0x88:
            src = _BME_TP
        elif memaddr == 0xE1:
            src = _BME_H
        elif memaddr == 0xF7:
            src = _BME_DATA
        else:
            src = b"\x00"  # status: idle; control registers as written
        for i in range(len(buf)):
            buf[i] = src[i] if i < len(src) else 0

    def writeto_mem(self, addr, memaddr, buf):
        self._check(addr)


def I2C(bus_id, scl=None, sda=None, freq=400000):
    return _I2C(HW.get("bme280") is not None)


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        self.last = time.ticks_ms()
        print(f"WDT start timeout={timeout}")

    def feed(self):
        now = time.ticks_ms()
        gap = time.ticks_diff(now, self.last)
        self.last = now
        self.feeds += 1
        print(f"WDT feed {self.feeds} gap={gap}")


class RTC:
    """The unix port's clock is already right (as the fake ntptime assumes): setting it prints."""

    def datetime(self, value=None):
        if value is not None:
            print("RTC datetime", value)
        return time.gmtime()


def reset_cause():
    return globals()[HW["reset_cause"]]


def unique_id():
    return bytes.fromhex(HW["mac"])


def reset():
    print("RESET")
    sys.exit(3)


def __getattr__(name):
    # machine.I2S from its own module, loaded on first use: only a noise node pays its RAM.
    if name == "I2S":
        from machine_i2s import I2S

        return I2S
    raise AttributeError(name)
