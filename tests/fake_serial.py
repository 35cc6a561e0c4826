"""Byte-level fakes on pseudo-terminals: a PM sensor plugged into a USB-UART adapter.

A :class:`FakeSensor` owns a pty pair. The code under test opens the slave's device path
(through a symlink, as udev's ``/dev/serial/by-id/…`` would name the adapter); the fake
writes real frames to the master from a thread. Closing the master is the unplug: the
reader's next read fails (EIO / no data), and the slave device disappears with it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from commons.procs import wait_until
from gateway.serial_frames import sds011_frame

Frame = Callable[[], bytes]


class FakeSensor:
    """Writes ``frame()`` every ``period`` seconds to the master of a fresh pty."""

    def __init__(self, frame: Frame, period: float = 0.02) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)  # as pyserial leaves it: no line editing, no CR/LF translation
        self.device = Path(os.ttyname(slave))
        os.close(slave)
        os.set_blocking(self.master, False)
        self.frame = frame
        self.period = period
        self.written = 0  # frames written
        self.blocked = 0  # writes refused because nobody read the pty
        self.paused = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-sensor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            if not self.paused.is_set():
                self.write(self.frame(), count=True)

    def write(self, data: bytes, count: bool = False) -> None:
        """Put raw bytes on the wire (garbage, a corrupted frame, anything)."""
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self.master, data)
            except BlockingIOError:
                self.blocked += 1
                return
            except OSError:  # EIO: the reader side is not open (yet)
                self.blocked += 1
                return
            if count:
                self.written += 1

    def unplug(self) -> None:
        """Stop writing and close the master: the slave device goes away."""
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self.master)

    def drain(self) -> bytes:
        """What the reader wrote to the sensor (commands)."""
        with self._lock:
            if self._closed:
                return b""
            with contextlib.suppress(BlockingIOError, OSError):
                return os.read(self.master, 4096)
        return b""


@contextmanager
def plugged(link: Path, frame: Frame, period: float = 0.02) -> Iterator[FakeSensor]:
    """A sensor whose device ``link`` points at while in the block; unplugged after it."""
    sensor = FakeSensor(frame, period)
    tmp = link.with_name(link.name + ".new")
    os.symlink(sensor.device, tmp)
    os.replace(tmp, link)
    try:
        yield sensor
    finally:
        with contextlib.suppress(FileNotFoundError):
            link.unlink()  # udev removes the by-id link when the adapter goes
        sensor.unplug()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    wait_until(condition, timeout, what, poll=0.02)


def sds_stream(pm2_5: float, pm10: float) -> Frame:
    """SDS011 frames of constant values after one high and one low outlier.

    A trimmed mean drops the lowest and the highest frame of its window, so every reading
    of this stream is exactly ``pm2_5``, ``pm10``, whichever window the outliers fall in.
    """
    frames = itertools.chain(
        [sds011_frame(pm2_5 * 4, pm10 * 4), sds011_frame(0.0, 0.0)],
        itertools.repeat(sds011_frame(pm2_5, pm10)),
    )
    return lambda: next(frames)


class _Reader(Protocol):
    def run(self, stop: threading.Event) -> None: ...


R = TypeVar("R", bound=_Reader)


@contextmanager
def running(reader: R) -> Iterator[R]:
    """``reader.run`` in a thread for the block; stopped, and checked to have stopped, after."""
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), name="serial-under-test")
    thread.start()
    try:
        yield reader
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()
