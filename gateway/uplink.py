"""Durable queue → InfluxDB, in batches, until every message is written or dead-lettered.

Messages are converted to points here, so the ingress only stores and acknowledges. One
that breaks the contract is dead-lettered with its reason at once. The rest are written as
a batch, and removed from the queue only after InfluxDB answered 2xx. When the server or
the network fails, the same batch is retried with exponential backoff and jitter for as
long as it takes; once it answers again, the backlog drains back to back at full speed.
When InfluxDB refuses a batch as bad data, the batch is split in halves until the
offending points are isolated and dead-lettered with the server's reason; rewriting the
good points of a half is harmless, because a point's identity is measurement + tags +
timestamp.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from commons.contract import InvalidMessageError
from gateway.backoff import Backoff
from gateway.convert import Converted, Converter
from gateway.queue import STAGE_INVALID, STAGE_WRITE, DurableQueue, Rejected
from ingest.influx import InfluxHTTP, InfluxQueryError, Outcome

log = logging.getLogger(__name__)

IDLE_WAIT_S = 1.0
HOUR_S = 3600
# Late hours are re-aggregated when the queue is empty, and at least this often under load.
RECOMPUTE_EVERY_S = 60.0

Recompute = Callable[[str, list[int]], None]


class Signal(Protocol):
    """What the uplink needs of a (threading or multiprocessing) event."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    def clear(self) -> None: ...


class Uplink:
    def __init__(
        self,
        queue: DurableQueue,
        influx: InfluxHTTP,
        converter: Converter,
        batch_size: int,
        late_cutoff: Callable[[], int] | None = None,
        recompute: Recompute | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.queue = queue
        self.influx = influx
        self.converter = converter
        self.batch_size = batch_size
        self.late_cutoff = late_cutoff
        self.recompute = recompute
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._next_recompute = 0.0

    def run(self, stop: Signal, wake: Signal) -> None:
        while not stop.is_set():
            batch = self.queue.peek(self.batch_size)
            if not batch or time.monotonic() >= self._next_recompute:
                self._recompute_late_hours()
                self._next_recompute = time.monotonic() + RECOMPUTE_EVERY_S
            if not batch:
                wake.wait(IDLE_WAIT_S)
                wake.clear()
                continue
            points: list[Converted] = []
            invalid: list[Rejected] = []
            for message in batch:
                try:
                    points.append(self.converter.convert(message))
                except InvalidMessageError as exc:
                    invalid.append(Rejected(message, STAGE_INVALID, str(exc)))
                except Exception as exc:  # a message that trips a bug is kept, never fatal
                    log.exception("could not convert a message on %s", message.topic)
                    invalid.append(Rejected(message, STAGE_INVALID, f"internal error: {exc!r}"))
            if invalid:
                self.queue.settle(rejected=invalid)
            if points and self.deliver(points) is Outcome.RETRY:
                delay = self.backoff.next()
                log.warning("write failed; retrying in %.1f s", delay)
                stop.wait(delay)
            elif self.backoff.attempts:
                log.info("InfluxDB accepts writes again; draining the backlog")
                self.backoff.reset()
                self.queue.clear_error()

    def deliver(self, points: Sequence[Converted]) -> Outcome:
        """Write ``points``; return RETRY if they must be tried again, else ACCEPTED."""
        result = self.influx.write([p.line for p in points])
        if result.outcome is Outcome.ACCEPTED:
            late: set[tuple[str, int]] = set()
            if self.late_cutoff is not None:
                cutoff = self.late_cutoff()
                late = {(p.measurement, p.ts - p.ts % HOUR_S) for p in points if p.ts < cutoff}
            self.queue.settle(written=[p.message for p in points], late_hours=late)
            return Outcome.ACCEPTED
        if result.outcome is Outcome.RETRY:
            status = f"HTTP {result.status}: " if result.status else ""
            error = f"{status}{result.reason}"
            log.warning("InfluxDB write failed: %s", error)
            self.queue.count_retry(error)
            return Outcome.RETRY
        if len(points) == 1:
            reason = f"InfluxDB HTTP {result.status}: {result.reason}"
            log.error("dead-lettered a point InfluxDB refused: %s", reason)
            self.queue.settle(rejected=[Rejected(points[0].message, STAGE_WRITE, reason)])
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
