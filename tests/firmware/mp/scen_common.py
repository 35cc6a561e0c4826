"""Scenarios for the shared helpers: TrimmedMean and RunHours."""

from drivers.runhours import RunHours
from drivers.trimmed import TrimmedMean
from fakes import TICKS_PERIOD, FakeClock, heap_locked


def trimmed(args):
    out = []
    for samples in args["lists"]:
        acc = TrimmedMean()
        for v in samples:
            acc.add(v)
        out.append([acc.mean(), acc.count, acc.low, acc.high])
    acc = TrimmedMean()
    failure = heap_locked(lambda: acc.add(7), 100)
    out.append(failure)
    return out


def run_hours(args):
    """Start/stop spans (ms) from a clock ``start_ms``; running totals, across tick wrap."""
    clock = FakeClock(args.get("start_ms", TICKS_PERIOD - 1000))
    hours = RunHours(clock, args.get("total_s", 0))
    out = []
    for on_ms, off_ms in args["spans"]:
        hours.start()
        hours.start()  # starting twice changes nothing
        step = args.get("update_every_ms", 0) or on_ms
        left = on_ms
        while left > 0:
            clock.sleep_ms(min(step, left))
            left -= step
            hours.update()
        hours.stop()
        clock.sleep_ms(off_ms)
        out.append([hours.seconds(), hours.hours(), hours.running])
    return out
