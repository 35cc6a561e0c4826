"""The node's pure parts under the unix port: configuration errors, payload v1, the flash ring.

The payloads the firmware writes are checked here, in CPython, with the
gateway's own validation (commons.contract.parse_message).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from mprunner import MP_DIR, MicroPython

from commons.contract import Kind, parse_message

GOOD: dict[str, Any] = {"wifi": {"ssid": "commons"}, "broker": {"host": "192.168.4.1"}}


def _with(section: str, key: str, value: Any) -> dict[str, Any]:
    raw = json.loads(json.dumps(GOOD))
    if section:
        raw.setdefault(section, {})[key] = value
    else:
        raw[key] = value
    return raw


BAD = [
    (_with("broker", "port", "1883"), "broker.port", "expected an integer"),
    (_with("broker", "port", 70000), "broker.port", "70000 is not in 1..65535"),
    (_with("broker", "tls", True), "broker.tls", "not supported"),
    (_with("broker", "password", "secret"), "broker.user", "missing"),
    (_with("broker", "hots", "x"), "broker.hots", "unknown key"),
    ({"broker": {"host": "x"}}, "wifi.ssid", "missing"),
    ({"wifi": {"ssid": "x"}}, "broker.host", "missing"),
    (_with("", "node_id", "ESP32_Bad"), "node_id", "is not [a-z0-9-]"),
    (_with("", "node_id", "gateway"), "node_id", "is not [a-z0-9-]"),
    (_with("pm", "sensor", "sps30"), "pm.sensor", "is not one of sds011, pms5003, none"),
    (_with("pm", "tx", 7), "pm.tx", "GPIO7 is wired to the SPI flash"),
    (_with("pm", "tx", 35), "pm.tx", "GPIO35 is input only"),
    (_with("bme280", "sda", 36), "bme280.sda", "GPIO36 is input only"),
    (_with("bme280", "address", 0x40), "bme280.address", "64 is not in 118..119"),
    (_with("bme280", "enabled", 1), "bme280.enabled", "expected true or false"),
    (_with("intervals", "sample_s", 10), "intervals.sample_s", "shorter than the PM warm-up"),
    (_with("intervals", "status_s", 0), "intervals.status_s", "0 is not in 1..86400"),
    (_with("buffer", "slots", 2), "buffer.slots", "2 is not in 4..20000"),
    (_with("", "watchdog_s", 5), "watchdog_s", "0 (off) or at least 10 s"),
    (_with("", "wifi", "commons"), "wifi", "expected an object"),
    (_with("", "colour", "red"), "colour", "unknown key"),
]


def test_config_errors_name_the_key(mp: MicroPython) -> None:
    results = mp.run("scen_node", "config_errors", {"configs": [raw for raw, _, _ in BAD]})
    for (_, key, reason), (got_key, message) in zip(BAD, results, strict=True):
        assert got_key == key, message
        assert message.startswith(f"config.json: {key}: "), message
        assert reason in message


NOISE_ONLY: dict[str, Any] = {
    **GOOD,
    "pm": {"sensor": "none"},
    "bme280": {"enabled": False},
    "noise": {},
}


def _noise(key: str, value: Any) -> dict[str, Any]:
    raw = json.loads(json.dumps(NOISE_ONLY))
    raw["noise"][key] = value
    return raw


NOISE_BAD = [
    (_noise("rate", 16000), "noise.rate", "16000: supported rates: 44100, 48000 Hz"),
    (_noise("period_s", "60"), "noise.period_s", "expected a whole number"),
    (_noise("period_s", 0), "noise.period_s", "whole seconds from 1 to 86400"),
    (_noise("sensitivity_dbfs", 3), "noise.sensitivity_dbfs", "dBFS from -60 to 0"),
    (_noise("offset_db", 25.0), "noise.offset_db", "dB from -20 to 20"),
    (_noise("offset_db", True), "noise.offset_db", "expected a number"),
    (_noise("gain", 2), "noise.gain", "unknown key"),
    (_noise("i2s", 2), "noise.i2s", "I2S bus 0 or 1"),
    (_noise("sd", 40), "noise.sd", "an ESP32 GPIO number, 0 to 39"),
    (_noise("sd", 7), "noise.sd", "GPIO7 is wired to the SPI flash"),
    (_noise("sck", 34), "noise.sck", "GPIO34 is input only"),
    (_noise("ws", 39), "noise.ws", "GPIO39 is input only"),
    ({**NOISE_ONLY, "noise": [48000]}, "noise", "expected an object"),
    ({**NOISE_ONLY, "noise": None}, "noise", "missing"),  # no sensor at all
]


def test_config_noise_section_errors_name_the_key(mp_source: MicroPython) -> None:
    configs = [raw for raw, _, _ in NOISE_BAD]
    results = mp_source.run("scen_node", "config_kinds", {"configs": configs})
    for (_, key, reason), (got_key, message) in zip(NOISE_BAD, results, strict=True):
        assert got_key == key, message
        assert message.startswith(f"config.json: {key}: "), message
        assert reason in message, message


def test_config_node_kinds_air_noise_or_both(mp_source: MicroPython) -> None:
    both = {**GOOD, "noise": {"rate": 44100, "period_s": 10, "offset_db": -1.5, "sd": 35}}
    bme_only = {**GOOD, "pm": {"sensor": "none"}}
    results = mp_source.run(
        "scen_node", "config_kinds", {"configs": [GOOD, NOISE_ONLY, both, bme_only]}
    )
    air, noise_only, air_and_noise, bme = results
    assert air == [True, None]
    # Defaults: the INMP441 at 48 kHz, -26 dBFS, on I2S 0 with the board's pins.
    assert noise_only == [False, [48000, 60, -26.0, 0.0, 0, 32, 25, 33]]
    assert air_and_noise == [True, [44100, 10, -26.0, -1.5, 0, 32, 25, 35]]  # sd may be input-only
    assert bme == [True, None]


def test_config_defaults_and_node_id_from_mac(mp_source: MicroPython) -> None:
    full = _with("broker", "user", "esp32-a1b2c3")
    full["broker"]["password"] = "pw"
    full["pm"] = {"sensor": "pms5003", "warmup_s": 10}
    full["intervals"] = {"sample_s": 30}
    [[ok, default], [ok2, custom]] = mp_source.run(
        "scen_node", "config_errors", {"configs": [GOOD, full]}
    )
    assert ok == ok2 == "ok"
    assert default == {
        "node_id": "esp32-d4e5f6",
        "broker": ["192.168.4.1", 1883, None, None],
        "pm": ["sds011", 2, 17, 16, 15],
        "bme": [True, 22, 21, 0x76],
        "intervals": [60, 300],
        "ntp": ["pool.ntp.org", 86400],
        "buffer": [2880, "data"],
        "watchdog_s": 120,
        "warmup_short": False,
    }
    assert custom["broker"] == ["192.168.4.1", 1883, "esp32-a1b2c3", "pw"]
    assert custom["pm"][0] == "pms5003"
    assert custom["warmup_short"] is True  # 10 s < the PMS5003's 30 s


def test_config_file_missing_or_not_json(mp_source: MicroPython, tmp_path: Path) -> None:
    missing = mp_source.run("scen_node", "config_file", {"path": str(tmp_path / "none.json")})
    assert missing[0] == "(file)"
    assert "cannot be read" in missing[1]
    broken = mp_source.run(
        "scen_node", "config_file", {"path": str(tmp_path / "c.json"), "text": "{"}
    )
    assert broken == ["(file)", "config.json: (file): is not valid JSON"]


AIR = [
    {
        "ts": 1_749_999_940,
        "pm2_5": 7.94,
        "pm10": 12.36,
        "temp": 18.555,
        "rh": 61.54,
        "pres": 1013.249,
    },
    {"pm1": 3.0, "pm2_5": 11.5, "pm10": 14.0, "flags": ["warmup"]},
    {"ts": 1_749_999_999, "temp": -3.04, "rh": 85.0, "pres": 990.0, "flags": ["rh_high"]},
    {"ts": 1_749_999_999, "flags": ["sensor_missing"]},
    {"ts": 1_749_999_999, "pm2_5": 999.9, "pm10": 999.9, "flags": ["out_of_range", "warmup"]},
]
STATUS = {
    "ts": 1_749_999_940,
    "uptime": 86400,
    "heap_free": 61440,
    "rssi": -67,
    "buffered": 3,
    "reset_cause": "power_on",
    "pm_hours": 1234.5,
}


def test_payloads_pass_the_contract(mp: MicroPython) -> None:
    messages = mp.run("scen_node", "payloads", {"air": AIR, "status": STATUS})
    received_at = 1_750_000_000.0
    parsed = [parse_message(t, p.encode(), received_at) for t, p in messages]
    air = parsed[: len(AIR)]
    assert [r.kind for r in air] == [Kind.AIR] * len(AIR)
    assert [r.seq for r in air] == [1, 2, 3, 4, 5]
    assert {r.fw for r in air} == {"0.1.0"}
    first = air[0]
    assert first.ts == 1_749_999_940
    assert first.values == {"pm2_5": 7.9, "pm10": 12.4, "temp": 18.56, "rh": 61.5, "pres": 1013.25}
    assert first.flags == ()
    # No clock: no ts in the payload; the gateway stamps it and says so.
    assert "ts" not in json.loads(messages[1][1])
    assert air[1].flags == ("warmup", "clock_gateway")
    assert air[1].values == {"pm1": 3.0, "pm2_5": 11.5, "pm10": 14.0}
    assert air[2].values["temp"] == -3.04
    assert air[2].flags == ("rh_high",)
    assert air[3].values == {}
    assert air[3].flags == ("sensor_missing",)
    assert air[4].flags == ("warmup", "out_of_range")
    status, will = parsed[-2], parsed[-1]
    assert status.kind is Kind.STATUS
    assert status.seq is None
    assert status.values == {
        "uptime": 86400.0,
        "heap_free": 61440.0,
        "rssi": -67.0,
        "buffered": 3.0,
        "pm_hours": 1234.5,
    }
    assert status.text == {"state": "online", "reset_cause": "power_on"}
    assert json.loads(messages[-1][1]) == {"v": 1, "state": "offline"}
    assert will.text == {"state": "offline"}


def test_payload_keys_follow_the_golden_order(mp_source: MicroPython) -> None:
    golden = json.loads(
        (Path(__file__).parents[1] / "golden" / "valid" / "air_full.json").read_text()
    )
    [air, *_] = mp_source.run("scen_node", "payloads", {"air": AIR[:1], "status": STATUS})
    keys = list(json.loads(air[1]))
    assert keys == [k for k in golden["payload"] if k in keys]


def _ring(mp: MicroPython, folder: Path, slots: int, ops: list[list[Any]]) -> list[Any]:
    result: list[Any] = mp.run(
        "scen_node", "ring", {"folder": str(folder), "slots": slots, "ops": ops}
    )
    return result


def test_ring_keeps_order_and_survives_a_reboot(mp: MicroPython, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    first = _ring(mp, folder, 8, [["add", f"r{i}"] for i in range(1, 6)] + [["stats"]])
    assert first[:5] == [1, 2, 3, 4, 5]
    assert first[5] == [5, 1, 6, 0, 5, 0]
    # A new process on the same folder: a reboot.
    second = _ring(mp, folder, 8, [["stats"], ["take", 2], ["stats"]])
    assert second[0] == [5, 1, 6, 0, 0, 0]
    assert second[1] == ["r1", "r2"]
    assert second[2][:2] == [3, 3]
    third = _ring(mp, folder, 8, [["stats"], ["add", "r6"], ["take", 10], ["stats"]])
    assert third[0][:3] == [3, 3, 6]
    assert third[1] == 6  # seq keeps counting across reboots
    assert third[2] == ["r3", "r4", "r5", "r6"]
    assert third[3][:4] == [0, 7, 7, 0]
    # Emptied, then rebooted: the next seq still continues.
    assert _ring(mp, folder, 8, [["add", "r7"]]) == [7]


def test_ring_records_kinds_across_a_reboot(mp: MicroPython, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    ops: list[list[Any]] = [["add", "a1"], ["add", "n2", 1], ["add", "a3", 0], ["add", "n4", 1]]
    assert _ring(mp, folder, 8, ops) == [1, 2, 3, 4]  # one seq counter for both kinds
    # After a reboot, each record comes back in order with its kind.
    out = _ring(mp, folder, 8, [["kinds", 2], ["add", "n5", 1], ["stats"]])
    assert out[0] == [[1, 0, "a1"], [2, 1, "n2"]]
    assert out[1] == 5
    out = _ring(mp, folder, 8, [["kinds", 10], ["stats"]])
    assert out[0] == [[3, 0, "a3"], [4, 1, "n4"], [5, 1, "n5"]]
    assert out[1][:3] == [0, 6, 6]
    # A full ring drops the oldest whatever its kind; the kinds of the rest are kept.
    ops = [["add", f"x{i}", i % 2] for i in range(1, 7)] + [["kinds", 10], ["stats"]]
    out = _ring(mp, tmp_path / "small", 4, ops)
    assert out[6] == [[3, 1, "x3"], [4, 0, "x4"], [5, 1, "x5"], [6, 0, "x6"]]
    assert out[7][3] == 2  # x1 and x2 dropped, counted


def test_ring_reads_records_written_before_kinds_as_air(
    mp_source: MicroPython, tmp_path: Path
) -> None:
    # The old slot layout (record number, then a plain u16 length) is kind 0 (air).
    folder = tmp_path / "data"
    folder.mkdir()
    slot = bytearray(256)
    struct.pack_into("<IH", slot, 0, 1, 5)
    slot[6:11] = b"old-1"
    (folder / "ring.bin").write_bytes(bytes(256) + bytes(slot) + bytes(256 * 2))
    out = _ring(mp_source, folder, 4, [["kinds", 4], ["add", "new", 1], ["kinds", 4]])
    assert out == [[[1, 0, "old-1"]], 2, [[2, 1, "new"]]]


def test_ring_refuses_a_kind_it_cannot_store(mp_source: MicroPython, tmp_path: Path) -> None:
    out = mp_source.run("scen_node", "ring_bad_kind", {"folder": str(tmp_path / "d")})
    assert out == ["ValueError", "16", 0]


def test_ring_removes_a_reading_only_after_its_ack(mp_source: MicroPython, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    out = _ring(mp_source, folder, 8, [["add", "a"], ["add", "b"], ["peek"], ["peek"], ["stats"]])
    assert out[2] == out[3] == [1, "a"]  # peeking twice without an ack: the same reading
    assert out[4][0] == 2
    # No ack before the "power cut": both are still there after the reboot.
    out = _ring(mp_source, folder, 8, [["peek"], ["ack", 2], ["ack", 1], ["peek"], ["stats"]])
    assert out[0] == [1, "a"]
    assert out[1] is False  # not the oldest: refused
    assert out[2] is True
    assert out[3] == [2, "b"]
    assert out[4][0] == 1


def test_ring_bounded_drops_oldest_and_counts(mp: MicroPython, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    out = _ring(mp, folder, 4, [["add", f"r{i}"] for i in range(1, 8)] + [["stats"]])
    assert out[:7] == [1, 2, 3, 4, 5, 6, 7]
    assert out[7] == [4, 4, 8, 3, 7, 0]  # full at 4: r1..r3 dropped and counted
    out = _ring(mp, folder, 4, [["stats"], ["take", 10], ["files"]])
    assert out[0] == [4, 4, 8, 3, 0, 0]  # the drop count survives the reboot
    assert out[1] == ["r4", "r5", "r6", "r7"]
    assert out[2] == ["ring.bin", "ring.state"]
    assert (folder / "ring.bin").stat().st_size == 4 * 256


def test_ring_drop_while_in_flight_keeps_the_next_reading(
    mp_source: MicroPython, tmp_path: Path
) -> None:
    # The uplink holds r1 (waiting for its PUBACK) while the sampler fills the ring.
    ops = [["add", "r1"], ["peek"]] + [["add", f"r{i}"] for i in range(2, 6)]
    ops += [["ack", 1], ["peek"], ["stats"]]
    out = _ring(mp_source, tmp_path / "data", 4, ops)
    assert out[6] is False  # r1 had been dropped: the late PUBACK removes nothing else
    assert out[7] == [2, "r2"]
    assert out[8][3] == 1


def test_ring_refuses_oversized_payloads(mp_source: MicroPython, tmp_path: Path) -> None:
    out = mp_source.run("scen_node", "ring_too_large", {"folder": str(tmp_path / "d")})
    assert out == ["PayloadTooLarge", "payload of 300 bytes, at most 250", 0]


def test_clock_converts_the_epoch_and_waits_for_ntp(mp: MicroPython) -> None:
    out = mp.run("scen_node", "clock")
    assert out["offset_1970"] == 0  # the unix port counts from 1970
    assert out["offset_2000"] == 946_684_800
    now, due, synced, still, failures = out["before"]
    assert (now, due, synced, still, failures) == (None, True, False, None, 1)
    ok, after, host_now, due_again, is_synced = out["after"]
    assert ok is True and is_synced is True and due_again is False
    assert abs(after - host_now) <= 1
    # A 2000-epoch port reports the same Unix time once converted.
    assert abs(out["now_2000"] - host_now) <= 1
    assert out["hosts"] == ["192.168.4.1", "192.168.4.1", "pool.ntp.org"]


def test_watchdog_is_fed_only_while_both_tasks_beat(mp_source: MicroPython, tmp_path: Path) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    config = {**GOOD, "broker": {"host": "127.0.0.1", "port": 9}, "watchdog_s": 30}
    (folder / "config.json").write_text(json.dumps(config))
    out = mp_source.run("scen_node", "watchdog", {"folder": str(folder), "hw": str(MP_DIR / "hw")})
    assert out["fresh"] is True
    assert out["sampler_stale"] is False
    assert out["uplink_stale"] is False
    stale, fed, timeout = out["feeds"]
    assert stale == 0  # a stuck task: no feeding, the hardware watchdog resets the node
    assert fed >= 2
    assert timeout == 30_000


def test_watchdog_follows_the_noise_task(mp_source: MicroPython, tmp_path: Path) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    config = {**NOISE_ONLY, "broker": {"host": "127.0.0.1", "port": 9}, "watchdog_s": 30}
    (folder / "config.json").write_text(json.dumps(config))
    out = mp_source.run(
        "scen_node", "watchdog_noise", {"folder": str(folder), "hw": str(MP_DIR / "hw")}
    )
    assert out == {
        "sampler": True,  # no air sensor: no air sampler
        "fresh": True,
        "noise_stale": False,  # a stuck noise task: no feeding
        "again": True,
        "block": 512,
    }
