"""``commons gateway run``: the ingress (MQTT → queue) and the uplink (queue → InfluxDB)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from influxdb_client import Point, WritePrecision

from gateway.config import GatewaySettings
from gateway.ingress import Ingress
from gateway.queue import Accepted, DurableQueue
from gateway.uplink import Uplink
from ingest.dbinit import CQ_RESAMPLE_FOR_H, HOUR_S, hour_start, recompute_hours
from ingest.influx import Credentials, InfluxHTTP
from ingest.registry import AreaLookup
from ingest.schema import GATEWAY_MEASUREMENT

log = logging.getLogger(__name__)

UPLINK_JOIN_TIMEOUT_S = 5.0


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.started = time.time()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.queue = DurableQueue(settings.queue_path, settings.queue_max_bytes)
        self._uplink_queue = DurableQueue(settings.queue_path, settings.queue_max_bytes)
        cfg = settings.influx
        credentials = Credentials(cfg.username, cfg.password or "") if cfg.username else None
        self.influx = InfluxHTTP(cfg.url, cfg.database, credentials)
        recompute = None
        late_cutoff = None
        if cfg.recompute_late_hours:

            def recompute(measurement: str, hours: list[int]) -> None:
                recompute_hours(self.influx, measurement, hours)

            def late_cutoff() -> int:
                # Hours before this are outside the continuous queries' next resampling.
                now = int(time.time())
                return hour_start(now) + HOUR_S - CQ_RESAMPLE_FOR_H * HOUR_S

        self.uplink = Uplink(
            self._uplink_queue,
            self.influx,
            cfg.batch_size,
            self.wake,
            late_cutoff=late_cutoff,
            recompute=recompute,
        )
        self.ingress = Ingress(
            settings, self.queue, AreaLookup(settings.registry_path), self.wake.set, self.status
        )
        self._next_status = 0.0

    def status(self) -> dict[str, object]:
        counters = self.queue.counters()
        oldest = self.queue.oldest_received()
        now = time.time()
        return {
            "v": 1,
            "ts": int(now),
            "state": "online",
            "uptime": int(now - self.started),
            **{name: counters[name] for name in sorted(counters)},
            "oldest_queued_s": round(now - oldest, 1) if oldest is not None else 0.0,
            "queue_bytes": self.queue.size_bytes(),
            "alarm": self.ingress.alarm or "",
            "uplink_error": self.uplink.last_error or "",
        }

    def _tick(self) -> None:
        now = time.monotonic()
        if now < self._next_status:
            return
        self._next_status = now + self.settings.status_interval
        status = self.status()
        point = Point(GATEWAY_MEASUREMENT).tag("gateway", self.settings.gateway_id)
        for name, value in status.items():
            if name in ("v", "ts", "state"):
                continue
            point = point.field(name, value)
        point = point.time(int(status["ts"]), WritePrecision.S)  # type: ignore[call-overload]
        try:
            self.queue.commit(
                [Accepted(GATEWAY_MEASUREMENT, int(time.time()), point.to_line_protocol())],
                received=0,
            )
            self.wake.set()
        except Exception as exc:
            log.warning("could not queue the gateway status: %s", exc)
        self.ingress.publish_status()

    def run(self) -> None:
        uplink = threading.Thread(
            target=self.uplink.run, args=(self.stop_event,), name="uplink", daemon=True
        )
        uplink.start()
        log.info(
            "gateway %s: queue %s, InfluxDB %s/%s",
            self.settings.gateway_id,
            self.settings.queue_path,
            self.settings.influx.url,
            self.settings.influx.database,
        )
        try:
            self.ingress.run(self.stop_event, self._tick)
        finally:
            self.stop_event.set()
            self.wake.set()
            uplink.join(UPLINK_JOIN_TIMEOUT_S)
            self.queue.close()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("stopping on signal %d", signum)
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
