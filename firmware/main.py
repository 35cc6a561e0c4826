"""Boot entry point: MicroPython runs this after boot.py.

A bad ``config.json`` prints ``CONFIG ERROR: config.json: <key>: <reason>``
on the console and stops (the REPL stays usable for fixing it; under the unix
port the process exits with status 2). Any other crash is printed and the
node resets after a short pause, as the watchdog would.

The modules are loaded one at a time with a collection after each: loading
leaves short-lived buffers between the long-lived code objects, and without
the collections the heap ends up in small pieces (measured under the unix
port: the largest free block 600 bytes instead of 5 KB).
"""

import gc
import sys
import time

_PRELOAD = (
    "asyncio",
    "asyncio.event",
    "asyncio.funcs",
    "asyncio.stream",
    "machine",
    "network",
    "ntptime",
    "payload",
    "mqtt",
    "clock",
    "ringbuf",
    "uplink",
    "node",
)
for _name in _PRELOAD:
    __import__(_name)
    gc.collect()

import asyncio  # noqa: E402

import machine  # noqa: E402
import node  # noqa: E402

# asyncio resolves these names lazily; resolve them now, while the heap is tidy.
_LAZY = (asyncio.Event, asyncio.gather, asyncio.open_connection, asyncio.wait_for_ms)
_CRASH_PAUSE_S = 10

try:
    if not node.run() and sys.platform == "linux":
        sys.exit(2)
except Exception as exc:  # the last line of defence: report, then reset
    print("CRASH:", repr(exc))
    sys.print_exception(exc)
    time.sleep(_CRASH_PAUSE_S)
    machine.reset()
