"""The sampling task: every ``sample_s`` one PM cycle and one BME280 reading into the ring.

It never waits for the network: the finished reading is written to the flash
ring (``ringbuf``) and the uplink is woken through ``ready``. A sensor that
does not answer leaves its values out and flags the reading
``sensor_missing``; the next cycle tries it again.

Per cycle the loop allocates only what the values need (float boxes on the
ESP32, a console line); the message is written into a preallocated buffer.
``heap_min`` is the lowest free heap seen after a collection.
"""

import asyncio
import gc
import time

import machine
import payload
from drivers.errors import SensorError
from drivers.runhours import RunHours
from micropython import const

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from clock import Clock
    from config import Config
    from drivers import bme280, pms5003, sds011
    from ringbuf import RingBuffer

_SAMPLE_INTERVAL_MS = const(1000)  # the PM sensors' 1 Hz samples
# SDS011 saturates at 999.9 ug/m3 (REFERENCE 4.3).
_PM_SATURATED = 999.9


class Sampler:
    """Owns the sensors; ``run()`` is the task. ``heartbeat`` (ticks) shows it is alive."""

    def __init__(
        self, cfg: Config, ring: RingBuffer, clock: Clock, ready: asyncio.Event, hours_s: int
    ) -> None:
        self.cfg = cfg
        self.ring = ring
        self.clock = clock
        self.ready = ready
        self.hours = RunHours(time, hours_s)
        self.reading = payload.AirReading()
        self.writer = payload.Writer()
        self.pm: sds011.SDS011 | pms5003.PMS5003 | None = None
        self._pm_ready = False
        if cfg.pm_sensor != "none":
            uart = machine.UART(
                cfg.pm_uart, baudrate=9600, tx=cfg.pm_tx, rx=cfg.pm_rx, timeout=0, rxbuf=1024
            )
            # Only the driver in use is imported: each costs RAM.
            if cfg.pm_sensor == "sds011":
                from drivers.sds011 import SDS011

                self.pm = SDS011(uart, hours=self.hours)
            else:
                from drivers.pms5003 import PMS5003

                self.pm = PMS5003(uart, hours=self.hours)
        gc.collect()  # after loading a driver: keep the heap in one piece
        self.i2c: machine.I2C | None = None
        self.bme: bme280.BME280 | None = None
        self._bme280 = None
        if cfg.bme_enabled:
            from drivers import bme280 as bme280_module

            self._bme280 = bme280_module
            gc.collect()
            self.i2c = machine.I2C(
                cfg.bme_i2c,
                scl=machine.Pin(cfg.bme_scl),
                sda=machine.Pin(cfg.bme_sda),
                freq=100_000,
            )
        self.cycles = 0
        self.pm_errors = 0
        self.bme_errors = 0
        self.heartbeat = time.ticks_ms()
        self.heap_min = 1 << 30
        self.store_errors = 0
        self.last_error = ""

    async def _sample_pm(self, r: payload.AirReading) -> None:
        pm = self.pm
        if pm is None:
            return
        cfg = self.cfg
        try:
            if not self._pm_ready:
                if self.cfg.pm_sensor == "sds011":
                    pm.setup()  # type: ignore[union-attr]
                self._pm_ready = True
            for ms in pm.cycle(cfg.pm_warmup_s * 1000, cfg.pm_samples, _SAMPLE_INTERVAL_MS):
                await asyncio.sleep_ms(ms)
            last = pm.last
            if last is None:
                raise SensorError(cfg.pm_sensor, "cycle ended without a reading")
        except SensorError as exc:
            self.pm_errors += 1
            self._pm_ready = False
            self.last_error = str(exc)
            r.flags |= payload.SENSOR_MISSING
            return
        r.pm1 = getattr(last, "pm1", None)  # the PMS5003 has it, the SDS011 not
        r.pm2_5 = last.pm2_5
        r.pm10 = last.pm10
        if cfg.pm_warmup_short:
            r.flags |= payload.WARMUP
        if last.pm2_5 >= _PM_SATURATED or last.pm10 >= _PM_SATURATED:
            r.flags |= payload.OUT_OF_RANGE

    def _sample_bme(self, r: payload.AirReading) -> None:
        driver = self._bme280
        if self.i2c is None or driver is None:
            return
        try:
            if self.bme is None:
                self.bme = driver.BME280(driver.BME280I2C(self.i2c, self.cfg.bme_address))
            env = self.bme.read()
        except SensorError as exc:
            self.bme = None
            self.bme_errors += 1
            self.last_error = str(exc)
            r.flags |= payload.SENSOR_MISSING
            return
        r.temp = env.temperature
        r.rh = env.humidity
        r.pres = env.pressure
        if env.humidity is not None and env.humidity > payload.RH_HIGH_PERCENT:
            r.flags |= payload.RH_HIGH

    async def sample(self) -> int:
        """One reading into the ring; returns its seq."""
        r = self.reading
        r.clear()
        await self._sample_pm(r)
        self._sample_bme(r)
        r.ts = self.clock.now()
        ring = self.ring
        seq = ring.next_seq()
        try:
            ring.append(payload.air(self.writer, r, seq, self.cfg.fw))
        except OSError as exc:
            # Flash full or failing: this reading is lost, and counted.
            self.store_errors += 1
            self.last_error = "flash: " + repr(exc)
            print(f"store: reading {seq} lost: {self.last_error}")
        self.ready.set()
        return seq

    async def run(self) -> None:
        interval_ms = self.cfg.sample_s * 1000
        while True:
            t0 = time.ticks_ms()
            seq = await self.sample()
            self.cycles += 1
            self.heartbeat = time.ticks_ms()
            gc.collect()
            free = gc.mem_free()
            if free < self.heap_min:
                self.heap_min = free
            print(
                f"sample seq={seq} buffered={len(self.ring)} dropped={self.ring.dropped} "
                f"heap_free={free} heap_min={self.heap_min}"
            )
            left = interval_ms - time.ticks_diff(time.ticks_ms(), t0)
            await asyncio.sleep_ms(left if left > 0 else 0)  # always yield to the uplink
