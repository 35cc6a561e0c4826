"""The SDS011 driver under the MicroPython unix port, against byte-level fakes."""

from __future__ import annotations

from typing import Any

import pytest
from mprunner import MicroPython

# Nova protocol V1.3 data frame example: PM2.5 = 0x04D4/10, PM10 = 0x0A3A/10, id A1 60.
DATASHEET_FRAME = "aac0d4043a0aa1601dab"
BAD_HEADER, BAD_CHECKSUM, BAD_TAIL = 1, 3, 4


def _cmd(cmd: str, data: str = "", device: str = "ffff") -> str:
    """A 19-byte command, independently built: AA B4 CMD D1..D12 ID CS AB."""
    body = bytes.fromhex(cmd + data.ljust(24, "0") + device)
    return (b"\xaa\xb4" + body + bytes([sum(body) & 0xFF, 0xAB])).hex()


def _session(mp: MicroPython, steps: list[Any], **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = mp.run("scen_sds011", "session", {"steps": steps, **kwargs})
    return result


def _step(result: dict[str, Any], name: str, index: int = 0) -> dict[str, Any]:
    steps = [r for r in result["results"] if r["step"] == name]
    return steps[index]  # type: ignore[no-any-return]


def test_parses_the_datasheet_frame(mp: MicroPython) -> None:
    result = mp.run("scen_sds011", "parse", {"data": [DATASHEET_FRAME]})
    assert result["data"] == [{"ok": [123.6, 261.8, 0xA160]}]


def test_parses_replies(mp: MicroPython) -> None:
    replies = ["aac5060100" + "00a16008ab", "aac5070f070aa16028ab"]
    result = mp.run("scen_sds011", "parse", {"reply": replies})
    assert result["reply"] == [
        {"ok": [0x06, 1, 0, 0, 0xA160]},
        {"ok": [0x07, 15, 7, 10, 0xA160]},
    ]


@pytest.mark.parametrize(
    ("frame", "error", "reason"),
    [
        ("aac0d4043a0aa1601eab", "ChecksumError", BAD_CHECKSUM),
        ("aac0d4043a0aa1601dac", "FrameError", BAD_TAIL),
        ("abc0d4043a0aa1601dab", "FrameError", BAD_HEADER),
        ("aac1d4043a0aa1601dab", "FrameError", BAD_HEADER),
        ("aac5060100" + "00a16008ab", "FrameError", BAD_HEADER),  # a reply is no data frame
        ("aac0d4043a0a", "FrameError", BAD_TAIL),  # truncated
    ],
)
def test_rejects_bad_data_frames_with_fields(
    mp_source: MicroPython, frame: str, error: str, reason: int
) -> None:
    (result,) = mp_source.run("scen_sds011", "parse", {"data": [frame]})["data"]
    err = result["error"]
    assert err["type"] == error
    assert err["reason"] == reason
    assert err["sensor"] == "sds011"
    assert err["sensor_error"] and not err["missing"]
    if error == "ChecksumError":
        assert (err["computed"], err["received"]) == (0x1D, 0x1E)


def test_builds_command_frames(mp: MicroPython) -> None:
    result = mp.run("scen_sds011", "commands")
    # The protocol document's examples, e.g. sleep AA B4 06 01 00 ... FF FF 05 AB.
    assert result["sleep"] == "aab40601" + "00" * 11 + "ffff05ab"
    assert result["work"] == "aab4060101" + "00" * 10 + "ffff06ab"
    assert result["query"] == "aab404" + "00" * 12 + "ffff02ab"
    assert result["active"] == "aab4020100" + "00" * 10 + "ffff01ab"
    assert result["query_mode"] == "aab4020101" + "00" * 10 + "ffff02ab"
    assert result["period_1"] == "aab4080101" + "00" * 10 + "ffff08ab"
    assert result["period_0"] == "aab4080100" + "00" * 10 + "ffff07ab"
    assert result["firmware"] == "aab407" + "00" * 12 + "ffff05ab"
    # The rest against an independent builder.
    assert result["get_mode"] == _cmd("02", "00")
    assert result["period_30"] == _cmd("08", "011e")
    assert result["set_id"] == _cmd("05", "00" * 10 + "a160")
    assert result["query_device"] == _cmd("04", "", "a160")
    for frame in result.values():
        if isinstance(frame, str):
            assert len(bytes.fromhex(frame)) == 19


def test_refuses_bad_command_arguments(mp_source: MicroPython) -> None:
    errors = mp_source.run("scen_sds011", "commands")["errors"]
    assert "31" in errors["period_31"]
    assert "-1" in errors["period_neg"]
    assert "2" in errors["mode_2"]
    assert "65536" in errors["device_big"]
    assert "13" in errors["data_13"]


def _frame(pm2_5: int, pm10: int, device: int = 0xA160) -> str:
    body = bytes([pm2_5 & 0xFF, pm2_5 >> 8, pm10 & 0xFF, pm10 >> 8, device >> 8, device & 0xFF])
    return (b"\xaa\xc0" + body + bytes([sum(body) & 0xFF, 0xAB])).hex()


@pytest.mark.parametrize("chunk", [0, 1, 3, 7])
def test_synchroniser_recovers_frames_from_a_noisy_stream(mp: MicroPython, chunk: int) -> None:
    good = [_frame(100 + i, 200 + i) for i in range(4)]
    corrupted = good[1][:16] + "00" + good[1][18:]  # checksum byte wrong
    stream = (
        "0013aa"  # garbage, including a lone header byte
        + good[0]
        + good[0][:10]  # a frame cut short by a dropped byte...
        + good[2]  # ...followed by a good one that starts inside its window
        + corrupted
        + "aac1"  # a false start
        + good[3]
        + good[3][:8]  # a partial frame left pending at the end
    )
    (result,) = mp.run("scen_sds011", "sync_streams", {"streams": [stream], "chunk": chunk})
    assert result["frames"] == [good[0], good[2], good[3]]
    assert result["counted"] == 3
    assert result["bad_checksum"] == 1
    assert result["bad_format"] == 1
    assert result["pending"] == 4
    assert result["total"] == 10 * 3 + result["garbage"] + result["pending"]


def test_setup_then_a_measurement_cycle(mp: MicroPython) -> None:
    values = [[100, 200], [120, 220], [500, 900], [110, 210], [30, 40]]
    result = _session(mp, ["setup", "firmware_version", "measure"], device={"values": values})
    assert [r.get("error") for r in result["results"]] == [None, None, None]
    assert _step(result, "firmware_version")["ok"] == [2015, 7, 10]
    reading = _step(result, "measure")["ok"]
    # Trimmed mean: 50.0 (max) and 3.0 (min) dropped -> (10 + 12 + 11) / 3.
    assert reading == {"pm2_5": 11.0, "pm10": 21.0, "samples": 5, "missed": 0, "asleep": True}
    commands = [tuple(c) for c in result["commands"]]
    assert commands[:4] == [(6, 1, 1), (2, 0, 0), (2, 1, 1), (8, 0, 0)]  # wake, mode?, set, period?
    assert commands[4:] == [(7, 0, 0), (6, 1, 1)] + [(4, 0, 0)] * 5 + [(6, 1, 0)]
    assert result["mode"] == 1 and result["asleep"] and result["period"] == 0
    assert not result["running"]


def test_setup_writes_nothing_the_sensor_already_has(mp: MicroPython) -> None:
    result = _session(mp, ["setup"], device={"mode": 1, "period": 0})
    assert [tuple(c) for c in result["commands"]] == [(6, 1, 1), (2, 0, 0), (8, 0, 0)]


def test_cycle_yields_the_waits_instead_of_sleeping(mp: MicroPython) -> None:
    result = _session(mp, ["setup", ["cycle_waits", [15000, 3, 1000]]])
    waits, pm2_5 = _step(result, "cycle_waits")["ok"]
    assert waits[0] == 15000
    assert len(waits) == 3
    assert all(900 <= w < 1000 for w in waits[1:])  # the interval minus the query's own time
    assert pm2_5 == 12.3


def test_active_mode_frames_are_read_as_they_stream(mp: MicroPython) -> None:
    values = [[10, 20], [11, 21], [12, 22]]
    steps = [["pass_ms", 100], "read", "read", "read"]
    result = _session(mp, steps, device={"values": values, "mode": 0})
    reads = [r["ok"] for r in result["results"] if r["step"] == "read"]
    assert reads == [[True, 10, 20], [True, 11, 21], [True, 12, 22]]
    assert 3000 <= result["elapsed_ms"] <= 3200


def test_corrupted_frames_are_counted_and_skipped(mp: MicroPython) -> None:
    values = [[100, 200], [120, 220], [150, 250], [110, 210], [130, 230]]
    device = {"values": values, "corrupt": [1], "truncate": [3], "garbage": "00ff13aa"}
    result = _session(mp, ["setup", "measure"], device=device)
    reading = _step(result, "measure")["ok"]
    assert reading["samples"] == 3
    assert reading["missed"] == 2
    assert reading["pm2_5"] == 13.0  # 10.0, 15.0, 13.0: min and max dropped
    assert result["bad_checksum"] == 1
    assert result["garbage"] > 0


def test_frames_arriving_in_pieces(mp: MicroPython) -> None:
    result = _session(mp, ["setup", "measure"], device={"values": [[42, 84]]}, chunk=3)
    assert _step(result, "measure")["ok"]["pm2_5"] == 4.2


def test_a_lost_first_wake_up_is_retried(mp: MicroPython) -> None:
    result = _session(mp, ["wake"], device={"ignore_commands": 1, "asleep": True})
    assert _step(result, "wake") == {"step": "wake", "ok": None}
    assert [tuple(c) for c in result["commands"]] == [(6, 1, 1), (6, 1, 1)]
    assert not result["asleep"]


def test_a_silent_sensor_is_reported_missing(mp: MicroPython) -> None:
    result = _session(mp, ["setup", "measure", "query"], device={"silent": True})
    for step in ("setup", "measure"):
        err = _step(result, step)["error"]
        assert err["type"] == "NoReply"
        assert err["missing"]
        assert (err["command"], err["waited_ms"]) == (0x06, 2000)
    assert _step(result, "query")["ok"] == [False, 0, 0]
    # Bounded waits: two attempts of 1 s each per command, plus the query's second.
    assert result["elapsed_ms"] <= 2 * 2000 + 1000 + 100
    assert not result["running"]


def test_a_sensor_without_data_is_reported_missing(mp: MicroPython) -> None:
    result = _session(mp, ["setup", "measure"], device={"no_data": True})
    err = _step(result, "measure")["error"]
    assert err["type"] == "SensorMissing"
    assert err["missing"]
    assert "5 queries" in err["detail"]
    assert result["asleep"]  # it was still put back to sleep


def test_an_unconfirmed_sleep_is_reported_and_keeps_counting_hours(mp: MicroPython) -> None:
    result = _session(mp, ["setup", "measure"], device={"ignore_sleep": True})
    assert _step(result, "measure")["ok"]["asleep"] is False
    assert result["running"]


def test_an_asleep_sensor_ignores_all_but_wake_up(mp: MicroPython) -> None:
    steps = [
        "setup",
        "sleep",
        ["set_working_period", 5],
        "working_period",
        "wake",
        "working_period",
    ]
    result = _session(mp, steps)
    assert _step(result, "set_working_period")["error"]["type"] == "NoReply"
    assert _step(result, "working_period", 0)["error"]["command"] == 0x08
    assert _step(result, "working_period", 1)["ok"] == 0


def test_working_period_and_report_mode_round_trip(mp: MicroPython) -> None:
    steps = [
        "setup",
        ["set_working_period", 5],
        "working_period",
        ["set_working_period", 31],
        ["set_report_mode", 0],
        "report_mode",
    ]
    result = _session(mp, steps)
    assert _step(result, "working_period")["ok"] == 5
    assert _step(result, "set_working_period", 1)["error"]["type"] == "ValueError"
    assert _step(result, "report_mode")["ok"] == 0
    assert result["period"] == 5 and result["mode"] == 0


def test_laser_hours_add_up_over_cycles(mp: MicroPython) -> None:
    # The fake clock starts 5 s before the tick counter wraps, so this crosses it.
    result = _session(mp, ["setup", "measure", ["pass_ms", 60000], "measure"], hours_s=3600)
    waits = 15000 + 4 * 1000  # warm-up and sampling, per cycle
    run_s = result["hours_ms"] / 1000 - 3600
    assert 2 * waits / 1000 <= run_s <= 2 * waits / 1000 + 1
    assert result["hours"] == pytest.approx(1 + run_s / 3600, abs=1 / 3600)


def test_sampling_allocates_nothing(mp: MicroPython) -> None:
    result = mp.run("scen_sds011", "no_alloc", {"rounds": 50})
    assert result["read_failure"] is None
    assert result["query_failure"] is None
    assert result["read_frames"] == 50 and result["query_frames"] == 50
    assert result["read_garbage"] == 50 * 3
    assert (result["pm2_5_tenths"], result["pm10_tenths"]) == (250, 400)
