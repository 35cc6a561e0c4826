"""Durable queue → InfluxDB, in batches, until every point is accepted or dead-lettered.

A batch is deleted from the queue only after InfluxDB answered 2xx. When the server or the
network fails, the same batch is retried with exponential backoff and jitter for as long as
it takes; once it answers again the backlog drains back to back at full speed. When
InfluxDB refuses a batch as bad data, the batch is split in halves until the offending
points are isolated and dead-lettered with the server's reason; rewriting the good points
of a half is harmless, because a point's identity is measurement + tags + timestamp.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from gateway.backoff import Backoff
from gateway.queue import DurableQueue, QueuedPoint
from ingest.influx import InfluxHTTP, InfluxQueryError, Outcome

log = logging.getLogger(__name__)

IDLE_WAIT_S = 1.0

Recompute = Callable[[str, list[int]], None]


class Uplink:
    def __init__(
        self,
        queue: DurableQueue,
        influx: InfluxHTTP,
        batch_size: int,
        wake: threading.Event,
        late_cutoff: Callable[[], int] | None = None,
        recompute: Recompute | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.queue = queue
        self.influx = influx
        self.batch_size = batch_size
        self.wake = wake
        self.late_cutoff = late_cutoff
        self.recompute = recompute
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.last_error: str | None = None

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            batch = self.queue.peek(self.batch_size)
            if not batch:
                self._recompute_late_hours()
                self.wake.wait(IDLE_WAIT_S)
                self.wake.clear()
                continue
            if self.deliver(batch) is Outcome.RETRY:
                self.queue.count_retry()
                delay = self.backoff.next()
                log.warning(
                    "InfluxDB write failed (%s); retrying in %.1f s", self.last_error, delay
                )
                stop.wait(delay)
            else:
                if self.backoff.attempts:
                    log.info("InfluxDB accepts writes again; draining the backlog")
                self.backoff.reset()
                self.last_error = None

    def deliver(self, points: Sequence[QueuedPoint]) -> Outcome:
        """Write ``points``; return RETRY if they must be tried again, else ACCEPTED."""
        result = self.influx.write([p.line for p in points])
        if result.outcome is Outcome.ACCEPTED:
            late_before = self.late_cutoff() if self.late_cutoff is not None else None
            self.queue.complete(points, late_before=late_before)
            return Outcome.ACCEPTED
        if result.outcome is Outcome.RETRY:
            status = f"HTTP {result.status}: " if result.status else ""
            self.last_error = f"{status}{result.reason}"
            return Outcome.RETRY
        if len(points) == 1:
            reason = f"InfluxDB HTTP {result.status}: {result.reason}"
            log.error("dead-lettered a point InfluxDB refused: %s", reason)
            self.queue.reject(points[0], reason)
            return Outcome.ACCEPTED
        half = len(points) // 2
        if self.deliver(points[:half]) is Outcome.RETRY:
            return Outcome.RETRY
        return self.deliver(points[half:])

    def _recompute_late_hours(self) -> None:
        if self.recompute is None:
            return
        for measurement, hours in self.queue.late_hours().items():
            try:
                self.recompute(measurement, hours)
            except InfluxQueryError as exc:
                # The hours stay recorded and are recomputed once InfluxDB answers again.
                log.warning(
                    "re-aggregating %d late hours of %s failed: %s", len(hours), measurement, exc
                )
                return
            self.queue.clear_late_hours(measurement, hours)
