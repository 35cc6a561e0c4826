"""The node: configuration, flash ring, samplers, uplink and watchdog, wired once.

    import node
    node.run()            # what main.py does at boot

Tasks on one asyncio loop: the air sampler (``sampler.Sampler``, when the node
has a PM sensor or a BME280) and the noise sampler (``noise.task.NoiseSampler``,
when ``config.json`` has a ``noise`` section) write each reading to the one flash
ring, with its kind; the uplink (``uplink.Uplink``) drains the ring to each
kind's topic; the supervisor feeds the hardware watchdog only while every task
shows progress (their ``heartbeat`` ticks), so a hung task, or a blocked loop,
ends in a reset. The PM sensor's run time is saved to flash now and then so
``pm_hours`` survives reboots.
"""

import asyncio
import gc
import os
import sys
import time

import machine
import network
import payload
from clock import Clock
from micropython import const
from ringbuf import RingBuffer
from uplink import Uplink

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from config import Config
    from noise.task import NoiseSampler
    from sampler import Sampler
    from serial_uplink import SerialUplink

_HOURS_FILE = "pm_hours"
_SUPERVISE_MS = const(1000)
# A cycle takes warm-up + samples; the uplink beats at least every second; the
# noise task at every I2S block (about 20 ms).
_SLACK_MS = const(30_000)

_RESET_CAUSES = (
    ("PWRON_RESET", "power_on"),
    ("HARD_RESET", "hard"),
    ("WDT_RESET", "watchdog"),
    ("DEEPSLEEP_RESET", "deepsleep"),
    ("SOFT_RESET", "soft"),
)


def reset_cause() -> str:
    """``machine.reset_cause()`` as a word for the status message."""
    cause = machine.reset_cause()
    for name, word in _RESET_CAUSES:
        if getattr(machine, name, None) == cause:
            return word
    return "other"


def _read_int(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or "0")
    except (OSError, ValueError):
        return 0


class Node:
    """Everything the node runs, built from ``cfg``."""

    def __init__(self, cfg: Config, wlan: network.WLAN) -> None:
        self.cfg = cfg
        self.wlan = wlan
        # The meter's buffers first, while the heap is still in one piece (about 12 KB).
        self.noise: NoiseSampler | None = None
        if cfg.noise is not None:
            from noise import node as noise_node

            self.noise = noise_node.sampler(self, cfg.noise)
        # Uptime is summed from short tick spans: one ticks_diff over days would wrap.
        self.uptime_ms = 0
        self._tick = time.ticks_ms()
        self.reset_cause = reset_cause()
        self.hours_path = cfg.buffer_folder + "/" + _HOURS_FILE
        self.ring = RingBuffer(cfg.buffer_folder, cfg.buffer_slots)
        self.clock = Clock(cfg.ntp_host, cfg.ntp_resync_s)
        self.ready = asyncio.Event()
        self.sampler: Sampler | None = None
        if cfg.pm_sensor != "none" or cfg.bme_enabled:
            # Imported only here: a noise-only node keeps its RAM (about 10 KB with the
            # sensor errors and run hours modules).
            import sampler

            self.sampler = sampler.Sampler(
                cfg, self.ring, self.clock, self.ready, _read_int(self.hours_path)
            )
        self.uplink: Uplink | SerialUplink
        if cfg.uplink != "mqtt":
            # Loaded only here, by a name made at run time: an MQTT node keeps its RAM and its
            # name pool (an import statement would intern the module's name in every node).
            self.uplink = __import__(b"serial_uplink".decode()).start(
                cfg, self.ring, self.clock, self
            )
        else:
            self.uplink = Uplink(cfg, self.ring, self.clock, wlan, self.ready, self)
        self.wdt: machine.WDT | None = None
        self.feeds = 0
        self._status = payload.Status()
        self._status.reset_cause = self.reset_cause
        self._saved_hours = -1

    def save_hours(self) -> None:
        if self.sampler is None:
            return
        seconds = self.sampler.hours.seconds()
        if seconds != self._saved_hours:
            tmp = self.hours_path + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(seconds))
            os.rename(tmp, self.hours_path)
            self._saved_hours = seconds

    def status(self) -> payload.Status:
        """The health report, filled in place (called by the uplink before each status)."""
        s = self._status
        self._count_uptime()
        s.uptime = self.uptime_ms // 1000
        # After a collection: what the node could still allocate, not how much garbage waits
        # for the next automatic collection (without it a healthy node can report 0).
        gc.collect()
        s.heap_free = gc.mem_free()
        s.rssi = None
        if self.wlan.isconnected():
            try:
                s.rssi = self.wlan.status("rssi")
            except (OSError, ValueError):
                pass
        s.buffered = len(self.ring)
        sampler = self.sampler
        s.pm_hours = None
        if sampler is not None and self.cfg.pm_sensor != "none":
            s.pm_hours = sampler.hours.hours()
        self.save_hours()
        return s

    def _count_uptime(self) -> None:
        now = time.ticks_ms()
        self.uptime_ms += time.ticks_diff(now, self._tick)
        self._tick = now

    def healthy(self) -> bool:
        """Every task beat recently enough."""
        now = time.ticks_ms()
        cfg = self.cfg
        sample_limit = 2 * cfg.sample_s * 1000 + _SLACK_MS
        uplink_limit = cfg.keepalive_s * 1000 + _SLACK_MS
        if time.ticks_diff(now, self.uplink.heartbeat) >= uplink_limit:
            return False
        sampler = self.sampler
        if sampler is not None and time.ticks_diff(now, sampler.heartbeat) >= sample_limit:
            return False
        return self.noise is None or time.ticks_diff(now, self.noise.heartbeat) < _SLACK_MS

    async def supervise(self) -> None:
        """Feed the watchdog while the node is healthy; stop feeding, and it resets."""
        if self.cfg.watchdog_s:
            self.wdt = machine.WDT(timeout=self.cfg.watchdog_s * 1000)
        while True:
            self._count_uptime()
            if self.healthy():
                if self.wdt is not None:
                    self.wdt.feed()
                    self.feeds += 1
            else:
                print("watchdog: a task is stuck; not feeding")
            await asyncio.sleep_ms(_SUPERVISE_MS)

    async def main(self) -> None:
        print(
            f"node {self.cfg.node_id} fw {self.cfg.fw}: reset cause {self.reset_cause}, "
            f"{len(self.ring)} readings buffered, next seq {self.ring.next_seq()}"
        )
        tasks = [
            asyncio.create_task(self.supervise()),
            asyncio.create_task(self.uplink.run()),
        ]
        if self.sampler is not None:
            tasks.append(asyncio.create_task(self.sampler.run()))
        if self.noise is not None:
            tasks.append(asyncio.create_task(self.noise.run()))
        await asyncio.gather(*tasks)


def load_config(mac: bytes) -> Config | None:
    """``config.json`` checked; None (after printing what is wrong) when it is not usable.

    The checking code is unloaded afterwards: it is needed once per boot.
    """
    import config

    try:
        return config.load(mac)
    except config.ConfigError as exc:
        print("CONFIG ERROR:", exc)
        return None
    finally:
        del sys.modules["config"]
        gc.collect()


def start() -> Node | None:
    """Build the node from ``config.json``; None when the configuration is bad."""
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    # The samplers config.json seems to ask for (a look at the text: load_config checks
    # it), loaded before the check so they sit together instead of between its
    # short-lived objects; a node without air sensors keeps the air sampler's RAM (about
    # 11 KB). A wrong guess costs only that: what is missing loads when the node is built.
    # (bytes, not str: each str constant is a name the port interns, and air nodes sit just
    # below the next 7 KB step of its name pool on the unix port; see firmware/README.md.)
    try:
        with open("config.json") as f:
            text = f.read().replace(" ", "").encode()
    except OSError:
        text = b""
    noise = b'"noise"' in text
    if not noise or b'"none"' not in text:
        for name in ("drivers.errors", "drivers.runhours", "sampler"):
            __import__(name)
            gc.collect()
    del text
    if noise:
        from noise import node as noise_node

        noise_node.load()
    cfg = load_config(wlan.config("mac"))
    if cfg is None:
        return None
    if cfg.uplink != "mqtt":
        wlan.active(False)  # readings go over USB: the radio stays off
    node = Node(cfg, wlan)
    # Collect once a quarter of what is left has been allocated: smaller, more frequent
    # collections than waiting for an allocation to fail, and less fragmentation.
    gc.collect()
    gc.threshold(gc.mem_free() // 4 + gc.mem_alloc())
    return node


def run() -> bool:
    """Run the node for ever; False at once when the configuration is bad."""
    node = start()
    if node is None:
        return False
    asyncio.run(node.main())
    return True
