"""``commons gateway run``: the ingress (MQTT → queue) and the uplink (queue → InfluxDB).

The two run in separate processes joined only by the SQLite queue and a wake-up event, so
taking in messages and writing them out use two cores instead of sharing one interpreter
lock, and the ingress process never loads the InfluxDB client library (its import alone
costs about 30 MB). The uplink process (``gateway/uplink_process.py``) dies with the
gateway however the gateway ends, ``kill -9`` included.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import time
from typing import Any

from gateway.config import GatewaySettings
from gateway.ingress import Ingress
from gateway.queue import DurableQueue
from gateway.serial_sensors import SerialSensors
from gateway.stopflag import StopFlag

log = logging.getLogger(__name__)

UPLINK_STOP_TIMEOUT_S = 40.0
HOUR_S = 3600


def _uplink_entry(*args: Any) -> None:
    """Start of the uplink process: only there are the line-protocol modules imported."""
    from gateway.uplink_process import uplink_main

    uplink_main(*args)


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.started = time.time()
        # Set by SIGTERM/SIGINT or when the uplink process is gone (see gateway/stopflag.py).
        self.stop_event = StopFlag()
        # Forked before the queue, the MQTT client or any thread exists, so the uplink
        # inherits nothing it must not share; fork also starts no resource-tracker process.
        context = multiprocessing.get_context("fork")
        self._uplink_stop = context.Event()
        self._wake = context.Event()
        self._uplink = context.Process(
            target=_uplink_entry,
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
        # Made in run(), after the uplink has forked.
        self.queue: DurableQueue
        self.ingress: Ingress
        self.serial: SerialSensors
        self._next_status = 0.0

    def status(self) -> dict[str, object]:
        counters = self.queue.counters()
        oldest = self.queue.oldest_received()
        now = time.time()
        last_seen = {**self.ingress.last_seen, **self.serial.last_seen()}
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
            # Per node: when the gateway last heard from it (a table, not a field).
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
        self.queue.mark_alive(time.time())
        self.ingress.publish_status()

    def run(self) -> None:
        self._uplink.start()
        settings = self.settings
        self.queue = DurableQueue(settings.queue_path, settings.queue_max_bytes)
        self.ingress = Ingress(settings, self.queue, self._wake.set, self.status)
        self.serial = SerialSensors(
            settings.serial, settings.queue_path, settings.queue_max_bytes, self._wake.set
        )
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
            if self.stop_event.signum is not None:
                log.info("stopping on signal %d", self.stop_event.signum)
            self.serial.stop()
            self._uplink_stop.set()
            self._wake.set()
            self._uplink.join(UPLINK_STOP_TIMEOUT_S)
            if self._uplink.is_alive():
                self._uplink.kill()
                self._uplink.join()
            self.queue.close()

    def install_signal_handlers(self) -> None:
        # The handler only sets a flag: it may interrupt code holding any lock.
        signal.signal(signal.SIGTERM, self.stop_event.on_signal)
        signal.signal(signal.SIGINT, self.stop_event.on_signal)
