"""Processes the project starts and must later stop: identified by PID *and* start time.

A PID alone can be reused by an unrelated process after ours died; the start time read from
``/proc/<pid>/stat`` makes the identity exact, so ``stop`` never signals a stranger.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class DeadlineExceededError(Exception):
    """A condition did not become true before its deadline."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} did not happen within {seconds:.0f} s")
        self.what = what
        self.seconds = seconds


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.05
) -> None:
    """Poll ``condition`` until it returns true, or raise :class:`DeadlineExceededError`."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            raise DeadlineExceededError(what, timeout)
        time.sleep(poll)


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; only its exit status is left
        return None
    return int(fields[19])


@dataclass(frozen=True)
class ProcessRef:
    """A process we started: its PID and the start time that makes the PID unambiguous."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        started = start_time(pid)
        if started is None:
            raise ProcessLookupError(pid)
        return cls(pid=pid, started=started)

    def alive(self) -> bool:
        return start_time(self.pid) == self.started

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if the process is still ours; return whether it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait for exit, then SIGKILL if it would not go."""
        if not self.signal(signal.SIGTERM):
            return
        try:
            wait_until(lambda: not self.alive(), timeout, f"process {self.pid} to exit")
        except DeadlineExceededError:
            self.signal(signal.SIGKILL)
            wait_until(lambda: not self.alive(), 5.0, f"process {self.pid} to die")
        reap(self.pid)


def reap(pid: int) -> None:
    """Collect the exit status of a child of ours, if it is one, so it leaves no zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
