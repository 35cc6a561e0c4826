"""Run-time accounting for a sensor's laser and fan: the status field ``pm_hours``."""

import time

from micropython import const

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from .hwtypes import Clock


class RunHours:
    """Adds up the time between ``start()`` and ``stop()`` on the millisecond tick clock.

    ``total_s`` seeds the count with what was persisted before a reboot; the
    caller saves ``seconds()`` now and then. Tick values wrap (about 12.4 days
    on the ESP32) and ``ticks_diff`` is only right for spans under half of
    that, so while the sensor runs continuously call ``update()`` at least
    daily (every sampling cycle does).
    """

    def __init__(self, clock: Clock = time, total_s: int = 0) -> None:
        self._clock = clock
        self._ms = total_s * 1000
        self._since = clock.ticks_ms()
        self.running = False

    def start(self) -> None:
        if not self.running:
            self._since = self._clock.ticks_ms()
            self.running = True

    def stop(self) -> None:
        self.update()
        self.running = False

    def update(self) -> None:
        """Fold the time run since the last call into the total."""
        if self.running:
            now = self._clock.ticks_ms()
            self._ms += self._clock.ticks_diff(now, self._since)
            self._since = now

    def seconds(self) -> int:
        """Whole seconds run in total (for persisting)."""
        self.update()
        return self._ms // 1000

    def hours(self) -> float:
        """Hours run in total (the status field ``pm_hours``)."""
        self.update()
        return self._ms / 3_600_000
