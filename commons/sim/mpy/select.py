"""``select`` on the simulated node: poll timeouts are in the node's time (sim_clock).

asyncio waits for sockets and timers with ``poll.ipoll(ms)``; an accelerated node
must wait the real time that corresponds to ``ms`` of its own.
"""

import sys

_path = sys.path
sys.path = ()
try:
    import select as _select
finally:
    sys.path = _path
del _path

import sim_clock

POLLIN = _select.POLLIN
POLLOUT = _select.POLLOUT
POLLERR = _select.POLLERR
POLLHUP = _select.POLLHUP


class _Poll:
    def __init__(self):
        self._poll = _select.poll()

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        return self._poll.register(obj, eventmask)

    def unregister(self, obj):
        return self._poll.unregister(obj)

    def modify(self, obj, eventmask):
        return self._poll.modify(obj, eventmask)

    def poll(self, timeout=-1):
        result = self._poll.poll(sim_clock.real_timeout_ms(timeout))
        sim_clock.check_wdt()
        return result

    def ipoll(self, timeout=-1, flags=0):
        result = self._poll.ipoll(sim_clock.real_timeout_ms(timeout), flags)
        sim_clock.check_wdt()
        return result


def poll():
    return _Poll()
