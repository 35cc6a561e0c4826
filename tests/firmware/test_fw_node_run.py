"""The whole node under the unix port, compiled as for the ESP32, in a 100 KB heap, on real MQTT.

Each node is a ``micropython -m main`` process in a folder that is its flash,
with the fake hardware of tests/firmware/mp/hw (SDS011 on the UART, BME280
on I2C, Wi-Fi, NTP, watchdog). What it publishes is checked with the
gateway's validation (commons.contract.parse_message).
"""

from __future__ import annotations

import itertools
import json
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mprunner import MPY_CROSS
from nodeproc import (
    NodeProcess,
    PrivateBroker,
    Recorder,
    node_config,
    stack_accounts,
)

from commons.contract import Kind, parse_message
from commons.home import StackInfo
from commons.procs import free_port, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def nodes() -> Iterator[list[NodeProcess]]:
    """Node processes a test starts; each is stopped by PID at the end."""
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.stop()


def _login(account: tuple[str, str] | None) -> dict[str, str]:
    """The broker section's credentials, when the broker wants them."""
    return {} if account is None else {"user": account[0], "password": account[1]}


def _recorder(
    stack: StackInfo,
    node_id: str,
    kind: str,
    account: tuple[str, str] | None,
    suffix: str = "",
) -> Recorder:
    user, password = account if account is not None else (None, None)
    return Recorder(
        stack.mqtt.host,
        stack.mqtt.port,
        f"commons/v1/{node_id}/{kind}",
        f"fw-test-{node_id}{suffix}",
        username=user,
        password=password,
    ).start()


def _feeds(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for m in (re.match(r"WDT feed \d+ gap=(\d+)", x) for x in lines) if m]


def test_node_publishes_readings_status_and_will(
    stack: StackInfo, node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    node_id = "esp32-run001"
    accounts = stack_accounts(stack.mqtt, node_id)
    recorder = _recorder(stack, node_id, "#", accounts.recorder)
    try:
        node = NodeProcess(tmp_path / "node", node_path)
        node.configure(node_config(stack.mqtt.port, node_id=node_id, broker=_login(accounts.node)))
        nodes.append(node.start())
        wait_until(lambda: len(recorder.air()) >= 4, 60, "four air readings")
        wait_until(lambda: len(recorder.of_kind("status")) >= 2, 30, "two status messages")

        now = time.time()
        air = [parse_message(m.topic, m.payload, now) for m in recorder.of_kind("air")]
        assert [r.seq for r in air] == list(range(1, len(air) + 1))
        for reading in air:
            assert reading.kind is Kind.AIR
            # Warm-up cut to 0 s for speed: flagged, as any shortened warm-up is.
            assert reading.flags == ("warmup",)
            assert now - 60 <= reading.ts <= now
            assert set(reading.values) == {"pm2_5", "pm10", "temp", "rh", "pres"}
            assert reading.values["temp"] == pytest.approx(18.5, abs=0.05)
            assert reading.values["pres"] == pytest.approx(1013.25, abs=0.5)
            assert reading.values["rh"] == pytest.approx(55.0, abs=0.5)
            assert reading.values["pm10"] == pytest.approx(2 * reading.values["pm2_5"])
        status = [parse_message(m.topic, m.payload, now) for m in recorder.of_kind("status")]
        assert status[0].text == {"state": "online", "reset_cause": "power_on"}
        assert {"uptime", "heap_free", "rssi", "buffered", "pm_hours"} <= set(status[0].values)
        assert status[0].values["rssi"] == -61.0
        assert 0 < status[-1].values["heap_free"] < 100 * 1024

        # The watchdog: started with the configured timeout, fed about every second.
        lines = node.lines()
        assert "WDT start timeout=10000" in lines
        gaps = _feeds(lines)
        assert len(gaps) >= 3
        assert max(gaps[1:]) < 10_000

        # Power cut: the broker publishes the retained offline will.
        node.kill()
        wait_until(
            lambda: any(
                json.loads(m.payload) == {"v": 1, "state": "offline"}
                for m in recorder.of_kind("status")
            ),
            30,
            "the offline will",
        )
    finally:
        recorder.stop()
    # A newcomer gets the retained will.
    late = _recorder(stack, node_id, "status", accounts.recorder, "-late")
    try:
        wait_until(lambda: bool(late.of_kind("status")), 20, "the retained status")
        retained = late.of_kind("status")[0]
        assert retained.retain
        assert json.loads(retained.payload) == {"v": 1, "state": "offline"}
    finally:
        late.stop()


def test_readings_without_ntp_carry_no_ts(
    stack: StackInfo, node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    node_id = "esp32-run002"
    accounts = stack_accounts(stack.mqtt, node_id)
    recorder = _recorder(stack, node_id, "air", accounts.recorder)
    try:
        node = NodeProcess(tmp_path / "node", node_path)
        node.configure(
            node_config(
                stack.mqtt.port,
                node_id=node_id,
                ntp={"host": "10.9.9.9"},
                broker=_login(accounts.node),
            ),
            {"ntp_fail": True, "bme280": None},
        )
        nodes.append(node.start())
        wait_until(lambda: len(recorder.air()) >= 2, 60, "two air readings")
        for message in recorder.of_kind("air"):
            assert "ts" not in json.loads(message.payload)
            reading = parse_message(message.topic, message.payload, time.time())
            # No BME280: flagged, never dropped; the PM values still go out.
            assert reading.flags == ("warmup", "sensor_missing", "clock_gateway")
            assert set(reading.values) == {"pm2_5", "pm10"}
        assert any("ntp: no time from 10.9.9.9" in line for line in node.lines())
    finally:
        recorder.stop()


def test_pms5003_node_sends_pm1(
    node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    broker = PrivateBroker(tmp_path / "broker").start()
    recorder = Recorder("127.0.0.1", broker.port, "commons/v1/esp32-pms001/#", "fw-test-pms001")
    try:
        recorder.start()
        node = NodeProcess(tmp_path / "node", node_path)
        node.configure(
            node_config(broker.port, node_id="esp32-pms001", pm={"sensor": "pms5003"}),
            {"pm": {"kind": "pms5003"}},
        )
        nodes.append(node.start())
        wait_until(lambda: len(recorder.air()) >= 3, 60, "three PMS5003 readings")
        for message in recorder.of_kind("air"):
            reading = parse_message(message.topic, message.payload, time.time())
            assert set(reading.values) == {"pm1", "pm2_5", "pm10", "temp", "rh", "pres"}
            assert reading.values["pm1"] <= reading.values["pm2_5"] <= reading.values["pm10"]
            assert reading.flags == ("warmup",)
    finally:
        recorder.stop()
        broker.stop()


def test_outage_and_reboot_lose_nothing_and_keep_order(
    node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    node_id = "esp32-out001"
    users = {node_id: "node-secret", "recorder": "rec-secret"}
    broker = PrivateBroker(tmp_path / "broker", users).start()
    recorder = Recorder(
        "127.0.0.1",
        broker.port,
        f"commons/v1/{node_id}/air",
        "fw-test-out001",
        username="recorder",
        password="rec-secret",
    ).start()
    node = NodeProcess(tmp_path / "node", node_path)
    config = node_config(
        broker.port, node_id=node_id, broker={"user": node_id, "password": "node-secret"}
    )
    node.configure(config)
    try:
        nodes.append(node.start())
        wait_until(lambda: len(recorder.air()) >= 3, 60, "three readings before the outage")

        broker.stop()
        outage_started = time.time()
        # Readings pile up in flash while the broker is away.
        node.wait_for(lambda _: any(s["buffered"] >= 3 for s in node.samples()), 60, "buffering")
        node.kill()  # power cut with readings in flash

        rebooted = NodeProcess(node.folder, node_path)
        nodes.append(rebooted.start())
        before = len(node.samples())
        rebooted.wait_for(
            lambda lines: len(rebooted.samples()) - before >= 3, 60, "sampling after the reboot"
        )
        boot = [line for line in rebooted.lines() if line.startswith("node esp32-out001")]
        assert re.search(r"reset cause power_on, ([1-9]\d*) readings buffered", boot[-1]), boot
        last_seq_offline = rebooted.samples()[-1]["seq"]
        outage_ended = time.time()

        broker.start()
        wait_until(
            lambda: {r["seq"] for r in recorder.air()} >= set(range(1, last_seq_offline + 1)),
            90,
            "every reading up to the last one taken offline",
        )
        received = recorder.air()
        seqs = [r["seq"] for r in received]
        # In order: a retry may repeat the reading just sent, never reorder.
        first_arrivals = list(dict.fromkeys(seqs))
        assert first_arrivals == sorted(first_arrivals)
        assert first_arrivals[:last_seq_offline] == list(range(1, last_seq_offline + 1))
        for earlier, later in itertools.pairwise(seqs):
            assert later in (earlier, earlier + 1), seqs
        # Original timestamps: readings taken during the outage say when they were taken.
        by_seq = {r["seq"]: r for r in received}
        offline = [
            by_seq[s]
            for s in range(1, last_seq_offline + 1)
            if by_seq[s]["ts"] >= outage_started - 1
        ]
        assert offline, "no reading was taken during the outage"
        for reading in offline:
            assert reading["ts"] <= outage_ended + 1
        ts = [by_seq[s]["ts"] for s in range(1, last_seq_offline + 1)]
        assert ts == sorted(ts)
        for message in recorder.of_kind("air"):
            parse_message(message.topic, message.payload, time.time())
        # The node noticed the outage and backed off between attempts.
        retries = [line for line in node.lines() + rebooted.lines() if line.startswith("uplink:")]
        assert retries
        assert any("retry in 2000 ms" in line for line in retries)
    finally:
        recorder.stop()
        broker.stop()


def test_wrong_credentials_are_refused_and_retried(
    node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    broker = PrivateBroker(tmp_path / "broker", {"esp32-auth01": "right"}).start()
    try:
        node = NodeProcess(tmp_path / "node", node_path)
        node.configure(
            node_config(
                broker.port,
                node_id="esp32-auth01",
                broker={"user": "esp32-auth01", "password": "wrong"},
            )
        )
        nodes.append(node.start())
        node.wait_for(
            lambda lines: (
                sum("bad user name or password" in x or "not authorised" in x for x in lines) >= 2
            ),
            30,
            "two refused connections",
        )
        # Sampling goes on meanwhile: readings wait in flash.
        node.wait_for(lambda _: any(s["buffered"] >= 2 for s in node.samples()), 30, "buffering")
    finally:
        broker.stop()


def test_wifi_down_is_retried_with_backoff_while_sampling_goes_on(
    node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    node = NodeProcess(tmp_path / "node", node_path)
    node.configure(
        node_config(free_port(), wifi={"timeout_s": 1}, intervals={"sample_s": 1}),
        {"wifi_fail": True},
    )
    nodes.append(node.start())
    node.wait_for(
        lambda lines: any(
            "Wi-Fi: not connected to commons" in x and "retry in 2000 ms" in x for x in lines
        ),
        30,
        "a second Wi-Fi attempt, backed off",
    )
    retries = [x for x in node.lines() if x.startswith("uplink:")]
    assert "retry in 1000 ms" in retries[0]
    assert all("Wi-Fi" in x for x in retries)
    assert not any(x.startswith("mqtt: connected") for x in node.lines())
    node.wait_for(lambda _: any(s["buffered"] >= 3 for s in node.samples()), 30, "buffering")


def test_wifi_drop_reconnects_and_loses_nothing(
    node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    broker = PrivateBroker(tmp_path / "broker").start()
    recorder = Recorder("127.0.0.1", broker.port, "commons/v1/esp32-wifi01/air", "fw-test-wifi01")
    try:
        recorder.start()
        node = NodeProcess(tmp_path / "node", node_path)
        node.configure(node_config(broker.port, node_id="esp32-wifi01"), {"wifi_drop_after_s": 3})
        nodes.append(node.start())
        node.wait_for(
            lambda lines: sum(x.startswith("mqtt: connected") for x in lines) >= 2,
            60,
            "a second broker connection after the Wi-Fi drop",
        )
        lines = node.lines()
        assert "FAKE wifi: link dropped" in lines
        assert sum(x.startswith("wifi: connected") for x in lines) >= 2
        assert any(x.startswith("uplink: WifiUnavailable") for x in lines)
        taken = node.samples()[-1]["seq"]
        wait_until(
            lambda: {r["seq"] for r in recorder.air()} >= set(range(1, taken + 1)),
            60,
            "every reading taken so far",
        )
        first_arrivals = list(dict.fromkeys(r["seq"] for r in recorder.air()))
        assert first_arrivals == sorted(first_arrivals)
    finally:
        recorder.stop()
        broker.stop()


def test_bad_config_stops_with_the_key_named(
    node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    node = NodeProcess(tmp_path / "node", node_path)
    node.configure(node_config(1883, broker={"port": "1883"}))
    nodes.append(node.start())
    assert node.proc is not None
    assert node.proc.wait(timeout=30) == 2
    assert "CONFIG ERROR: config.json: broker.port: expected an integer, got '1883'" in node.lines()


@pytest.mark.parametrize("sensor", ["sds011", "pms5003"])
def test_heap_budget_over_many_cycles(
    sensor: str, node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    # No broker at all: every reading goes to a small ring that wraps, drops and counts,
    # while the uplink keeps failing and backing off: the busiest path for the heap.
    cycles = 30
    node = NodeProcess(tmp_path / "node", node_path)
    node.configure(
        node_config(free_port(), buffer={"slots": 8}, pm={"sensor": sensor}),
        {"pm": {"kind": sensor}},
    )
    nodes.append(node.start())
    node.wait_for(lambda _: len(node.samples()) >= cycles, 120, f"{cycles} sample cycles")
    samples = node.samples()
    lines = node.lines()
    assert not [x for x in lines if "MemoryError" in x or "CRASH" in x]
    assert samples[-1]["dropped"] == samples[-1]["seq"] - 8
    heap_min = min(s["heap_min"] for s in samples)
    print(
        f"\n{sensor}: lowest free heap over {len(samples)} cycles, {node.heap} heap: {heap_min} B"
    )
    assert heap_min > 4096
    # Micro-allocation only: the free heap after a collection does not drift down.
    assert samples[-1]["heap_free"] >= samples[5]["heap_free"] - 512


# The noise meter's viper modules are built for the ESP32 (xtensawin) by ``make firmware``;
# under the unix port they are compiled for this machine instead.
_HOST_ARCH = {"x86_64": "x64", "aarch64": "arm64", "armv7l": "armv7m"}
_VIPER = ("noise/kernel.py", "noise/fast.py")
FIRMWARE_SRC = Path(__file__).resolve().parents[2] / "firmware"


@pytest.fixture(scope="session")
def noise_node_path(node_path: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """``node_path`` with the noise meter's machine code compiled for the host."""
    hw, firmware = node_path
    host = tmp_path_factory.mktemp("firmware-host") / "firmware"
    shutil.copytree(firmware, host)
    arch = _HOST_ARCH[platform.machine()]
    for relative in _VIPER:
        subprocess.run(
            [
                str(MPY_CROSS),
                f"-march={arch}",
                "-o",
                str(host / relative.replace(".py", ".mpy")),
                "-s",
                relative,
                str(FIRMWARE_SRC / relative),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return [hw, host]


NOISE_ONLY = {"pm": {"sensor": "none"}, "bme280": {"enabled": False}}
TONE_94 = {"pm": None, "bme280": None, "i2s": {"hz": 1000, "db": 94.0}}


def _noise_lines(node: NodeProcess) -> list[dict[str, int]]:
    """The ``noise seq=.. heap_free=..`` console lines, as numbers."""
    return [
        {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}
        for line in node.lines()
        if line.startswith("noise seq=")
    ]


def test_noise_node_publishes_levels_on_its_noise_topic(
    stack: StackInfo,
    node_path: list[Path],
    noise_node_path: list[Path],
    nodes: list[NodeProcess],
    tmp_path: Path,
) -> None:
    node_id = "esp32-noise01"
    accounts = stack_accounts(stack.mqtt, node_id)
    recorder = _recorder(stack, node_id, "#", accounts.recorder)
    try:
        node = NodeProcess(tmp_path / "node", noise_node_path)
        config = node_config(
            stack.mqtt.port,
            node_id=node_id,
            broker=_login(accounts.node),
            noise={"period_s": 2},
            **NOISE_ONLY,
        )
        node.configure(config, TONE_94)
        nodes.append(node.start())
        wait_until(lambda: len(recorder.of_kind("noise")) >= 4, 60, "four noise readings")
        wait_until(lambda: len(recorder.of_kind("status")) >= 2, 30, "two status messages")
        now = time.time()
        noise = [parse_message(m.topic, m.payload, now) for m in recorder.of_kind("noise")]
        assert [r.seq for r in noise] == list(range(1, len(noise) + 1))
        assert not recorder.of_kind("air")
        for reading in noise:
            assert reading.kind is Kind.NOISE
            assert reading.flags == ()
            assert now - 60 <= reading.ts <= now
            assert reading.values["period"] == 2
            # A 94 dB, 1 kHz calibrator tone through the fake INMP441 (-26 dBFS).
            for key in ("laeq", "lafmax", "lafmin", "la10", "la50", "la90"):
                assert reading.values[key] == pytest.approx(94.0, abs=0.5), (key, reading)
        status = [parse_message(m.topic, m.payload, now) for m in recorder.of_kind("status")]
        assert "pm_hours" not in status[-1].values
        assert 0 < status[-1].values["heap_free"] < 100 * 1024
        lines = node.lines()
        assert not [x for x in lines if "MemoryError" in x or "CRASH" in x or "watchdog:" in x]
        assert max(_feeds(lines)[1:]) < 10_000
        heap_min = min(s["heap_min"] for s in _noise_lines(node))
        print(f"\nnoise node: lowest free heap, {node.heap} heap: {heap_min} B")
        assert heap_min > 2048
    finally:
        recorder.stop()


# Air and noise on one node: measured on this 64-bit port, the steady state needs about
# 132 KB (130K fails at boot, 140K leaves about 7 KB); see firmware/README.md, RAM.
BOTH_HEAP = "140K"


def test_air_and_noise_node_shares_seq_and_keeps_kinds_across_an_outage_and_reboot(
    noise_node_path: list[Path], nodes: list[NodeProcess], tmp_path: Path
) -> None:
    node_id = "esp32-both01"
    broker = PrivateBroker(tmp_path / "broker").start()
    recorder = Recorder("127.0.0.1", broker.port, f"commons/v1/{node_id}/#", "fw-test-both01")
    node = NodeProcess(tmp_path / "node", noise_node_path, heap=BOTH_HEAP)
    node.configure(
        # A ring that holds the whole test (512 slots): nothing dropped, every seq arrives.
        node_config(broker.port, node_id=node_id, noise={"period_s": 1}, buffer={"slots": 512}),
        {"i2s": {"hz": 1000, "db": 94.0}},
    )
    try:
        recorder.start()
        nodes.append(node.start())
        wait_until(
            lambda: len(recorder.air()) >= 2 and len(recorder.of_kind("noise")) >= 2,
            60,
            "air and noise readings",
        )
        broker.stop()
        node.wait_for(
            lambda lines: (
                sum(x.startswith("noise seq=") for x in lines) >= 4
                and any(s["buffered"] >= 4 for s in node.samples())
            ),
            60,
            "both kinds buffered during the outage",
        )
        node.kill()  # power cut with both kinds in flash
        before = len(node.samples()) + len(_noise_lines(node))  # one console log for both runs
        rebooted = NodeProcess(node.folder, noise_node_path, heap=BOTH_HEAP)
        nodes.append(rebooted.start())
        rebooted.wait_for(
            lambda _: len(rebooted.samples()) + len(_noise_lines(rebooted)) - before >= 4,
            60,
            "sampling after the reboot",
        )
        boot = [x for x in rebooted.lines() if x.startswith("node esp32-both01")]
        assert re.search(r"reset cause power_on, ([1-9]\d*) readings buffered", boot[-1]), boot
        last = max(s["seq"] for s in rebooted.samples() + _noise_lines(rebooted))
        broker.start()

        def seqs(kind: str) -> set[int]:
            return {json.loads(m.payload)["seq"] for m in recorder.of_kind(kind)}

        wait_until(
            lambda: seqs("air") | seqs("noise") >= set(range(1, last + 1)),
            90,
            "every reading up to the last one taken offline",
        )
        air_seqs, noise_seqs = seqs("air"), seqs("noise")
        assert not air_seqs & noise_seqs  # one seq counter for the node, both kinds
        # Each seq went to the topic of the kind that took it, in order, after the reboot too.
        taken_air = {s["seq"] for s in rebooted.samples()}  # the console of both runs
        taken_noise = {s["seq"] for s in _noise_lines(rebooted)}
        assert taken_air & set(range(1, last + 1)) <= air_seqs
        assert taken_noise & set(range(1, last + 1)) <= noise_seqs
        assert air_seqs <= taken_air and noise_seqs <= taken_noise
        arrivals = [
            json.loads(m.payload)["seq"] for m in recorder.messages if "/status" not in m.topic
        ]
        first_arrivals = list(dict.fromkeys(arrivals))
        assert first_arrivals == sorted(first_arrivals)
        now = time.time()
        for message in recorder.of_kind("air") + recorder.of_kind("noise"):
            reading = parse_message(message.topic, message.payload, now)
            if reading.kind is Kind.NOISE:
                assert reading.values["laeq"] == pytest.approx(94.0, abs=0.5)
        lines = rebooted.lines()
        assert not [x for x in lines if "MemoryError" in x or "CRASH" in x]
        heap_min = min(s["heap_min"] for s in rebooted.samples() + _noise_lines(rebooted))
        assert heap_min > 2048
        print(f"\nair + noise node: lowest free heap, {BOTH_HEAP} heap: {heap_min} B")
    finally:
        recorder.stop()
        broker.stop()


@pytest.mark.parametrize(
    ("mic", "slot", "flags", "level"),
    [
        # L/R tied to VDD, or a driver that swaps the slots: the bring-up finds the right slot.
        ({"hz": 1000, "db": 94.0, "slot": "right"}, 1, (), 94.0),
        # A disconnected INMP441: its SD line reads zeros in both slots.
        (None, 0, ("sensor_missing", "below_floor"), 0.0),
        # A data line stuck at one value (-1: all ones): the DC blocker leaves silence.
        ({"stuck": 0xFFFFFF}, 0, ("sensor_missing", "below_floor"), 0.0),
    ],
    ids=["right-slot", "no-microphone", "stuck-data-line"],
)
def test_noise_node_bring_up_checks_both_slots_and_flags_a_silent_microphone(
    stack: StackInfo,
    noise_node_path: list[Path],
    nodes: list[NodeProcess],
    tmp_path: Path,
    mic: dict[str, Any] | None,
    slot: int,
    flags: tuple[str, ...],
    level: float,
    request: pytest.FixtureRequest,
) -> None:
    node_id = "esp32-" + request.node.callspec.id
    accounts = stack_accounts(stack.mqtt, node_id)
    recorder = _recorder(stack, node_id, "#", accounts.recorder)
    try:
        node = NodeProcess(tmp_path / "node", noise_node_path)
        config = node_config(
            stack.mqtt.port,
            node_id=node_id,
            broker=_login(accounts.node),
            noise={"period_s": 1},
            **NOISE_ONLY,
        )
        node.configure(config, {"pm": None, "bme280": None, "i2s": mic})
        nodes.append(node.start())
        wait_until(lambda: len(recorder.of_kind("noise")) >= 2, 60, "two noise readings")
        bring_up = [x for x in node.lines() if x.startswith("noise: I2S slots")]
        assert bring_up and bring_up[0].endswith(f"reading slot {slot}"), bring_up
        now = time.time()
        for message in recorder.of_kind("noise"):
            reading = parse_message(message.topic, message.payload, now)
            assert reading.flags == flags, reading
            assert reading.values["laeq"] == pytest.approx(level, abs=0.5), reading
    finally:
        recorder.stop()
