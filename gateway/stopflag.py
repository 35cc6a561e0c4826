"""A stop request that a signal handler may set.

A Python signal handler runs in the main thread between two bytecodes of whatever that
thread was doing. If the handler takes a lock the interrupted code already holds, the
process hangs: ``threading.Event.set`` takes the lock of a ``Condition`` that
``Event.wait`` holds for a moment, and logging takes the handler's lock and writes to a
buffered stream that refuses a reentrant write. ``StopFlag.set`` therefore only assigns a
plain attribute, and waiting polls it in short steps.
"""

from __future__ import annotations

import time

# Longest a wait lasts before the flag is looked at again.
STOP_POLL_S = 0.05


class StopFlag:
    """Set once (by code or by a signal), never cleared; ``signum`` names the signal."""

    def __init__(self) -> None:
        self._set = False
        self.signum: int | None = None

    def set(self) -> None:
        self._set = True

    def on_signal(self, signum: int, frame: object) -> None:
        """A signal handler: assignments only, safe at any moment."""
        self.signum = signum
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False when ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            left = STOP_POLL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, STOP_POLL_S))
        return True
