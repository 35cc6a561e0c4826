"""One serial port kept open for a reader: opened with backoff, its faults counted and logged.

A USB adapter comes and goes (unplugged, replugged, EIO mid-read); the readers of PM sensors
(``serial_sensors``) and of nodes in USB-serial mode (``serial_nodes``) share this handling
and differ only in what they do with the bytes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import serial

from gateway.backoff import Backoff

log = logging.getLogger(__name__)


@dataclass
class PortCounters:
    opened: int = 0  # successful opens of the port
    reconnects: int = 0  # opens after the port was lost
    disconnects: int = 0  # reads or writes that failed (unplugged, EIO)
    open_failures: int = 0
    connected: bool = False
    last_error: str = ""


class PortKeeper:
    """Opens the port when due, closes it when lost, and counts both into ``counters``."""

    def __init__(
        self,
        label: str,
        where: str,
        open_port: Callable[[], serial.Serial],
        counters: PortCounters,
        backoff: Backoff,
    ) -> None:
        self.label = label  # the node the port speaks for, in log lines
        self.where = where  # the device path
        self.counters = counters
        self.backoff = backoff
        self.port: serial.Serial | None = None
        self.next_open = 0.0
        self._open_port = open_port

    def open(self, now: float) -> serial.Serial | None:
        """The port, newly opened; None (and the next attempt scheduled) when it fails."""
        c = self.counters
        try:
            port = self._open_port()
        except (serial.SerialException, OSError) as exc:
            c.open_failures += 1
            if c.open_failures == 1 or c.last_error != str(exc):
                log.warning("%s: cannot open %s (%s)", self.label, self.where, exc)
            c.last_error = str(exc)
            self.next_open = now + self.backoff.next()
            return None
        if c.opened:
            c.reconnects += 1
        c.opened += 1
        c.connected = True
        self.port = port
        return port

    def lost(self, exc: BaseException, now: float) -> None:
        """The port failed: close it, count it, and open it again after a backoff."""
        log.warning("%s: lost %s (%s)", self.label, self.where, exc)
        c = self.counters
        c.disconnects += 1
        c.connected = False
        c.last_error = str(exc)
        self.close()
        self.next_open = now + self.backoff.next()

    def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
