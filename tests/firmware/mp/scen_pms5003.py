"""PMS5003 scenarios: the real driver against the fake UART and device model."""

from drivers import pms5003
from drivers.runhours import RunHours
from fakes import FakeClock, FakeUart, describe_error, heap_locked, run_sync
from pms5003_device import PMS5003Device, ack_frame, data_frame


def parse(args):
    out = []
    for h in args["data"]:
        try:
            f = pms5003.parse_data(bytes.fromhex(h))
            out.append(
                {
                    "ok": {
                        "cf1": [f.pm1_cf1, f.pm2_5_cf1, f.pm10_cf1],
                        "atm": [f.pm1_atm, f.pm2_5_atm, f.pm10_atm],
                        "counts": list(f.counts),
                        "version": f.version,
                        "error": f.error,
                    }
                }
            )
        except Exception as exc:  # the test compares the error class
            out.append({"error": describe_error(exc)})
    acks = []
    for h in args.get("acks", []):
        try:
            a = pms5003.parse_ack(bytes.fromhex(h))
            acks.append({"ok": [a.command, a.data]})
        except Exception as exc:
            acks.append({"error": describe_error(exc)})
    return {"data": out, "acks": acks}


def commands(args):
    errors = {}
    for name, call in (
        ("mode_2", lambda: pms5003.mode_command(2)),
        ("data_256", lambda: pms5003.build_command(0xE1, 256)),
    ):
        try:
            call()
            errors[name] = None
        except ValueError as exc:
            errors[name] = str(exc)
    return {
        "passive": pms5003.mode_command(pms5003.MODE_PASSIVE).hex(),
        "active": pms5003.mode_command(pms5003.MODE_ACTIVE).hex(),
        "read": pms5003.read_command().hex(),
        "sleep": pms5003.sleep_command().hex(),
        "wake": pms5003.wake_command().hex(),
        "errors": errors,
    }


def encode(args):
    """The device model's frames, for streams built on the pytest side."""
    return {
        "data": [data_frame(w).hex() for w in args.get("data", [])],
        "acks": [ack_frame(c, d).hex() for c, d in args.get("acks", [])],
    }


def sync_streams(args):
    """Each hex stream through a fresh synchroniser, in reads of ``chunk`` bytes."""
    chunk = args.get("chunk", 0)
    return [run_sync(pms5003.PMS5003Sync(), h, chunk) for h in args["streams"]]


def session(args):
    clock = FakeClock()
    device = PMS5003Device(args.get("device", {}))
    uart = FakeUart(clock, device, chunk=args.get("chunk", 0))
    sensor = pms5003.PMS5003(uart, clock, hours=RunHours(clock))
    t0 = clock.now
    results = []
    for step in args["steps"]:
        name, arg = (step, None) if isinstance(step, str) else step
        try:
            if name == "measure":
                r = sensor.measure(*arg) if arg else sensor.measure()
                value = {
                    "cf1": [r.pm1, r.pm2_5, r.pm10],
                    "atm": [r.pm1_atm, r.pm2_5_atm, r.pm10_atm],
                    "samples": r.samples,
                    "missed": r.missed,
                    "asleep": r.asleep,
                }
            elif name in ("read", "next_frame"):
                fresh = getattr(sensor, name)()
                value = [fresh, [pms5003.word(sensor.frame, i) for i in range(13)]]
            elif name == "pass_ms":
                clock.sleep_ms(arg)
                value = None
            else:
                value = getattr(sensor, name)()
            results.append({"step": name, "ok": value})
        except Exception as exc:  # the test compares the error class
            results.append({"step": name, "error": describe_error(exc)})
    sync = sensor.sync
    return {
        "results": results,
        "elapsed_ms": clock.now - t0,
        "commands": device.commands,
        "asleep": device.asleep,
        "mode": device.mode,
        "frames": sync.frames,
        "garbage": sync.garbage,
        "bad_checksum": sync.bad_checksum,
        "bad_format": sync.bad_format,
        "stray": sensor.stray,
        "hours_s": sensor.hours.seconds(),
        "running": sensor.hours.running,
    }


def no_alloc(args):
    """read() with the heap locked, one scripted answer per request."""
    clock = FakeClock()
    rounds = args.get("rounds", 50)
    answer = b"\x42\x00" + data_frame([7, 11, 13])
    uart = FakeUart(clock, release=len(answer))
    sensor = pms5003.PMS5003(uart, clock)
    for _ in range(rounds):
        uart.feed(answer)
    failure = heap_locked(sensor.read, rounds)
    return {
        "failure": failure,
        "frames": sensor.sync.frames,
        "garbage": sensor.sync.garbage,
        "pm2_5_cf1": pms5003.word(sensor.frame, pms5003.PM2_5_CF1),
    }
