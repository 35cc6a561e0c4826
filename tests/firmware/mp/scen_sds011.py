"""SDS011 scenarios: the real driver against the fake UART and device model."""

from drivers import sds011
from drivers.runhours import RunHours
from fakes import FakeClock, FakeUart, describe_error, heap_locked, run_sync
from sds011_device import SDS011Device, data_frame


def _frame_result(fn, hexframe):
    try:
        return {"ok": fn(bytes.fromhex(hexframe))}
    except Exception as exc:
        return {"error": describe_error(exc)}


def parse(args):
    """Parse data and reply frames given as hex; frames or errors as data."""

    def data(buf):
        f = sds011.parse_data(buf)
        return [f.pm2_5, f.pm10, f.device_id]

    def reply(buf):
        r = sds011.parse_reply(buf)
        return [r.command, r.d1, r.d2, r.d3, r.device_id]

    return {
        "data": [_frame_result(data, h) for h in args.get("data", [])],
        "reply": [_frame_result(reply, h) for h in args.get("reply", [])],
    }


def commands(args):
    """The command builders' bytes, and their ValueErrors for bad arguments."""
    out = {
        "active": sds011.report_mode_command(sds011.MODE_ACTIVE).hex(),
        "query_mode": sds011.report_mode_command(sds011.MODE_QUERY).hex(),
        "get_mode": sds011.get_report_mode_command().hex(),
        "query": sds011.query_command().hex(),
        "sleep": sds011.sleep_command().hex(),
        "work": sds011.work_command().hex(),
        "period_0": sds011.working_period_command(0).hex(),
        "period_1": sds011.working_period_command(1).hex(),
        "period_30": sds011.working_period_command(30).hex(),
        "firmware": sds011.firmware_version_command().hex(),
        "set_id": sds011.set_device_id_command(0xA160).hex(),
        "query_device": sds011.query_command(0xA160).hex(),
    }
    errors = {}
    for name, call in (
        ("period_31", lambda: sds011.working_period_command(31)),
        ("period_neg", lambda: sds011.working_period_command(-1)),
        ("mode_2", lambda: sds011.report_mode_command(2)),
        ("device_big", lambda: sds011.query_command(0x10000)),
        ("data_13", lambda: sds011.build_command(0x04, bytes(13))),
    ):
        try:
            call()
            errors[name] = None
        except ValueError as exc:
            errors[name] = str(exc)
    out["errors"] = errors
    return out


def sync_streams(args):
    """Each hex stream through a fresh synchroniser, in reads of ``chunk`` bytes."""
    chunk = args.get("chunk", 0)
    return [run_sync(sds011.SDS011Sync(), h, chunk) for h in args["streams"]]


def _make(args, chunk=0):
    clock = FakeClock()
    device = SDS011Device(args.get("device", {}))
    uart = FakeUart(clock, device, chunk=args.get("chunk", chunk))
    hours = RunHours(clock, args.get("hours_s", 0))
    sensor = sds011.SDS011(uart, clock, hours=hours)
    return clock, device, uart, sensor


def _state(clock, device, uart, sensor, t0):
    sync = sensor.sync
    return {
        "elapsed_ms": clock.now - t0,
        "commands": device.commands,
        "asleep": device.asleep,
        "mode": device.mode,
        "period": device.period,
        "frames": sync.frames,
        "garbage": sync.garbage,
        "bad_checksum": sync.bad_checksum,
        "bad_format": sync.bad_format,
        "stray": sensor.stray,
        "hours_ms": sensor.hours.seconds() * 1000,
        "hours": sensor.hours.hours(),
        "running": sensor.hours.running,
        "written": uart.written().hex(),
    }


def session(args):
    """Run ``steps`` (method names, or [name, arg]) on one sensor; results or errors."""
    clock, device, uart, sensor = _make(args)
    t0 = clock.now
    results = []
    for step in args["steps"]:
        name, arg = (step, None) if isinstance(step, str) else step
        try:
            if name == "measure":
                r = sensor.measure(*arg) if arg else sensor.measure()
                value = {
                    "pm2_5": r.pm2_5,
                    "pm10": r.pm10,
                    "samples": r.samples,
                    "missed": r.missed,
                    "asleep": r.asleep,
                }
            elif name == "cycle_waits":
                value = list(sensor.cycle(*arg))
                value = [value, sensor.last.pm2_5 if sensor.last else None]
            elif name == "query":
                value = [sensor.query(), sensor.pm2_5_tenths, sensor.pm10_tenths]
            elif name == "read":
                value = [sensor.read(), sensor.pm2_5_tenths, sensor.pm10_tenths]
            elif name == "pass_ms":
                clock.sleep_ms(arg)
                value = None
            elif arg is None:
                value = getattr(sensor, name)()
            else:
                value = getattr(sensor, name)(arg)
            if isinstance(value, tuple):
                value = list(value)
            results.append({"step": name, "ok": value})
        except Exception as exc:
            results.append({"step": name, "error": describe_error(exc)})
    out = _state(clock, device, uart, sensor, t0)
    out["results"] = results
    return out


def no_alloc(args):
    """read() and query() with the heap locked: None where nothing was allocated."""
    clock = FakeClock()
    rounds = args.get("rounds", 50)
    answer = b"\x00\xaa\x13" + data_frame(250, 400)  # garbage, a false start, a frame

    active = FakeUart(clock)  # active mode: frames stream in
    reader = sds011.SDS011(active, clock)
    for _ in range(rounds):
        active.feed(answer)
    read_failure = heap_locked(reader.read, rounds)

    scripted = FakeUart(clock, release=len(answer))  # query mode: one answer per query
    querier = sds011.SDS011(scripted, clock)
    for _ in range(rounds):
        scripted.feed(answer)
    query_failure = heap_locked(querier.query, rounds)
    return {
        "read_failure": read_failure,
        "query_failure": query_failure,
        "read_frames": reader.sync.frames,
        "read_garbage": reader.sync.garbage,
        "query_frames": querier.sync.frames,
        "queries_written": scripted.writes,
        "pm2_5_tenths": querier.pm2_5_tenths,
        "pm10_tenths": querier.pm10_tenths,
    }
