"""Scenarios for the node's pure parts: configuration, payloads, the flash ring buffer."""

import os

import config
import payload
from ringbuf import RingBuffer

MAC = b"\xa1\xb2\xc3\xd4\xe5\xf6"


def config_errors(args):
    """Each raw config -> [key, message] of its ConfigError, or ["ok", settings...]."""
    out = []
    for raw in args["configs"]:
        try:
            c = config.parse(raw, MAC)
        except config.ConfigError as exc:
            out.append([exc.key, str(exc)])
            continue
        out.append(
            [
                "ok",
                {
                    "node_id": c.node_id,
                    "broker": [c.broker_host, c.broker_port, c.broker_user, c.broker_password],
                    "pm": [c.pm_sensor, c.pm_uart, c.pm_tx, c.pm_rx, c.pm_warmup_s],
                    "bme": [c.bme_enabled, c.bme_scl, c.bme_sda, c.bme_address],
                    "intervals": [c.sample_s, c.status_s],
                    "ntp": [c.ntp_host, c.ntp_resync_s],
                    "buffer": [c.buffer_slots, c.buffer_folder],
                    "watchdog_s": c.watchdog_s,
                    "warmup_short": c.pm_warmup_short,
                },
            ]
        )
    return out


def config_kinds(args):
    """Each raw config -> [air, noise settings or None], or [key, message] of its ConfigError."""
    out = []
    for raw in args["configs"]:
        try:
            c = config.parse(raw, MAC)
        except config.ConfigError as exc:
            out.append([exc.key, str(exc)])
            continue
        n = c.noise
        noise = None
        if n is not None:
            noise = [n.rate, n.period_s, n.sensitivity_dbfs, n.offset_db, n.i2s, n.sck, n.ws, n.sd]
        out.append([c.pm_sensor != "none" or c.bme_enabled, noise])
    return out


def config_file(args):
    """config.load on a file written with ``text`` (or no file): the error or the node id."""
    path = args["path"]
    if args.get("text") is not None:
        with open(path, "w") as f:
            f.write(args["text"])
    try:
        return ["ok", config.load(MAC, path).node_id]
    except config.ConfigError as exc:
        return [exc.key, str(exc)]


def payloads(args):
    """Air messages for the readings given, a status and the will: [topic, text] each."""
    node_id = args.get("node_id", "esp32-a1b2c3")
    fw = args.get("fw", "0.1.0")
    w = payload.Writer()
    out = []
    r = payload.AirReading()
    for i, spec in enumerate(args["air"]):
        r.clear()
        for key in ("ts", "pm1", "pm2_5", "pm10", "temp", "rh", "pres"):
            if key in spec:
                setattr(r, key, spec[key])
        for name in spec.get("flags", []):
            r.flags |= getattr(payload, name.upper())
        msg = payload.air(w, r, spec.get("seq", i + 1), fw)
        out.append([payload.topic(node_id, "air"), bytes(msg).decode()])
    s = payload.Status()
    st = args["status"]
    s.uptime = st["uptime"]
    s.heap_free = st["heap_free"]
    s.rssi = st.get("rssi")
    s.buffered = st["buffered"]
    s.reset_cause = st["reset_cause"]
    s.pm_hours = st.get("pm_hours")
    msg = payload.status(w, s, st.get("ts"), fw)
    out.append([payload.topic(node_id, "status"), bytes(msg).decode()])
    out.append([payload.topic(node_id, "status"), payload.offline_will().decode()])
    return out


def _drain(ring, n, ack=True):
    got = []
    for _ in range(n):
        data = ring.peek()
        if data is None:
            break
        got.append(bytes(data).decode())
        if ack:
            ring.ack(ring.peeked)
    return got


def ring(args):
    """Run ``ops`` on a RingBuffer in ``folder``; one result per op.

    ops: ["add", text] -> seq; ["add", text, kind] -> seq (kind 0 air, 1 noise);
    ["kinds", n] -> [seq, kind, text] peeked and acked; ["take", n] -> texts peeked and acked;
    ["peek"] -> text or None (not acked); ["ack", seq] -> bool;
    ["stats"] -> [len, first, next, dropped, added, acked].
    """
    folder = args["folder"]
    rb = RingBuffer(folder, args["slots"])
    out = []
    for op in args["ops"]:
        kind = op[0]
        if kind == "add":
            out.append(rb.append(op[1].encode(), *op[2:]))
        elif kind == "kinds":
            got = []
            for _ in range(op[1]):
                data = rb.peek()
                if data is None:
                    break
                got.append([rb.peeked, rb.kind, bytes(data).decode()])
                rb.ack(rb.peeked)
            out.append(got)
        elif kind == "take":
            out.append(_drain(rb, op[1]))
        elif kind == "peek":
            data = rb.peek()
            out.append(None if data is None else [rb.peeked, bytes(data).decode()])
        elif kind == "ack":
            out.append(rb.ack(op[1]))
        elif kind == "stats":
            out.append([len(rb), rb.first, rb.next, rb.dropped, rb.added, rb.acked])
        elif kind == "files":
            out.append(sorted(os.listdir(folder)))
    rb.close()
    return out


def ring_too_large(args):
    rb = RingBuffer(args["folder"], 4)
    try:
        rb.append(b"x" * 300)
    except ValueError as exc:
        return [type(exc).__name__, str(exc), len(rb)]
    return None


def ring_bad_kind(args):
    rb = RingBuffer(args["folder"], 4)
    try:
        rb.append(b"x", 16)
    except ValueError as exc:
        return [type(exc).__name__, str(exc), len(rb)]
    return None


class _Ntp:
    host = "unset"
    fail = False
    calls = []  # noqa: RUF012 (a module stand-in: class attributes are its globals)

    @classmethod
    def settime(cls):
        cls.calls.append(cls.host)
        if cls.fail:
            raise OSError(110)


class _Time2000:
    """The ``time`` of a port whose epoch is 2000-01-01 (older ESP32 releases)."""

    def __init__(self, real):
        self._real = real

    def gmtime(self, secs):
        return (2000, 1, 1, 0, 0, 0, 5, 1)

    def time(self):
        return self._real.time() - 946_684_800

    def ticks_ms(self):
        return self._real.ticks_ms()

    def ticks_diff(self, a, b):
        return self._real.ticks_diff(a, b)


def clock(args):
    """Epoch offsets on a 1970 and a 2000 port; now() before and after NTP; the NTP host."""
    import sys
    import time

    sys.modules["ntptime"] = _Ntp
    import clock as clock_module

    out = {"offset_1970": clock_module.epoch_offset()}
    c = clock_module.Clock("192.168.4.1", 86400)
    _Ntp.fail = True
    out["before"] = [c.now(), c.due(), c.sync(), c.now(), c.failures]
    _Ntp.fail = False
    out["after"] = [c.sync(), c.now(), int(time.time()), c.due(), c.synced]
    clock_module.time = _Time2000(time)
    out["offset_2000"] = clock_module.epoch_offset()
    c2000 = clock_module.Clock("pool.ntp.org", 86400)
    c2000.sync()
    out["now_2000"] = c2000.now()
    out["hosts"] = _Ntp.calls
    clock_module.time = time
    return out


def watchdog(args):
    """Node.healthy and the supervisor: the watchdog is fed only while both tasks beat."""
    import sys

    sys.path.insert(0, args["hw"])
    sys.path.append(".frozen")  # asyncio
    os.chdir(args["folder"])
    import asyncio
    import time

    import node

    n = node.start()
    out = {"fresh": n.healthy()}
    now = time.ticks_ms()
    n.sampler.heartbeat = time.ticks_add(now, -(2 * n.cfg.sample_s * 1000 + 31_000))
    out["sampler_stale"] = n.healthy()
    n.sampler.heartbeat = now
    n.uplink.heartbeat = time.ticks_add(now, -(n.cfg.keepalive_s * 1000 + 31_000))
    out["uplink_stale"] = n.healthy()

    async def supervised():
        task = asyncio.create_task(n.supervise())
        await asyncio.sleep_ms(2500)
        stale = n.feeds
        n.sampler.heartbeat = n.uplink.heartbeat = time.ticks_ms()
        await asyncio.sleep_ms(2500)
        task.cancel()
        return [stale, n.feeds, n.wdt.timeout]

    out["feeds"] = asyncio.run(supervised())
    return out


def watchdog_noise(args):
    """A noise-only node: healthy() follows the noise task's heartbeat, no air sampler."""
    import sys

    sys.path.insert(0, args["hw"])
    sys.path.append(".frozen")  # asyncio
    os.chdir(args["folder"])
    import time

    import node

    n = node.start()
    out = {"sampler": n.sampler is None, "fresh": n.healthy()}
    now = time.ticks_ms()
    n.noise.heartbeat = time.ticks_add(now, -31_000)
    out["noise_stale"] = n.healthy()
    n.noise.heartbeat = now
    out["again"] = n.healthy()
    out["block"] = len(n.noise.buf) // 4
    return out
