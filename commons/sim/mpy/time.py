"""``time`` on the simulated node: the unix port's module on the node's clock (sim_clock)."""

import sys

_path = sys.path
sys.path = ()
try:
    from time import gmtime as _gmtime
    from time import mktime
finally:
    sys.path = _path
del _path

import sim_clock
from sim_clock import sleep_ms, ticks_add, ticks_diff, ticks_ms, ticks_us

ticks_cpu = ticks_us


def time():
    return int(sim_clock.wall())


def time_ns():
    return int(sim_clock.wall() * 1000000000)


def gmtime(secs=None):
    return _gmtime(time() if secs is None else secs)


def localtime(secs=None):
    # The ESP32 port has no time zones: local time is UTC.
    return _gmtime(time() if secs is None else secs)


def sleep(seconds):
    sleep_ms(int(seconds * 1000))


def sleep_us(us):
    sleep_ms(us // 1000)


__all__ = [
    "gmtime",
    "localtime",
    "mktime",
    "sleep",
    "sleep_ms",
    "sleep_us",
    "ticks_add",
    "ticks_cpu",
    "ticks_diff",
    "ticks_ms",
    "ticks_us",
    "time",
    "time_ns",
]
