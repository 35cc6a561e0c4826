"""The uplink process: queue → InfluxDB, started by the gateway service."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from multiprocessing.synchronize import Event as ProcessEvent

from gateway.config import GatewaySettings
from gateway.convert import Converter
from gateway.queue import DurableQueue
from gateway.uplink import Uplink
from ingest.dbinit import CQ_RESAMPLE_FOR_H, HOUR_S, hour_start, recompute_hours
from ingest.influx import Credentials, InfluxHTTP
from ingest.registry import NodeLookup

_PR_SET_PDEATHSIG = 1
# Longest a wait lasts before the stop request is looked at again.
STOP_POLL_S = 0.1


class StopRequest:
    """Stop, asked for by the gateway (a process event) or by SIGTERM.

    The signal handler only sets a plain attribute: taking the event's lock there could
    deadlock against the same lock held by the code the signal interrupted.
    """

    def __init__(self, event: ProcessEvent) -> None:
        self._event = event
        self.signalled = False

    def on_signal(self, signum: int, frame: object) -> None:
        self.signalled = True

    def is_set(self) -> bool:
        return self.signalled or self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = STOP_POLL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            self._event.wait(min(left, STOP_POLL_S))
        return True

    def clear(self) -> None:
        raise NotImplementedError("a stop request is never withdrawn")


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent exits (Linux).

    A gateway that died took its ingress with it; the next one starts an uplink of its own.
    Nothing is lost by ending this one at once: every message it holds is still in the queue
    until InfluxDB has acknowledged it, and a write cut off mid-request is sent again. A
    graceful end (finishing the batch in hand) is only for an orderly stop, which the gateway
    asks for through the stop event or which arrives as SIGTERM; waiting for an in-flight write
    (up to its timeout) would leave this process running beside the next gateway's uplink.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request was in place
        os.kill(os.getpid(), signal.SIGKILL)


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
        force=True,  # forked: replace the handlers the gateway process set up
    )
    stopping = StopRequest(stop)
    signal.signal(signal.SIGTERM, stopping.on_signal)
    _die_with_parent(parent)
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
        Converter(NodeLookup(settings.registry_path)),
        cfg.batch_size,
        late_cutoff=late_cutoff if cfg.recompute_late_hours else None,
        recompute=recompute if cfg.recompute_late_hours else None,
    )
    try:
        uplink.run(stopping, wake)
    finally:
        queue.close()
        influx.close()
