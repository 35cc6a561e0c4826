"""``machine`` on the simulated node: ESP32 pins, UART and I2C wired to emulated
sensors (sim_env), a watchdog that really resets, reset causes.

Which device sits on which pins comes from ``sim.json`` (written by the host
from hardware/<kind>/board.toml): a UART or I2C bus opened on other pins finds
nothing, as on a miswired board.
"""

import errno
import os
import sys

import sim_clock
import sim_config

# The air sensors' models, loaded at boot (before the firmware, so they do not split its
# heap) when the board has any: a noise node's heap does not pay for them.
if sim_config.get().get("uart") or sim_config.get().get("i2c"):
    import sim_env

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_CAUSES = {
    "PWRON": PWRON_RESET,
    "HARD": HARD_RESET,
    "WDT": WDT_RESET,
    "DEEPSLEEP": DEEPSLEEP_RESET,
    "SOFT": SOFT_RESET,
}
_FLASH_PINS = (6, 7, 8, 9, 10, 11)
_VALID_PINS = (0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 25, 26, 27,
               32, 33, 34, 35, 36, 37, 38, 39)  # fmt: skip


# A fault to exercise the watchdog: after this many seconds of uptime, on the first boot
# only, a device holds the I2C bus and the next transfer never returns.
_HANG_AT_S = sim_config.section("faults").get("i2c_hang_at_s")
if os.getenv("COMMONS_SIM_RESET") not in (None, "", "PWRON"):
    _HANG_AT_S = None


def _hang():
    print("sim: the I2C bus hangs")
    while True:
        sim_clock.sleep_ms(3600000)


def reset_cause():
    return _CAUSES.get(os.getenv("COMMONS_SIM_RESET") or "PWRON", PWRON_RESET)


def reset():
    print("sim: machine.reset()")
    sys.exit(sim_clock.EXIT_RESET)


def soft_reset():
    reset()


def deepsleep(ms=0):
    print("sim: deep sleep %d ms" % ms)
    sim_clock.sleep_ms(ms)
    sys.exit(sim_clock.EXIT_DEEPSLEEP)


def lightsleep(ms=0):
    sim_clock.sleep_ms(ms)


def idle():
    sim_clock.sleep_ms(1)


def freq(hz=None):
    return 160000000 if hz is None else None


def unique_id():
    return bytes.fromhex(sim_config.section("wifi").get("mac", "24a160000001"))


def _pin_id(pin):
    return pin._id if isinstance(pin, Pin) else pin


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None, **kw):
        if id not in _VALID_PINS:
            raise ValueError("invalid pin")
        self._id = id
        self._value = 0
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, **kw):
        if mode in (Pin.OUT, Pin.OPEN_DRAIN) and self._id >= 34:
            raise ValueError("pin can only be input")
        if value is not None:
            self._value = 1 if value else 0

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def irq(self, handler=None, trigger=3, **kw):
        return None

    def __repr__(self):
        return "Pin(%d)" % self._id


def _wired(kind, **pins):
    for entry in sim_config.get().get(kind, ()):
        if all(entry.get(k) == v for k, v in pins.items()):
            return entry
    return None


class UART:
    """ESP32 UART with a receive ring buffer of ``rxbuf`` bytes (overflow drops, counted)."""

    def __init__(self, id, baudrate=9600, bits=8, parity=None, stop=1, *, tx=None, rx=None,
                 timeout=0, timeout_char=0, rxbuf=256, **kw):  # fmt: skip
        self.id = id
        self._rx = bytearray(256)
        self._head = 0
        self._count = 0
        self.dropped = 0
        self._device = None
        self.init(baudrate, bits, parity, stop, tx=tx, rx=rx, timeout=timeout, rxbuf=rxbuf)

    def init(self, baudrate=9600, bits=8, parity=None, stop=1, *, tx=None, rx=None,
             timeout=None, rxbuf=None, **kw):  # fmt: skip
        self.baudrate = baudrate
        if timeout is not None:
            self.timeout = timeout
        if rxbuf is not None and rxbuf != len(self._rx):
            self._rx = bytearray(rxbuf)
            self._head = self._count = 0
        if tx is not None or rx is not None:
            entry = _wired("uart", tx=_pin_id(tx), rx=_pin_id(rx))
            self._device = None
            if entry is not None and entry.get("baudrate", 9600) == baudrate:
                make = sim_env.UART_DEVICES[entry["device"]]
                self._device = make(entry.get("opts") or {})

    def deinit(self):
        self._device = None

    def feed(self, data):
        size = len(self._rx)
        for b in data:
            if self._count == size:
                self.dropped += 1
                continue
            self._rx[(self._head + self._count) % size] = b
            self._count += 1

    def _pump(self):
        if self._device is not None:
            self._device.pump(self, sim_clock.now_ms())

    def any(self):
        self._pump()
        sim_clock.check_wdt()
        return self._count

    def _wait(self):
        # machine.UART blocks up to ``timeout`` ms for the first byte.
        self._pump()
        if self._count or not self.timeout:
            return
        deadline = sim_clock.now_ms() + self.timeout
        while not self._count:
            now = sim_clock.now_ms()
            if now >= deadline:
                return
            sim_clock.sleep_until(min(deadline, now + 10))
            self._pump()

    def readinto(self, buf, nbytes=-1):
        self._wait()
        n = len(buf) if nbytes < 0 else nbytes
        if n > self._count:
            n = self._count
        if n == 0:
            return None
        size = len(self._rx)
        for i in range(n):
            buf[i] = self._rx[self._head]
            self._head = (self._head + 1) % size
        self._count -= n
        return n

    def read(self, nbytes=-1):
        self._wait()
        buf = bytearray(self._count if nbytes < 0 else min(nbytes, self._count))
        if not buf:
            return None
        n = self.readinto(buf)
        return bytes(buf[:n])

    def write(self, data):
        if self._device is not None:
            self._pump()
            self._device.on_write(self, bytes(data), sim_clock.now_ms())
        return len(data)

    def flush(self):
        pass

    def txdone(self):
        return True


class I2C:
    """ESP32 I2C: devices at their addresses; no answer raises OSError(ENODEV)."""

    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000, **kw):
        self.id = id
        self.devices = {}
        entry = _wired("i2c", scl=_pin_id(scl), sda=_pin_id(sda))
        if entry is not None:
            for dev in entry.get("devices", ()):
                make = sim_env.I2C_DEVICES[dev["device"]]
                self.devices[dev["address"]] = make(dev.get("opts") or {})

    def _device(self, addr):
        sim_clock.check_wdt()
        if _HANG_AT_S is not None and sim_clock.now_ms() >= _HANG_AT_S * 1000:
            _hang()
        device = self.devices.get(addr)
        if device is None:
            raise OSError(errno.ENODEV)
        return device

    def scan(self):
        return sorted(self.devices)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self._device(addr).read(memaddr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        buf = bytearray(nbytes)
        self._device(addr).read(memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self._device(addr).write(memaddr, buf)

    def writeto(self, addr, buf, stop=True):
        # Register-pointer style: first byte the register, the rest its data.
        if len(buf) > 1:
            self._device(addr).write(buf[0], buf[1:])
        else:
            self._device(addr)
            self._pointer = buf[0] if buf else 0
        return 1

    def readfrom_into(self, addr, buf, stop=True):
        self._device(addr).read(getattr(self, "_pointer", 0), buf)

    def readfrom(self, addr, nbytes, stop=True):
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf)
        return bytes(buf)


SoftI2C = I2C


class WDT:
    """The hardware watchdog: not fed within ``timeout`` ms, the node resets.

    The process exits with sim_clock.EXIT_WDT and the host starts it again with
    reset_cause() == WDT_RESET. As on the ESP32, it cannot be stopped.
    """

    def __init__(self, id=0, timeout=5000):
        sim_clock.wdt_arm(timeout)

    def feed(self):
        sim_clock.wdt_feed()


def __getattr__(name):
    # machine.I2S (the INMP441 of a noise node) from its own module, loaded on first use:
    # an air node pays none of its RAM.
    if name == "I2S":
        from sim_i2s import I2S

        return I2S
    raise AttributeError(name)
