"""The simulated nodes' processes: one ``micropython`` per node, restarted when the node resets.

A node's process ends the way an ESP32 resets (commons/sim/mpy/sim_clock.py): exit code
``EXIT_WDT`` when its watchdog was not fed, ``EXIT_RESET`` on ``machine.reset()``,
``EXIT_DEEPSLEEP`` after deep sleep. The supervisor starts it again with that reset cause
(``machine.reset_cause()`` reads it). Any other ending is a crash (an uncaught exception, a
``MemoryError``): on a device the hardware watchdog would reset it, so it is restarted as a
watchdog reset, at most ``MAX_CRASHES`` times in a row within ``CRASH_WINDOW_S``. Exit code 0
(``main.py`` returned) and 2 (``config.json`` rejected) leave the node stopped, as a device
would sit at its REPL.

Every process is stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from commons.micropython import FIRMWARE_DIR, micropython_command, micropython_env
from commons.procs import ProcessRef

EXIT_WDT = 87
EXIT_RESET = 82
EXIT_DEEPSLEEP = 83
EXIT_CONFIG = 2  # main.py under the unix port: config.json was rejected
CAUSE_BY_EXIT = {EXIT_WDT: "WDT", EXIT_RESET: "SOFT", EXIT_DEEPSLEEP: "DEEPSLEEP"}
MAX_CRASHES = 5
CRASH_WINDOW_S = 60.0
CONSOLE = "console.log"


@dataclass
class NodeStats:
    boots: int = 0
    resets: Counter[str] = field(default_factory=Counter)
    crashes: int = 0
    memory_errors: int = 0
    state: str = "starting"  # running, stopped (exit 0), failed (too many crashes), killed
    last_exit: int | None = None


class NodeProcess:
    """One node's ``micropython firmware/main.py`` in its folder, supervised by a thread."""

    def __init__(
        self,
        node_id: str,
        folder: Path,
        path: list[Path],
        heap: str,
        main: Path = FIRMWARE_DIR / "main.py",
    ) -> None:
        self.node_id = node_id
        self.folder = folder
        self.path = path
        self.heap = heap
        self.main = main
        self.stats = NodeStats()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ref: ProcessRef | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"sim-{node_id}", daemon=True)
        self._crash_times: list[float] = []
        # Where this run's console output, and the current boot's, start in console.log.
        self._run_offset: int | None = None
        self._boot_offset = 0

    @property
    def console(self) -> Path:
        return self.folder / CONSOLE

    def start(self) -> None:
        self._spawn("PWRON")
        self._thread.start()

    def _spawn(self, cause: str) -> None:
        env = micropython_env(
            self.path, {"COMMONS_SIM_RESET": cause, "COMMONS_SIM_HOST_PID": str(os.getpid())}
        )
        with self._lock:
            if self._stopping.is_set():
                return
            with self.console.open("ab") as out:
                if self._run_offset is None:
                    self._run_offset = out.tell()
                out.write(f"--- boot {self.stats.boots + 1} ({cause}) ---\n".encode())
                out.flush()
                self._boot_offset = out.tell()
                self._proc = subprocess.Popen(
                    micropython_command(self.main, heap=self.heap),
                    cwd=self.folder,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the host, which stops the nodes
                )
            try:
                self._ref = ProcessRef.of(self._proc.pid)
            except ProcessLookupError:
                self._ref = None
            self.stats.boots += 1
            self.stats.state = "running"

    def _supervise(self) -> None:
        while True:
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            self.stats.last_exit = code
            if self._memory_error():  # also when the firmware caught it and reset itself
                self.stats.memory_errors += 1
            if self._stopping.is_set():
                self.stats.state = "killed"
                return
            if code == 0:
                self.stats.state = "stopped"
                return
            if code == EXIT_CONFIG:
                self.stats.state = "config error"
                return
            cause = CAUSE_BY_EXIT.get(code)
            if cause is None:
                self.stats.crashes += 1
                now = time.monotonic()
                self._crash_times = [t for t in self._crash_times if now - t < CRASH_WINDOW_S]
                self._crash_times.append(now)
                if len(self._crash_times) > MAX_CRASHES:
                    self.stats.state = "failed"
                    return
                cause = "WDT"
            self.stats.resets[cause] += 1
            self._spawn(cause)

    def _memory_error(self) -> bool:
        try:
            with self.console.open("rb") as f:
                f.seek(self._boot_offset)
                return b"MemoryError" in f.read()
        except OSError:
            return False

    def request_stop(self) -> None:
        """No more restarts; SIGTERM to the running process."""
        with self._lock:
            self._stopping.set()
            ref = self._ref
        if ref is not None:
            ref.signal(signal.SIGTERM)

    def heap_min_collected(self) -> int | None:
        """Lowest ``heap_min=`` of the firmware's ``sample`` and ``noise`` console lines (free
        after a gc)."""
        lowest: int | None = None
        try:
            with self.console.open("rb") as f:
                f.seek(self._run_offset or 0)
                for line in f:
                    if not line.startswith((b"sample ", b"noise seq=")):
                        continue
                    for field in line.split():
                        if field.startswith(b"heap_min="):
                            value = int(field[len(b"heap_min=") :])
                            lowest = value if lowest is None else min(lowest, value)
        except (OSError, ValueError):
            return lowest
        return lowest

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node's process by its PID (SIGTERM, then SIGKILL) and its supervisor."""
        with self._lock:
            self._stopping.set()
            ref = self._ref
        if ref is not None:
            ref.stop(timeout)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._ref is not None and self._ref.alive() and not self._stopping.is_set()

    def signal(self, sig: int) -> bool:
        ref = self._ref
        return ref is not None and ref.signal(sig)


def stop_all(nodes: list[NodeProcess], timeout: float = 10.0) -> None:
    """Stop every node by its PID: all are told first, then each is waited for."""
    for node in nodes:
        node.request_stop()
    for node in nodes:
        node.stop(timeout)
