"""The meter over a stream of I2S words on standard input, one JSON line per period.

This is what ``commons noise analyze`` runs under the MicroPython unix port, so a recording
is measured by the same code as the microphone on the node:

    micropython -m noise.hostrun RATE PERIOD_S SENSITIVITY_DBFS OFFSET_DB < words

Each line holds the payload's noise fields, the reading's flags, and ``start`` (seconds
from the beginning of the stream). A last partial period is printed if it covers at least
a second. A bad setting prints ``ERROR <message>`` and exits with status 2.
"""

import json
import sys

from micropython import const

from noise.meter import NoiseConfig, NoiseMeter, NoiseReading
from noise.streams import StreamSource

TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from typing import Any


def emit(reading: NoiseReading) -> None:
    line: dict[str, Any] = {"start": reading.start_s}
    line.update(reading.fields())
    line["flags"] = reading.flags()
    print(json.dumps(line))


def run(argv: list[str]) -> int:
    try:
        config = NoiseConfig(int(argv[0]), int(argv[1]), float(argv[2]), float(argv[3]))
        meter = NoiseMeter(config)
    except (ValueError, IndexError) as exc:
        print("ERROR", exc)
        return 2
    source = StreamSource(sys.stdin.buffer)
    buf = bytearray(4 * config.block)
    while not source.ended:
        n = source.readinto(buf)
        if n:
            reading = meter.feed(buf, n >> 2)
            if reading is not None:
                emit(reading)
    reading = meter.flush()
    if reading is not None:
        emit(reading)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
