"""Scenarios for the noise meter's parts: the kernel's heap use, sources, slot check, design."""

import math
from array import array

from fakes import heap_locked
from noise import kernel, weighting
from noise.meter import ConfigError, NoiseConfig, NoiseMeter
from noise.source import slot_spans
from noise.streams import StreamSource, check_slots


def _words(samples):
    """24-bit samples as INMP441 words (sample << 8) in a bytearray."""
    buf = bytearray(4 * len(samples))
    for i, s in enumerate(samples):
        w = (s << 8) & 0xFFFFFFFF
        buf[4 * i] = w & 0xFF
        buf[4 * i + 1] = (w >> 8) & 0xFF
        buf[4 * i + 2] = (w >> 16) & 0xFF
        buf[4 * i + 3] = (w >> 24) & 0xFF
    return buf


def kernel_heap(args):
    """The per-sample kernel allocates nothing: run it with the heap locked."""
    meter = NoiseMeter(NoiseConfig(rate=48000, block=1024))
    n = 1024
    buf = _words([int(400000 * math.sin(2 * math.pi * 1000 * i / 48000)) for i in range(n)])
    meter.feed(buf, n)
    st, out = meter._st, meter._out
    failure = heap_locked(lambda: kernel.run(buf, n, st, out), 20)
    # The whole meter too, discard phase and measuring, short of a period's end.
    meter = NoiseMeter(NoiseConfig(rate=48000, block=1024))
    feed_failure = heap_locked(lambda: meter.feed(buf, n), 200)  # 4.3 s of sound
    return {"failure": failure, "feed_failure": feed_failure, "subblocks": meter.subblocks}


def full_scale(args):
    """Full-scale square waves: the kernel's results match on 32-bit words (no overflow)."""
    meter = NoiseMeter(NoiseConfig(rate=48000, block=1024))
    n = 1024
    top = (1 << 23) - 1
    buf = _words([top if (i // 24) % 2 else -top - 1 for i in range(n)])
    k = kernel.run(buf, n, meter._st, meter._out)
    states = [meter._st[i] for i in range(kernel.ST_LEN)]
    out = [meter._out[i] for i in range(4 * k)]
    return {"k": k, "states": states, "out": out}


class _Chunky:
    """A stream that returns at most ``step`` bytes per read (like a pipe)."""

    def __init__(self, data, step):
        self.data = data
        self.pos = 0
        self.step = step

    def readinto(self, buf):
        n = min(len(buf), self.step, len(self.data) - self.pos)
        buf[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def stream_source(args):
    data = bytes(range(256)) * 4 + b"\x01\x02"  # 1026 bytes: two stray at the end
    src = StreamSource(_Chunky(data, 7))
    buf = bytearray(400)
    sizes = []
    while not src.ended:
        sizes.append(src.readinto(buf))
    return {"sizes": sizes}


class _FakeI2S:
    def __init__(self, data):
        self.data = data

    def readinto(self, buf):
        n = min(len(buf), len(self.data))
        buf[:n] = self.data[:n]
        return n


def slots(args):
    out = {}
    for name, left_amp, right_amp in (("left", 5000, 0), ("right", 0, 5000), ("none", 3, 0)):
        samples = []
        for i in range(256):
            samples.append(int(left_amp * math.sin(i / 5)))
            samples.append(int(right_amp * math.sin(i / 5)))
        buf = _words(samples)
        out[name] = list(check_slots(_FakeI2S(buf), bytearray(len(buf))))
        out[name + "_spans"] = list(slot_spans(buf, len(buf)))
    return out


def design(args):
    """The design's response (dB re 1 kHz) at the given frequencies, for each rate."""
    return {
        str(rate): [weighting.response_db(rate, f) for f in args["freqs"]]
        for rate in weighting.SUPPORTED_RATES
    }


def config_errors(args):
    out = []
    for kw in args["cases"]:
        try:
            NoiseConfig(**kw)
            out.append(None)
        except ConfigError as exc:
            out.append(["config", exc.key, str(exc)])
        except weighting.UnsupportedRate as exc:
            out.append(["rate", exc.rate, str(exc)])
    return out


class _ToneI2S:
    """An endless 1 kHz tone of ``peak`` counts at 48 kHz, as INMP441 words."""

    def __init__(self, peak):
        self.words = _words([int(peak * math.sin(2 * math.pi * i / 48)) for i in range(480)])

    def readinto(self, buf):
        n = min(len(buf), len(self.words))
        buf[:n] = self.words[:n]
        return n


def record(args):
    from noise.record import record_from

    frames = record_from(_ToneI2S(args["peak"]), args["path"], args["seconds"], 48000)
    return {"frames": frames}


def node_task(args):
    """The noise task on a fake async I2S stream, messages written by the node's Writer."""
    import sys

    if ".frozen" not in sys.path:
        sys.path.append(".frozen")  # the unix port's frozen asyncio
    import asyncio

    import payload
    from noise.task import NoiseSampler, noise_message

    tone = _ToneI2S(args["peak"])
    blocks = args["blocks"]
    done = asyncio.Event()

    class Stream:
        def __init__(self):
            self.left = blocks

        async def readinto(self, buf):
            if not self.left:
                done.set()
                await asyncio.sleep(3600)
            self.left -= 1
            await asyncio.sleep_ms(0)
            return tone.readinto(buf)

    writer = payload.Writer()
    messages = []

    def sink(reading):
        seq = len(messages) + 1
        messages.append(bytes(noise_message(writer, reading, args.get("ts"), seq, "0.1.0")))

    meter = NoiseMeter(NoiseConfig(rate=48000, period_s=args["period_s"], block=480))
    sampler = NoiseSampler(meter, Stream(), sink)

    async def main():
        task = asyncio.create_task(sampler.run())
        await done.wait()
        task.cancel()

    asyncio.run(main())
    return {"messages": [m.decode() for m in messages], "blocks": sampler.blocks}


def fast_stage(args):
    """``noise.fast.run`` over given sub-block sums: the state at each period's end and after."""
    from noise import fast

    meter = NoiseMeter(NoiseConfig(rate=48000, period_s=args["period_s"], block=1024))
    fs, hist = meter._fs, meter._hist
    initial = list(fs)
    subs = args["subs"]
    out = array("i", [v for sub in subs for v in sub])
    fs[fast.F_J] = 0
    snapshots = []

    def snapshot():
        counts = {str(i): hist[i] for i in range(len(hist)) if hist[i]}
        snapshots.append({"fs": list(fs)[: fast.F_LOG], "hist": counts})

    while fast.run_stage(out, len(subs), fs, hist) and fs[fast.F_DONE]:
        snapshot()
        meter._reset()
    snapshot()
    return {"initial": initial, "snapshots": snapshots}


def config_sections(args):
    out = []
    for section in args["sections"]:
        try:
            c = NoiseConfig.from_section(section)
            out.append([c.rate, c.period_s, c.sensitivity_dbfs, c.offset_db, c.sck, c.ws, c.sd])
        except ConfigError as exc:
            out.append(["error", exc.key, str(exc)])
    return out


def memory(args):
    import gc
    import sys

    for name in list(sys.modules):
        if name.startswith("noise"):
            del sys.modules[name]
    gc.collect()
    before = gc.mem_free()
    from noise import source, task  # noqa: F401
    from noise.meter import NoiseConfig as Config
    from noise.meter import NoiseMeter as Meter

    gc.collect()
    imported = gc.mem_free()
    meter = Meter(Config())
    buf = bytearray(4 * meter.config.block)
    gc.collect()
    return {"import": before - imported, "instance": imported - gc.mem_free(), "n": len(buf)}


def slot_source(args):
    """SlotSource keeps one slot of a stereo stream, as mono words."""
    from noise.streams import SlotSource

    left = [i * 1000 for i in range(64)]
    right = [-(i * 7) for i in range(64)]
    stereo = _words([v for i in range(64) for v in (left[i], right[i])])
    out = {}
    for slot in (0, 1):
        src = SlotSource(_FakeI2S(stereo), slot, 64)
        buf = bytearray(4 * 64)
        n = src.readinto(buf)
        words = [
            ((buf[4 * i + 1] | (buf[4 * i + 2] << 8) | (buf[4 * i + 3] << 16)) ^ 0x800000)
            - 0x800000
            for i in range(n >> 2)
        ]
        out[str(slot)] = words
    return out
