"""The PMS5003 driver under the MicroPython unix port, against byte-level fakes."""

from __future__ import annotations

from typing import Any

import pytest
from mprunner import MicroPython

# Frames recorded from real PMS5003 units, as published in public logs.
RECORDED = [
    (
        "424d001c0002000a000a0002000a000a024600af00310016000000009700" + "02ac",
        {
            "cf1": [2, 10, 10],
            "atm": [2, 10, 10],
            "counts": [582, 175, 49, 22, 0, 0],
            "version": 0x97,
            "error": 0,
        },
    ),
    (
        "424d001c0011001700190011001700190bdc0346006a0008000200009700" + "0368",
        {
            "cf1": [17, 23, 25],
            "atm": [17, 23, 25],
            "counts": [3036, 838, 106, 8, 2, 0],
            "version": 0x97,
            "error": 0,
        },
    ),
    (
        "424d001c0003000400070004000500080" + "31b00f9001b0006000300039a0002a2",
        {
            "cf1": [3, 4, 7],
            "atm": [4, 5, 8],
            "counts": [795, 249, 27, 6, 3, 3],
            "version": 0x9A,
            "error": 0,
        },
    ),
]
BAD_HEADER, BAD_LENGTH, BAD_CHECKSUM = 1, 2, 3


def _frame(words: list[int]) -> str:
    words = words + [0] * (13 - len(words))
    body = b"\x42\x4d\x00\x1c" + b"".join(w.to_bytes(2, "big") for w in words)
    return (body + (sum(body) & 0xFFFF).to_bytes(2, "big")).hex()


def _ack(command: int, data: int) -> str:
    body = bytes([0x42, 0x4D, 0x00, 0x04, command, data])
    return (body + (sum(body) & 0xFFFF).to_bytes(2, "big")).hex()


def _session(mp: MicroPython, steps: list[Any], **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = mp.run("scen_pms5003", "session", {"steps": steps, **kwargs})
    return result


def _step(result: dict[str, Any], name: str, index: int = 0) -> dict[str, Any]:
    return [r for r in result["results"] if r["step"] == name][index]  # type: ignore[no-any-return]


def test_parses_recorded_frames(mp: MicroPython) -> None:
    frames = [f for f, _ in RECORDED]
    result = mp.run("scen_pms5003", "parse", {"data": frames})
    assert [r["ok"] for r in result["data"]] == [expected for _, expected in RECORDED]


def test_parses_acknowledgements(mp: MicroPython) -> None:
    acks = ["424d0004e1000174", "424d0004e1010175", "424d0004e4000177"]
    result = mp.run("scen_pms5003", "parse", {"data": [], "acks": acks})
    assert [a["ok"] for a in result["acks"]] == [[0xE1, 0], [0xE1, 1], [0xE4, 0]]


@pytest.mark.parametrize(
    ("frame", "error", "reason"),
    [
        (RECORDED[0][0][:-2] + "ad", "ChecksumError", BAD_CHECKSUM),
        (RECORDED[0][0][:20] + "ff" + RECORDED[0][0][22:], "ChecksumError", BAD_CHECKSUM),
        ("424d001d" + RECORDED[0][0][8:], "FrameError", BAD_LENGTH),
        ("424c" + RECORDED[0][0][4:], "FrameError", BAD_HEADER),
        (RECORDED[0][0][:40], "FrameError", BAD_LENGTH),  # truncated
    ],
)
def test_rejects_bad_frames_with_fields(
    mp_source: MicroPython, frame: str, error: str, reason: int
) -> None:
    (result,) = mp_source.run("scen_pms5003", "parse", {"data": [frame]})["data"]
    err = result["error"]
    assert (err["type"], err["reason"], err["sensor"]) == (error, reason, "pms5003")
    assert not err["missing"]
    if frame.endswith("ad"):
        assert (err["computed"], err["received"]) == (0x02AC, 0x02AD)


def test_builds_the_manuals_commands(mp: MicroPython) -> None:
    result = mp.run("scen_pms5003", "commands")
    assert result["passive"] == "424de100000170"
    assert result["active"] == "424de100010171"
    assert result["read"] == "424de200000171"
    assert result["sleep"] == "424de400000173"
    assert result["wake"] == "424de400010174"
    assert "2" in result["errors"]["mode_2"]
    assert "256" in result["errors"]["data_256"]


def test_device_model_frames_match_independent_encoding(mp_source: MicroPython) -> None:
    words = [1, 2, 3, 4, 5, 6, 700, 800, 900, 1000, 11, 12, 0x9700]
    result = mp_source.run("scen_pms5003", "encode", {"data": [words], "acks": [[0xE1, 0]]})
    assert result == {"data": [_frame(words)], "acks": [_ack(0xE1, 0)]}


@pytest.mark.parametrize("chunk", [0, 1, 5, 13])
def test_synchroniser_recovers_frames_from_a_noisy_stream(mp: MicroPython, chunk: int) -> None:
    good = [_frame([i, i + 1, i + 2]) for i in range(1, 5)]
    ack = _ack(0xE1, 0)
    corrupted = good[1][:-2] + "00"
    stream = (
        "00424c42"  # garbage and false starts
        + good[0]
        + good[0][:24]  # a data frame cut short...
        + ack  # ...with an acknowledgement inside its 32-byte window
        + good[2]
        + corrupted
        + "424d00ff"  # an impossible length field
        + good[3]
    )
    (result,) = mp.run("scen_pms5003", "sync_streams", {"streams": [stream], "chunk": chunk})
    assert result["frames"] == [good[0], ack, good[2], good[3]]
    # The cut frame's window and the corrupted frame fail their checksums; the
    # length field 0x00FF is rejected as soon as it arrives.
    assert (result["bad_checksum"], result["bad_format"]) == (2, 1)
    assert result["total"] == 32 * 3 + 8 + result["garbage"] + result["pending"]


def test_a_measurement_cycle_in_passive_mode(mp: MicroPython) -> None:
    values = [
        [5, 10, 12, 6, 11, 13],
        [7, 12, 14, 8, 13, 15],
        [50, 60, 70, 50, 60, 70],
        [6, 11, 13, 7, 12, 14],
        [1, 1, 1, 1, 1, 1],
    ]
    result = _session(mp, ["measure"], device={"values": values})
    reading = _step(result, "measure")["ok"]
    assert reading == {
        "cf1": [6.0, 11.0, 13.0],
        "atm": [7.0, 12.0, 14.0],
        "samples": 5,
        "missed": 0,
        "asleep": True,
    }
    commands = [tuple(c) for c in result["commands"]]
    assert commands == [(0xE4, 1), (0xE1, 0)] + [(0xE2, 0)] * 5 + [(0xE4, 0)]
    # The unit streamed in active mode during the 30 s warm-up: counted, not used.
    assert result["stray"] == 30
    assert result["asleep"] and result["mode"] == 0
    assert 34 <= result["hours_s"] <= 35


def test_frames_in_pieces_with_garbage_and_corruption(mp: MicroPython) -> None:
    device = {"mode": 0, "corrupt": [1], "truncate": [2], "garbage": "42004d"}
    result = _session(mp, ["measure"], device=device, chunk=5)
    reading = _step(result, "measure")["ok"]
    assert (reading["samples"], reading["missed"]) == (3, 2)
    assert reading["cf1"] == [5.0, 10.0, 12.0]
    assert result["bad_checksum"] == 1


def test_a_silent_sensor_is_reported_missing(mp: MicroPython) -> None:
    result = _session(mp, ["measure", "read", "sleep"], device={"silent": True})
    err = _step(result, "measure")["error"]
    assert (err["type"], err["missing"], err["sensor"]) == ("SensorMissing", True, "pms5003")
    assert _step(result, "read")["ok"][0] is False
    sleep = _step(result, "sleep")["error"]
    assert (sleep["type"], sleep["command"], sleep["missing"]) == ("NoReply", 0xE4, True)
    assert result["elapsed_ms"] < 30000 + 2000 + 5 * 1000 + 2000 + 1000 + 2000 + 500


def test_a_unit_that_ignores_sleep(mp: MicroPython) -> None:
    result = _session(mp, ["measure"], device={"ignore_sleep": True})
    assert _step(result, "measure")["ok"]["asleep"] is False
    assert result["running"]


def test_a_clone_without_acknowledgements_still_measures(mp: MicroPython) -> None:
    result = _session(mp, ["measure"], device={"no_ack": True, "mode": 0})
    reading = _step(result, "measure")["ok"]
    assert reading["samples"] == 5 and reading["asleep"] is False


def test_active_mode_streaming(mp: MicroPython) -> None:
    values = [[1, 2, 3], [4, 5, 6]]
    result = _session(mp, ["next_frame", "next_frame"], device={"values": values})
    frames = [r["ok"] for r in result["results"]]
    assert [f[0] for f in frames] == [True, True]
    assert [f[1][:3] for f in frames] == [[1, 2, 3], [4, 5, 6]]


def test_sampling_allocates_nothing(mp: MicroPython) -> None:
    result = mp.run("scen_pms5003", "no_alloc", {"rounds": 50})
    assert result["failure"] is None
    assert result["frames"] == 50
    assert result["garbage"] == 100
    assert result["pm2_5_cf1"] == 11
