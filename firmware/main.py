"""Boot entry point: MicroPython runs this after boot.py.

A bad ``config.json`` prints ``CONFIG ERROR: config.json: <key>: <reason>``
on the console and stops (the REPL stays usable for fixing it; under the unix
port the process exits with status 2). Any other crash is printed and the
node resets after a short pause, as the watchdog would.
"""

import sys
import time

import machine
import node

_CRASH_PAUSE_S = 10

try:
    if not node.run() and sys.platform == "linux":
        sys.exit(2)
except Exception as exc:  # the last line of defence: report, then reset
    print("CRASH:", repr(exc))
    sys.print_exception(exc)
    time.sleep(_CRASH_PAUSE_S)
    machine.reset()
