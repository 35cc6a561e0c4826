"""``commons gateway run``: the ingress (MQTT → queue) and the uplink (queue → InfluxDB).

The two run in separate processes joined only by the SQLite queue and a wake-up event, so
taking in messages and writing them out use two cores instead of sharing one interpreter
lock. The uplink process dies with the gateway (``PR_SET_PDEATHSIG``) however the gateway
ends, ``kill -9`` included.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import threading
import time
from multiprocessing.synchronize import Event as ProcessEvent
from types import FrameType

from gateway.config import GatewaySettings
from gateway.convert import Converter
from gateway.ingress import Ingress
from gateway.queue import DurableQueue
from gateway.serial_sensors import SerialSensors
from gateway.uplink import Uplink
from ingest.dbinit import CQ_RESAMPLE_FOR_H, HOUR_S, hour_start, recompute_hours
from ingest.influx import Credentials, InfluxHTTP
from ingest.registry import AreaLookup

log = logging.getLogger(__name__)

UPLINK_STOP_TIMEOUT_S = 40.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGTERM this process when its parent exits (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


def late_cutoff() -> int:
    """Points older than this are outside the continuous queries' next resampling."""
    now = int(time.time())
    return hour_start(now) + HOUR_S - CQ_RESAMPLE_FOR_H * HOUR_S


def uplink_main(
    settings: GatewaySettings, stop: ProcessEvent, wake: ProcessEvent, parent: int, level: int
) -> None:
    """Entry point of the uplink process."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s[uplink]: %(message)s",
    )
    _die_with_parent(parent)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway process decides when to stop
    cfg = settings.influx
    credentials = Credentials(cfg.username, cfg.password or "") if cfg.username else None
    influx = InfluxHTTP(cfg.url, cfg.database, credentials, write_timeout=cfg.timeout)
    queue = DurableQueue(settings.queue_path, settings.queue_max_bytes)

    def recompute(measurement: str, hours: list[int]) -> None:
        recompute_hours(influx, measurement, hours)

    uplink = Uplink(
        queue,
        influx,
        Converter(AreaLookup(settings.registry_path)),
        cfg.batch_size,
        late_cutoff=late_cutoff if cfg.recompute_late_hours else None,
        recompute=recompute if cfg.recompute_late_hours else None,
    )
    try:
        uplink.run(stop, wake)
    finally:
        queue.close()
        influx.close()


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.started = time.time()
        self.stop_event = threading.Event()
        context = multiprocessing.get_context("spawn")
        self._uplink_stop = context.Event()
        self._wake = context.Event()
        self._uplink = context.Process(
            target=uplink_main,
            args=(
                settings,
                self._uplink_stop,
                self._wake,
                os.getpid(),
                logging.getLogger().getEffectiveLevel(),
            ),
            name="commons-uplink",
            daemon=True,
        )
        self.queue = DurableQueue(settings.queue_path, settings.queue_max_bytes)
        self.ingress = Ingress(settings, self.queue, self._wake.set, self.status)
        self.serial = SerialSensors(
            settings.serial, settings.queue_path, settings.queue_max_bytes, self._wake.set
        )
        self._next_status = 0.0

    def status(self) -> dict[str, object]:
        counters = self.queue.counters()
        oldest = self.queue.oldest_received()
        now = time.time()
        last_seen = self.ingress.last_seen
        return {
            "v": 1,
            "ts": int(now),
            "state": "online",
            "uptime": int(now - self.started),
            **{name: counters[name] for name in sorted(counters)},
            "oldest_queued_s": round(now - oldest, 1) if oldest is not None else 0.0,
            "queue_bytes": self.queue.size_bytes(),
            "disk_free": shutil.disk_usage(self.settings.queue_path.parent).free,
            "nodes_seen_1h": sum(1 for t in last_seen.values() if now - t < HOUR_S),
            "alarm": self.ingress.alarm or "",
            "uplink_error": self.queue.state("uplink_error"),
            "uplink_alive": self._uplink.is_alive(),
            **self.serial.status_fields(),
            # Per node: when the gateway last heard from it (MQTT only; a table, not a field).
            "last_seen": {node: int(t) for node, t in sorted(last_seen.items())},
        }

    def _tick(self) -> None:
        now = time.monotonic()
        if now < self._next_status:
            return
        self._next_status = now + self.settings.status_interval
        if not self._uplink.is_alive():
            log.error("the uplink process exited (code %s); stopping", self._uplink.exitcode)
            self.stop_event.set()
            return
        self.ingress.publish_status()

    def run(self) -> None:
        self._uplink.start()
        log.info(
            "gateway %s: queue %s, InfluxDB %s/%s (uplink pid %s)",
            self.settings.gateway_id,
            self.settings.queue_path,
            self.settings.influx.url,
            self.settings.influx.database,
            self._uplink.pid,
        )
        try:
            self.serial.start()
            self.ingress.run(self.stop_event, self._tick)
        finally:
            self.serial.stop()
            self._uplink_stop.set()
            self._wake.set()
            self._uplink.join(UPLINK_STOP_TIMEOUT_S)
            if self._uplink.is_alive():
                self._uplink.kill()
                self._uplink.join()
            self.queue.close()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("stopping on signal %d", signum)
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
