"""Wall-clock time for the payload's ``ts``: NTP at boot and daily, the port's epoch converted.

``ts`` is UTC seconds since 1970-01-01. ``time.time()`` counts from the port's
epoch, which is 2000-01-01 on older ESP32 releases and 1970-01-01 on newer
ones and on the unix port: ``time.gmtime(0)`` tells which, and the offset is
added explicitly. Before the first successful sync the clock is not trusted
and ``now()`` returns None: the reading goes without ``ts`` and the gateway
stamps it (flag ``clock_gateway``).
"""

import time

import ntptime
from micropython import const

# Seconds from 1970-01-01 to 2000-01-01.
_Y2K_UNIX = const(946_684_800)
# A clock before 2020-01-01 has not been set (the contract refuses such a ts).
_EARLIEST = const(1_577_836_800)


def epoch_offset() -> int:
    """Seconds to add to ``time.time()`` for Unix time: 0 or 946684800."""
    year = time.gmtime(0)[0]
    if year == 1970:
        return 0
    if year == 2000:
        return _Y2K_UNIX
    raise ValueError(f"unknown epoch year {year}")


class Clock:
    """NTP-synchronised wall clock; ``now()`` is Unix seconds or None before the first sync."""

    def __init__(self, host: str, resync_s: int) -> None:
        self._host = host
        self._resync_s = resync_s
        self._offset = epoch_offset()
        self.synced = False
        self.syncs = 0
        self.failures = 0
        self._last = 0

    def sync(self) -> bool:
        """One NTP request to the configured host; True when the clock was set."""
        ntptime.host = self._host
        try:
            ntptime.settime()
        except (OSError, OverflowError, IndexError) as exc:
            # OSError: no answer (ETIMEDOUT) or no route; IndexError: a short reply.
            self.failures += 1
            print("ntp: no time from", self._host, repr(exc))
            return False
        self.syncs += 1
        self._last = self.now_raw()
        if self._last < _EARLIEST:
            print("ntp: implausible time from", self._host)
            return False
        self.synced = True
        return True

    def due(self) -> bool:
        """True when a sync is due: never synced, or ``resync_s`` since the last one.

        Measured on the set clock itself, not on ticks: ``ticks_diff`` wraps after
        about six days on the ESP32, and NTP may fail for longer than that.
        """
        if not self.synced:
            return True
        return self.now_raw() - self._last >= self._resync_s

    def now_raw(self) -> int:
        return int(time.time()) + self._offset

    def now(self) -> int | None:
        """Unix seconds (UTC), or None while the clock has never been set."""
        if not self.synced:
            return None
        return self.now_raw()
