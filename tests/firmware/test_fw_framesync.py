"""Frame synchronisers on random noisy streams, and the shared sampling helpers."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from mprunner import MicroPython

STREAMS = 120


def _bytes(rng: random.Random, n: int, avoid: set[int]) -> bytes:
    return bytes(rng.choice([b for b in range(256) if b not in avoid]) for _ in range(n))


def _sds_frame(rng: random.Random, corrupt: bool) -> bytes:
    body = _bytes(rng, 6, {0xAA, 0xAB})
    cs = sum(body) & 0xFF
    return b"\xaa\xc0" + body + bytes([(cs + 1) & 0xFF if corrupt else cs, 0xAB])


def _pms_frame(rng: random.Random, kind: str) -> bytes:
    if kind == "ack":
        body = b"\x42\x4d\x00\x04" + bytes([rng.choice([0xE1, 0xE4]), rng.choice([0, 1])])
    else:
        body = b"\x42\x4d\x00\x1c" + _bytes(rng, 26, {0x42, 0x4D})
    cs = sum(body) & 0xFFFF
    if kind == "corrupt":
        cs = (cs + 1) & 0xFFFF
    return body + cs.to_bytes(2, "big")


def _stream(
    rng: random.Random, make: Callable[[str], bytes], header: int, false_second: set[int]
) -> tuple[bytes, list[bytes], int, int]:
    # Items: good frames (and acks), corrupted frames, frames cut short, garbage
    # runs and false starts; garbage never contains the header byte. Ends on a
    # good frame. Returns the stream, the frames to find, corrupted, cut.
    out, frames, corrupted, cut = b"", [], 0, 0
    for _ in range(rng.randint(1, 12)):
        kind = rng.choice(["good", "good", "ack", "corrupt", "cut", "garbage", "false"])
        if kind in ("good", "ack"):
            frame = make(kind)
            frames.append(frame)
            out += frame
        elif kind == "corrupt":
            corrupted += 1
            out += make("corrupt")
        elif kind == "cut":
            cut += 1
            frame = make("good")
            out += frame[: rng.randint(2, len(frame) - 2)]
        elif kind == "garbage":
            out += _bytes(rng, rng.randint(1, 40), {header, 0xAB})
        else:
            out += bytes([header]) + _bytes(rng, 1, false_second | {header, 0xAB})
    last = make("good")
    return out + last, [*frames, last], corrupted, cut


def _check(results: list[dict], cases: list[tuple[bytes, list[bytes], int, int]]) -> None:
    for result, (stream, frames, corrupted, cut) in zip(results, cases, strict=True):
        assert result["frames"] == [f.hex() for f in frames]
        assert result["counted"] == len(frames)
        assert result["bad_checksum"] + result["bad_format"] == corrupted + cut
        assert result["pending"] == 0
        # Every byte is in a delivered frame or counted as garbage.
        assert sum(len(f) for f in frames) + result["garbage"] == len(stream)


@pytest.mark.parametrize("chunk", [0, 1, 9])
def test_sds011_synchroniser_on_random_streams(mp: MicroPython, chunk: int) -> None:
    rng = random.Random(1011 + chunk)

    def make(kind: str) -> bytes:
        return _sds_frame(rng, kind == "corrupt")

    cases = [_stream(rng, make, 0xAA, {0xC0, 0xC5}) for _ in range(STREAMS)]
    streams = [c[0].hex() for c in cases]
    _check(mp.run("scen_sds011", "sync_streams", {"streams": streams, "chunk": chunk}), cases)


@pytest.mark.parametrize("chunk", [0, 1, 9])
def test_pms5003_synchroniser_on_random_streams(mp: MicroPython, chunk: int) -> None:
    rng = random.Random(5003 + chunk)

    def make(kind: str) -> bytes:
        return _pms_frame(rng, kind)

    cases = [_stream(rng, make, 0x42, {0x4D}) for _ in range(STREAMS)]
    streams = [c[0].hex() for c in cases]
    _check(mp.run("scen_pms5003", "sync_streams", {"streams": streams, "chunk": chunk}), cases)


def test_trimmed_mean(mp: MicroPython) -> None:
    lists = [[], [5], [4, 6], [1, 2, 3], [10, 1, 1, 10], [7, 3, 9, 5, 2], [-5, 0, 5]]
    *results, locked = mp.run("scen_common", "trimmed", {"lists": lists})
    assert results == [
        [None, 0, 0, 0],
        [5.0, 1, 5, 5],
        [5.0, 2, 4, 6],
        [2.0, 3, 1, 3],
        [5.5, 4, 1, 10],
        [5.0, 5, 2, 9],
        [0.0, 3, -5, 5],
    ]
    assert locked is None  # adding a sample allocates nothing


def test_run_hours_across_the_tick_wrap(mp: MicroPython) -> None:
    spans = [[20_000, 60_000], [3_600_000, 1_000], [500, 0]]
    result = mp.run("scen_common", "run_hours", {"spans": spans, "total_s": 7200})
    assert [r[0] for r in result] == [7220, 10820, 10820]
    assert result[1][1] == pytest.approx(3 + 20 / 3600)
    assert not any(r[2] for r in result)


def test_run_hours_continuous_running_with_updates(mp: MicroPython) -> None:
    # 20 days on: longer than the tick period (12.4 days), folded in every hour.
    day = 86_400_000
    args = {"spans": [[20 * day, 0]], "update_every_ms": 3_600_000}
    ((seconds, hours, running),) = mp.run("scen_common", "run_hours", args)
    assert (seconds, hours, running) == (20 * 86400, 480.0, False)
