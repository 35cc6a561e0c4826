"""Serial PM sensors read by the gateway, over pseudo-terminals carrying real byte streams."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from fake_serial import plugged, running, sds_stream, wait_for

from commons.contract import Reading, parse_message
from gateway.queue import DurableQueue
from gateway.serial_config import SerialSensorSettings
from gateway.serial_frames import (
    SDS011_START,
    SensorModel,
    pms5003_frame,
    sds011_frame,
)
from gateway.serial_sensors import SerialSensorReader, trimmed_mean

NODE = "gw-test-pm"


def settings(
    link: Path, sensor: SensorModel = SensorModel.SDS011, **kw: Any
) -> SerialSensorSettings:
    values: dict[str, Any] = {"interval": 1, "warmup": 0.0, "baudrate": 9600, **kw}
    return SerialSensorSettings(port=link, sensor=sensor, node=NODE, **values)


def readings(queue: DurableQueue) -> list[Reading]:
    out = []
    for m in queue.peek(10_000):
        assert m.topic == f"commons/v1/{NODE}/air"
        out.append(parse_message(m.topic, m.payload, m.received))
    return out


def with_values(queue: DurableQueue) -> list[Reading]:
    return [r for r in readings(queue) if "pm2_5" in r.values]


def test_trimmed_mean_drops_lowest_and_highest() -> None:
    assert trimmed_mean([1.0, 2.0, 3.0, 100.0]) == 2.5
    assert trimmed_mean([4.0, 6.0]) == 5.0
    assert trimmed_mean([7.0]) == 7.0


def test_sds011_readings_with_garbage_and_corrupted_frames(
    tmp_path: Path, queue: DurableQueue
) -> None:
    link = tmp_path / "usb-sds011"
    reader = SerialSensorReader(settings(link), queue, tmp_path / "seq")
    with plugged(link, sds_stream(12.3, 45.6)) as sensor, running(reader):
        wait_for(lambda: reader.parser.frames >= 5, "the first frames")
        corrupt = bytearray(sds011_frame(99.9, 99.9))
        corrupt[3] ^= 0x01
        for _ in range(3):
            sensor.write(b"\x00\x13\x37 line noise \xaa\xaa")
            sensor.write(bytes(corrupt))
        wait_for(lambda: len(with_values(queue)) >= 3, "three readings with values")
        # The reader woke the sensor and set active mode when it opened the port.
        assert sensor.drain().startswith(SDS011_START)
    got = readings(queue)
    assert [r.seq for r in got] == list(range(len(got)))
    # One a second on whole seconds (a window is skipped, not reported empty, if the reader
    # was held up past its end).
    assert all(b.ts > a.ts for a, b in itertools.pairwise(got))
    assert all(r.node == NODE and r.fw for r in got)
    for r in with_values(queue):
        assert r.values == {"pm2_5": 12.3, "pm10": 45.6}
        assert r.flags == ()
    status = reader.status()
    assert status["bad_checksum"] == 3
    assert isinstance(status["garbage_bytes"], int) and status["garbage_bytes"] >= 3 * 14
    assert status["readings"] == len(got)
    assert queue.counters()["received"] == len(got)


def test_pms5003_readings(tmp_path: Path, queue: DurableQueue) -> None:
    link = tmp_path / "usb-pms5003"
    reader = SerialSensorReader(settings(link, SensorModel.PMS5003), queue, tmp_path / "seq")
    with plugged(link, lambda: pms5003_frame(4, 9, 15)), running(reader):
        wait_for(lambda: len(with_values(queue)) >= 2, "two readings with values")
    for r in with_values(queue):
        assert r.values == {"pm1": 4.0, "pm2_5": 9.0, "pm10": 15.0}


def test_unplug_and_replug_through_a_relinked_device(tmp_path: Path, queue: DurableQueue) -> None:
    link = tmp_path / "usb-sds011"
    reader = SerialSensorReader(settings(link, warmup=1.5), queue, tmp_path / "seq")
    with running(reader):
        with plugged(link, sds_stream(20.0, 30.0)):
            wait_for(lambda: len(with_values(queue)) >= 3, "readings from the first sensor")
        # Unplugged: the read fails, the port is closed, reopening fails until it is back.
        wait_for(lambda: reader.counters.disconnects == 1, "the reader to see the unplug")
        assert not reader.counters.connected
        wait_for(lambda: reader.counters.open_failures >= 1, "failed reopening")
        wait_for(
            lambda: any("sensor_missing" in r.flags for r in readings(queue)),
            "a sensor_missing reading while unplugged",
        )
        before = len(readings(queue))
        with plugged(link, sds_stream(7.0, 8.0)):
            wait_for(lambda: reader.counters.reconnects == 1, "the reader to reopen")
            wait_for(
                lambda: any(r.values.get("pm2_5") == 7.0 and not r.flags for r in readings(queue)),
                "an unflagged reading from the replugged sensor",
            )
    after = readings(queue)[before:]
    # Right after the replug the sensor is warming up: those readings are flagged.
    warm = [r for r in after if "warmup" in r.flags]
    assert warm and all(r.values.get("pm2_5") == 7.0 for r in warm)
    assert [r.seq for r in readings(queue)] == list(range(len(readings(queue))))
    assert reader.counters.opened == 2


def test_silence_and_garbage_only_are_sensor_missing(tmp_path: Path, queue: DurableQueue) -> None:
    link = tmp_path / "usb-sds011"
    reader = SerialSensorReader(settings(link), queue, tmp_path / "seq")
    with plugged(link, lambda: b"\x55" * 10) as sensor, running(reader):
        wait_for(lambda: reader.counters.missing >= 2, "readings flagged sensor_missing")
        sensor.paused.set()
        n = reader.counters.missing
        wait_for(lambda: reader.counters.missing >= n + 2, "more while the sensor is silent")
    got = readings(queue)
    assert got and all(r.flags == ("sensor_missing",) and r.values == {} for r in got)
    assert reader.parser.garbage > 0 and reader.parser.frames == 0
    assert reader.counters.disconnects == 0


def test_absent_at_start_then_plugged_in(tmp_path: Path, queue: DurableQueue) -> None:
    link = tmp_path / "usb-sds011"
    reader = SerialSensorReader(settings(link), queue, tmp_path / "seq")
    with running(reader):
        wait_for(lambda: reader.counters.open_failures >= 2, "failed opens")
        wait_for(lambda: reader.counters.missing >= 1, "a sensor_missing reading")
        with plugged(link, sds_stream(5.0, 6.0)):
            wait_for(lambda: len(with_values(queue)) >= 1, "a reading once plugged in")
    assert reader.counters.reconnects == 0 and reader.counters.opened == 1


def test_seq_continues_after_a_restart(tmp_path: Path, queue: DurableQueue) -> None:
    link = tmp_path / "usb-sds011"

    def run_once() -> None:
        reader = SerialSensorReader(settings(link), queue, tmp_path / "seq")
        target = len(readings(queue)) + 2
        with running(reader):
            wait_for(lambda: len(readings(queue)) >= target, "two more readings")

    with plugged(link, sds_stream(1.0, 2.0)):
        run_once()
        run_once()
    seqs = [r.seq for r in readings(queue)]
    assert len(seqs) >= 4
    assert seqs == list(range(len(seqs)))


def test_readings_are_held_while_the_queue_is_full(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "queue.sqlite", max_bytes=1)  # refuses everything
    link = tmp_path / "usb-sds011"
    reader = SerialSensorReader(settings(link), queue, tmp_path / "seq")
    try:
        with plugged(link, sds_stream(3.0, 4.0)), running(reader):
            wait_for(lambda: reader.status()["held"] == 2, "two readings held")
            assert queue.counters()["queued"] == 0
            queue.max_bytes = None  # room again
            wait_for(lambda: queue.counters()["queued"] >= 3, "held readings committed")
        got = [json.loads(m.payload) for m in queue.peek(100)]
        assert [p["seq"] for p in got] == list(range(len(got)))
        assert reader.counters.dropped == 0
    finally:
        queue.close()


def test_a_saturated_sds011_is_flagged_out_of_range(tmp_path: Path, queue: DurableQueue) -> None:
    link = tmp_path / "usb-sds011"
    reader = SerialSensorReader(settings(link), queue, tmp_path / "seq")
    with plugged(link, lambda: sds011_frame(999.9, 999.9)), running(reader):
        wait_for(lambda: len(with_values(queue)) >= 1, "a reading")
    for r in with_values(queue):
        assert r.values == {"pm2_5": 999.9, "pm10": 999.9}
        assert "out_of_range" in r.flags
