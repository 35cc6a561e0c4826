"""``commons node simulate``: air nodes as real ``micropython`` processes running the firmware.

- ``mpy/``: the MicroPython modules that emulate the ESP32 on the unix port (``machine``,
  ``network``, ``ntptime``, and ``time``/``select`` on the node's own, possibly accelerated,
  clock), first on ``MICROPYPATH``;
- ``devices/``: byte-level models of the SDS011, PMS5003 and BME280 (shared with the driver
  tests in tests/firmware);
- ``physics``: the air each node sits in, written to the node's folder as a timeline;
- ``nodefolder``: a node's flash (``config.json``, ``sim.json``, the timeline);
- ``supervisor``: the processes, restarted on a watchdog reset;
- ``monitor`` and ``run``: what the nodes published, and the command itself.
"""
