"""The air-quality node: configuration, flash ring, sampler, uplink and watchdog, wired once.

    import node
    node.run()            # what main.py does at boot

Three tasks on one asyncio loop: the sampler (``sampler.Sampler``) writes each
reading to the flash ring; the uplink (``uplink.Uplink``) drains the ring to
the broker; the supervisor feeds the hardware watchdog only while both show
progress (their ``heartbeat`` ticks), so a hung task, or a blocked loop,
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
from sampler import Sampler
from uplink import Uplink

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from config import Config

_HOURS_FILE = "pm_hours"
_SUPERVISE_MS = const(1000)
# A cycle takes warm-up + samples; the uplink beats at least every second.
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
        # Uptime is summed from short tick spans: one ticks_diff over days would wrap.
        self.uptime_ms = 0
        self._tick = time.ticks_ms()
        self.reset_cause = reset_cause()
        self.hours_path = cfg.buffer_folder + "/" + _HOURS_FILE
        self.ring = RingBuffer(cfg.buffer_folder, cfg.buffer_slots)
        self.clock = Clock(cfg.ntp_host, cfg.ntp_resync_s)
        self.ready = asyncio.Event()
        self.sampler = Sampler(cfg, self.ring, self.clock, self.ready, _read_int(self.hours_path))
        self.uplink = Uplink(cfg, self.ring, self.clock, wlan, self.ready, self)
        self.wdt: machine.WDT | None = None
        self.feeds = 0
        self._status = payload.Status()
        self._status.reset_cause = self.reset_cause
        self._saved_hours = -1

    def save_hours(self) -> None:
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
        s.heap_free = gc.mem_free()
        s.rssi = None
        if self.wlan.isconnected():
            try:
                s.rssi = self.wlan.status("rssi")
            except (OSError, ValueError):
                pass
        s.buffered = len(self.ring)
        s.pm_hours = self.sampler.hours.hours() if self.cfg.pm_sensor != "none" else None
        self.save_hours()
        return s

    def _count_uptime(self) -> None:
        now = time.ticks_ms()
        self.uptime_ms += time.ticks_diff(now, self._tick)
        self._tick = now

    def healthy(self) -> bool:
        """Both tasks beat recently enough."""
        now = time.ticks_ms()
        cfg = self.cfg
        sample_limit = 2 * cfg.sample_s * 1000 + _SLACK_MS
        uplink_limit = cfg.keepalive_s * 1000 + _SLACK_MS
        return (
            time.ticks_diff(now, self.sampler.heartbeat) < sample_limit
            and time.ticks_diff(now, self.uplink.heartbeat) < uplink_limit
        )

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
            asyncio.create_task(self.sampler.run()),
        ]
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
    cfg = load_config(wlan.config("mac"))
    if cfg is None:
        return None
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
