"""The gateway's SDS011/PMS5003 frame parsers and the ``[[serial]]`` configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import RunCommons
from hypothesis import given
from hypothesis import strategies as st

from commons.settings import ConfigError
from gateway.config import GatewaySettings
from gateway.serial_config import parse_serial
from gateway.serial_frames import (
    PMS5003_START,
    SDS011_START,
    FrameParser,
    PmFrame,
    SensorModel,
    pms5003_frame,
    sds011_frame,
)

# Written out by hand from the protocol (REFERENCE 8.1), not by the encoder under test:
# PM2.5 = 0x0051/10 = 8.1, PM10 = 0x006e/10 = 11.0, device id d3a4, CS = 0x236 & 0xff.
SDS011_RECORDED = bytes.fromhex("aac051006e00d3a436ab")
# A PMS5003 data frame in the data manual's layout (REFERENCE 8.2): CF=1 PM1 5, PM2.5 8,
# PM10 9; its checksum is filled in by the test.
PMS5003_RECORDED = bytes.fromhex("424d001c0005000800090005000800090402016a003c000400000000970003c0")


def test_recorded_sds011_frame() -> None:
    parser = FrameParser(SensorModel.SDS011)
    assert parser.feed(SDS011_RECORDED) == [PmFrame(pm2_5=8.1, pm10=11.0)]
    assert (parser.frames, parser.garbage, parser.bad_checksum) == (1, 0, 0)


def test_recorded_pms5003_frame() -> None:
    parser = FrameParser(SensorModel.PMS5003)
    frame = bytearray(PMS5003_RECORDED)
    frame[30:32] = (sum(frame[:30]) & 0xFFFF).to_bytes(2, "big")
    assert parser.feed(bytes(frame)) == [PmFrame(pm1=5.0, pm2_5=8.0, pm10=9.0)]
    assert parser.frames == 1


def test_encoders_round_trip() -> None:
    sds = FrameParser(SensorModel.SDS011)
    assert sds.feed(sds011_frame(12.3, 456.7)) == [PmFrame(pm2_5=12.3, pm10=456.7)]
    pms = FrameParser(SensorModel.PMS5003)
    assert pms.feed(pms5003_frame(3, 17, 250)) == [PmFrame(pm1=3.0, pm2_5=17.0, pm10=250.0)]


@pytest.mark.parametrize(
    ("model", "good"),
    [
        (SensorModel.SDS011, sds011_frame(10.0, 20.0)),
        (SensorModel.PMS5003, pms5003_frame(5, 10, 20)),
    ],
)
def test_garbage_and_corruption_are_counted_and_skipped(model: SensorModel, good: bytes) -> None:
    corrupt = bytearray(good)
    corrupt[5] ^= 0x40  # a flipped bit in a data byte: the checksum no longer matches
    truncated = good[: len(good) // 2]
    stream = b"\x00\xff garbage" + good + bytes(corrupt) + truncated + good + good[:1]
    parser = FrameParser(model)
    frames = parser.feed(stream)
    assert len(frames) == 2
    # The corrupted frame, and the truncated one (completed by the next frame's first bytes).
    assert parser.bad_checksum >= 1
    assert parser.bad_checksum + parser.bad_format == 2
    # Every byte is in a valid frame, counted as garbage, or pending (the last byte).
    assert parser.frames * len(good) + parser.garbage + parser.pending() == len(stream)
    assert parser.pending() == 1


def test_frames_split_at_every_byte() -> None:
    stream = b"\xaa\xaa" + sds011_frame(1.5, 2.5) * 3
    parser = FrameParser(SensorModel.SDS011)
    frames = [f for b in stream for f in parser.feed(bytes([b]))]
    assert frames == [PmFrame(pm2_5=1.5, pm10=2.5)] * 3
    assert parser.garbage == 2


def test_command_replies_are_neither_data_nor_garbage() -> None:
    sds = FrameParser(SensorModel.SDS011)
    reply = bytearray.fromhex("aac50601010000000000ab")[:10]
    reply[8] = sum(reply[2:8]) & 0xFF
    reply[9] = 0xAB
    assert sds.feed(bytes(reply)) == []
    assert (sds.replies, sds.garbage) == (1, 0)
    pms = FrameParser(SensorModel.PMS5003)
    ack = b"\x42\x4d\x00\x04\xe1\x01"
    ack += (sum(ack) & 0xFFFF).to_bytes(2, "big")
    assert pms.feed(ack) == []
    assert (pms.replies, pms.garbage) == (1, 0)


def test_start_commands_are_well_formed() -> None:
    assert len(SDS011_START) == 3 * 19
    for i in range(0, len(SDS011_START), 19):
        command = SDS011_START[i : i + 19]
        assert command[:2] == b"\xaa\xb4" and command[18] == 0xAB
        assert command[17] == sum(command[2:17]) & 0xFF
    assert bytes.fromhex("424de400010174424de100010171") == PMS5003_START


@given(st.binary(max_size=400), st.sampled_from(list(SensorModel)))
def test_any_bytes_are_accounted_for(noise: bytes, model: SensorModel) -> None:
    if model is SensorModel.SDS011:
        good, expected = sds011_frame(3.3, 4.4), PmFrame(pm2_5=3.3, pm10=4.4)
    else:
        good, expected = pms5003_frame(1, 2, 3), PmFrame(pm1=1.0, pm2_5=2.0, pm10=3.0)
    parser = FrameParser(model)
    frames = parser.feed(noise) + parser.feed(good)
    # A frame after any noise is found: rejected candidates are rescanned byte by byte.
    assert frames[-1] == expected
    # No byte is lost or counted twice.
    assert parser.framed_bytes + parser.garbage + parser.pending() == len(noise) + len(good)


# -- configuration ---------------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> GatewaySettings:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[mqtt]\nhost = "127.0.0.1"\nport = 1883\n[influx]\nurl = "http://127.0.0.1:8086"\n' + text
    )
    return GatewaySettings.load(config)


def test_serial_tables_become_settings(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        '[[serial]]\nport = "/dev/ttyUSB0"\nsensor = "sds011"\nnode = "gw-riverside-pm"\n'
        "interval = 60\n"
        '[[serial]]\nport = "/dev/ttyUSB1"\nsensor = "pms5003"\nnode = "gw-riverside-pm2"\n'
        "warmup = 0\nbaudrate = 9600\n",
    )
    first, second = settings.serial
    assert (first.port, first.sensor, first.node, first.interval, first.warmup) == (
        Path("/dev/ttyUSB0"),
        SensorModel.SDS011,
        "gw-riverside-pm",
        60,
        15.0,
    )
    assert (second.sensor, second.interval, second.warmup) == (SensorModel.PMS5003, 60, 0.0)


def test_no_serial_tables_means_no_sensors(tmp_path: Path) -> None:
    assert _load(tmp_path, "").serial == ()


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        (
            'port = "/dev/x"\nsensor = "sds011"\nnode = "abc"\nspeed = 1',
            "serial[0].speed",
            "unknown",
        ),
        ('sensor = "sds011"\nnode = "abc"', "serial[0].port", "missing"),
        ('port = "/dev/x"\nsensor = "sds012"\nnode = "abc"', "serial[0].sensor", "sds012"),
        ('port = "/dev/x"\nsensor = "sds011"\nnode = "Bad_Id"', "serial[0].node", "node id"),
        ('port = "/dev/x"\nsensor = "sds011"\nnode = "gateway"', "serial[0].node", "node id"),
        (
            'port = "/dev/x"\nsensor = "sds011"\nnode = "abc"\ninterval = 0',
            "serial[0].interval",
            "",
        ),
        (
            'port = "/dev/x"\nsensor = "sds011"\nnode = "abc"\ninterval = 1.5',
            "serial[0].interval",
            "",
        ),
        ('port = "/dev/x"\nsensor = "sds011"\nnode = "abc"\nwarmup = -1', "serial[0].warmup", ""),
        ('port = 5\nsensor = "sds011"\nnode = "abc"', "serial[0].port", "expected str"),
    ],
)
def test_bad_serial_tables_name_key_and_file(
    tmp_path: Path, table: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, "[[serial]]\n" + table + "\n")
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(tmp_path / "gateway.toml") in str(caught.value)


def test_two_sensors_cannot_share_a_node_or_port(tmp_path: Path) -> None:
    one = '[[serial]]\nport = "/dev/a"\nsensor = "sds011"\nnode = "abc"\n'
    with pytest.raises(ConfigError, match=r"serial\[1\]\.node"):
        _load(tmp_path, one + one.replace("/dev/a", "/dev/b"))
    with pytest.raises(ConfigError, match=r"serial\[1\]\.port"):
        _load(tmp_path, one + one.replace("abc", "abd"))


def test_serial_must_be_an_array_of_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="array of tables"):
        parse_serial({"port": "/dev/x"}, tmp_path / "x.toml")


def test_gateway_run_refuses_a_bad_serial_table(tmp_path: Path, run_commons: RunCommons) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[mqtt]\nhost = "127.0.0.1"\nport = 1883\n[influx]\nurl = "http://127.0.0.1:8086"\n'
        '[[serial]]\nport = "/dev/ttyUSB0"\nsensor = "sds012"\nnode = "gw-pm"\n'
    )
    result = run_commons("gateway", "run", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: serial[0].sensor: 'sds012' is not one of sds011, pms5003" in result.stderr
