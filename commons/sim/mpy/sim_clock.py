"""The simulated node's clock: real (host) time mapped onto the node's own time.

``sim.json`` "clock": {"start": S, "real_start": R, "speed": K} says the node's
time was S (UTC seconds) at real time R and runs K times faster than real time
until it has caught up with real time, then at real speed:

    virtual(r) = min(r, S + K * (r - R))

so a node started with its clock hours in the past replays that history
quickly, with correct timestamps, and then goes on live. The mapping is a pure
function of real time, so it continues across the node's resets (process
restarts). Everything time-related in the emulation (``time``, ``select`` poll
timeouts, the sensors' 1 Hz frames, the watchdog) runs on this clock.

ticks_ms() counts from the unix port's own tick counter at boot and never falls behind
it (the node's clock runs at least at real speed): asyncio's C task queue stamps a task
woken "now" with the port's tick counter, so such a task is due at once, as it should be.
It therefore wraps with the unix port's period, not the ESP32's 2**30. Until
ntptime.settime() is called, time.time() counts from 2000-01-01, like an ESP32 whose RTC
was never set.
"""

import sys

_path = sys.path
sys.path = ()
try:
    import time as _rt  # the unix port's own time module
finally:
    sys.path = _path
del _path

import os

import sim_config

UNSET_EPOCH = 946684800  # 2000-01-01T00:00:00Z: an RTC that was never set
# Exit codes the host reads as resets (commons/sim/supervisor.py has the same values).
EXIT_WDT = 87
EXIT_RESET = 82
EXIT_DEEPSLEEP = 83
# Real CPU time is not accelerated: the watchdog bites only when at least this
# much real time has passed as well (or the whole timeout, if shorter).
WDT_REAL_FLOOR_S = 5.0


_boot_wall = _rt.time_ns() / 1e9
_boot_us = _rt.ticks_us()
_boot_ms = _rt.ticks_ms()


def real_now():
    """Host time (UTC seconds), advancing with the port's monotonic tick counter."""
    return _boot_wall + _rt.ticks_diff(_rt.ticks_us(), _boot_us) / 1e6


_cfg = sim_config.section("clock")
_r0 = _cfg.get("real_start")
if _r0 is None:
    _r0 = real_now()
_start = _cfg.get("start", _r0)
_speed = float(_cfg.get("speed", 1))
if _speed < 1.0:
    _speed = 1.0


def virtual(r):
    """The node's time (UTC seconds, float) at real time ``r``."""
    v = _start + _speed * (r - _r0)
    return r if v > r else v


def real_for(v):
    """The real time at which the node's time reaches ``v``."""
    lin = _r0 + (v - _start) / _speed
    return v if v > lin else lin


_boot_real = real_now()
_boot_v = virtual(_boot_real)
_synced = [False]
_wdt = [None, 0, 0.0]  # [deadline_ms, timeout_ms, fed at real time]


def now():
    """The node's true time (UTC seconds, float): what the sensors live in."""
    return virtual(real_now())


def now_ms():
    """Milliseconds since boot on the node's clock (not wrapped)."""
    return int((virtual(real_now()) - _boot_v) * 1000)


def wall():
    """What the node's RTC says (UTC seconds, float)."""
    v = virtual(real_now())
    if _synced[0]:
        return v
    return UNSET_EPOCH + (v - _boot_v)


def set_synced():
    _synced[0] = True


def synced():
    return _synced[0]


def speed():
    return _speed


ticks_diff = _rt.ticks_diff
ticks_add = _rt.ticks_add


def ticks_ms():
    check_wdt()
    return _rt.ticks_add(_boot_ms, now_ms())


def ticks_us():
    check_wdt()
    return _rt.ticks_add(_boot_us, int((virtual(real_now()) - _boot_v) * 1000000))


def _real_seconds_until(ms):
    v = _boot_v + ms / 1000
    return real_for(v) - real_now()


def sleep_until(ms):
    """Sleep (really) until the node's clock reads ``ms`` since boot.

    The watchdog bites meanwhile if it is due first.
    """
    while True:
        target = ms
        deadline = _wdt[0]
        if deadline is not None and deadline < target:
            target = deadline
        dt = _real_seconds_until(target)
        if dt > 0:
            _rt.sleep(dt)
        check_wdt()
        if target == ms:
            return


def real_sleep(seconds):
    """Sleep ``seconds`` of real time (emulated hardware pacing itself on the host's CPU)."""
    if seconds > 0:
        _rt.sleep(seconds)
    check_wdt()


def sleep_ms(ms):
    if ms > 0:
        sleep_until(now_ms() + ms)
    else:
        check_wdt()


def real_timeout_ms(ms):
    """A poll timeout in the node's ms as real ms (-1: forever, capped by the watchdog)."""
    deadline = _wdt[0]
    n = now_ms()
    if ms < 0:
        if deadline is None:
            return -1
        target = deadline
    else:
        target = n + ms
        if deadline is not None and deadline < target:
            target = deadline
    dt = _real_seconds_until(target)
    return 0 if dt <= 0 else int(dt * 1000) + 1


def wdt_arm(timeout_ms):
    _wdt[1] = timeout_ms
    wdt_feed()


def wdt_feed():
    if _wdt[1]:
        _wdt[0] = now_ms() + _wdt[1]
        _wdt[2] = real_now()


# The host that supervises this node (COMMONS_SIM_HOST_PID): when it is gone (killed without
# stopping its nodes), the node stops too instead of running on unsupervised.
_HOST_PID = os.getenv("COMMONS_SIM_HOST_PID")
_HOST_CHECK_S = 2.0
_host_checked = [0.0]


def _check_host():
    r = real_now()
    if _HOST_PID is None or r - _host_checked[0] < _HOST_CHECK_S:
        return
    _host_checked[0] = r
    try:
        os.stat("/proc/" + _HOST_PID)
    except OSError:
        print("sim: the host is gone: stopping")
        sys.exit(0)


def check_wdt():
    _check_host()
    deadline = _wdt[0]
    if deadline is None or now_ms() <= deadline:
        return
    floor = _wdt[1] / 1000
    if floor > WDT_REAL_FLOOR_S:
        floor = WDT_REAL_FLOOR_S
    if real_now() - _wdt[2] < floor:
        return
    print("sim: watchdog timeout (%d ms not fed): reset" % _wdt[1])
    sys.exit(EXIT_WDT)
