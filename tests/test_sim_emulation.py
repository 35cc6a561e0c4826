"""The simulator's ESP32 emulation under the MicroPython unix port, with the real drivers.

Each test writes a node folder (``sim.json`` and the air timeline, as ``commons node simulate``
does) and runs a short script there with the simulator's ``MICROPYPATH``; the script prints one
``RESULT <json>`` line.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from commons.micropython import micropython_binary, micropython_env
from commons.sim import physics
from commons.sim.build import EMULATION_HEAP_KB, node_path

RUN_TIMEOUT_S = 60.0
WIRING: dict[str, Any] = {
    "uart": [{"tx": 17, "rx": 16, "device": "sds011", "opts": {}}],
    "i2c": [
        {
            "scl": 22,
            "sda": 21,
            "devices": [{"address": 0x76, "device": "bme280", "opts": {"calibration": "typical"}}],
        }
    ],
    "wifi": {"ssid": "net", "password": "pw", "mac": "26a1b2c3d4e5"},
}


@pytest.fixture(scope="module")
def sim_path(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return node_path(tmp_path_factory.mktemp("sim-build"))


def _node(folder: Path, sim: dict[str, Any], hours: float = 2.0) -> physics.Air:
    """Write sim.json and a timeline around now; return the air at the timeline's start."""
    start = int(time.time()) // 60 * 60 - int(hours * 3600)
    count = int(hours * 60) + 120
    node = physics.sim_node("test-node", "Test", 1.0, 7)
    physics.write_timeline(folder / "env.bin", node, start, count)
    sim = {"seed": 7, "env": {"file": "env.bin", "start": start, "step": 60, "count": count}, **sim}
    (folder / "sim.json").write_text(json.dumps(sim))
    return physics.read_timeline(folder / "env.bin")[0]


def _run(
    folder: Path,
    path: list[Path],
    script: str,
    heap: str = "2M",
    cause: str = "PWRON",
) -> subprocess.CompletedProcess[str]:
    (folder / "script.py").write_text(script)
    return subprocess.run(
        [str(micropython_binary()), "-X", f"heapsize={heap}", "script.py"],
        cwd=folder,
        env=micropython_env(path, {"COMMONS_SIM_RESET": cause}),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def _result(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise AssertionError(f"no result:\n{proc.stdout}{proc.stderr}")


def test_sds011_frames_parse_with_the_real_driver(tmp_path: Path, sim_path: list[Path]) -> None:
    sim = json.loads(json.dumps(WIRING))
    sim["uart"][0]["opts"] = {"corrupt_rate": 0.25}
    sim["clock"] = {"start": time.time() - 7200, "real_start": time.time(), "speed": 200}
    _node(tmp_path, sim)
    script = """
import json, machine, time
from drivers import sds011
import sim_env
uart = machine.UART(2, baudrate=9600, tx=17, rx=16, timeout=0, rxbuf=1024)
dust = sds011.SDS011(uart)
dust.setup()
out = []
for _ in range(4):
    r = dust.measure(15000, 10)
    out.append([r.pm2_5, r.pm10, r.samples])
env = sim_env.environment().now()
s = dust.sync
print("RESULT " + json.dumps({"readings": out, "env": env[:2], "frames": s.frames,
      "bad": s.bad_checksum + s.bad_format, "garbage": s.garbage}))
"""
    result = _result(_run(tmp_path, sim_path, script))
    pm2_5, pm10 = result["env"]
    for got2_5, got10, samples in result["readings"]:
        assert samples >= 5
        assert got2_5 == pytest.approx(pm2_5, rel=0.2, abs=1.0)
        assert got10 == pytest.approx(pm10, rel=0.2, abs=1.0)
        assert got10 >= got2_5
    # A quarter of the frames were corrupted or cut: counted and skipped, never parsed.
    assert result["bad"] + result["garbage"] > 0
    assert result["frames"] >= 20


def test_pms5003_frames_parse_with_the_real_driver(tmp_path: Path, sim_path: list[Path]) -> None:
    sim = json.loads(json.dumps(WIRING))
    sim["uart"][0] = {"tx": 17, "rx": 16, "device": "pms5003", "opts": {"corrupt_rate": 0.1}}
    sim["clock"] = {"start": time.time() - 7200, "real_start": time.time(), "speed": 200}
    _node(tmp_path, sim)
    script = """
import json, machine
from drivers import pms5003
import sim_env
uart = machine.UART(2, baudrate=9600, tx=17, rx=16, timeout=0, rxbuf=1024)
dust = pms5003.PMS5003(uart)
r = dust.measure(30000, 10)
env = sim_env.environment().now()
print("RESULT " + json.dumps({"atm": [r.pm2_5_atm, r.pm10_atm], "cf1": r.pm2_5, "env": env[:2]}))
"""
    result = _result(_run(tmp_path, sim_path, script))
    pm2_5, pm10 = result["env"]
    assert result["atm"][0] == pytest.approx(pm2_5, rel=0.2, abs=2.0)
    assert result["atm"][1] == pytest.approx(pm10, rel=0.2, abs=2.0)
    assert result["cf1"] >= result["atm"][0]


def test_bme280_registers_give_the_simulated_air(tmp_path: Path, sim_path: list[Path]) -> None:
    _node(tmp_path, dict(WIRING))
    script = """
import json, machine
from drivers import bme280
import sim_env
i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21), freq=100000)
sensor = bme280.BME280(bme280.BME280I2C(i2c, 0x76))
r = sensor.read()
env = sim_env.environment().now()
print("RESULT " + json.dumps({"read": [r.temperature, r.humidity, r.pressure], "env": env[2:],
      "scan": i2c.scan()}))
"""
    result = _result(_run(tmp_path, sim_path, script))
    temp, rh, pres = result["env"]
    got_t, got_rh, got_p = result["read"]
    assert got_t == pytest.approx(temp, abs=0.1)
    assert got_rh == pytest.approx(rh, abs=0.5)
    assert got_p == pytest.approx(pres, abs=0.2)
    assert result["scan"] == [0x76]


def test_sensors_on_other_pins_are_not_there(tmp_path: Path, sim_path: list[Path]) -> None:
    _node(tmp_path, dict(WIRING))
    script = """
import json, errno, machine
from drivers import sds011
from drivers.errors import SensorMissing
uart = machine.UART(2, baudrate=9600, tx=4, rx=13, timeout=0)
try:
    sds011.SDS011(uart).setup()
    missing = False
except SensorMissing:
    missing = True
i2c = machine.I2C(0, scl=machine.Pin(18), sda=machine.Pin(19))
try:
    i2c.readfrom_mem(0x76, 0xD0, 1)
    nodev = False
except OSError as exc:
    nodev = exc.errno == errno.ENODEV
bad = []
for args in ((6,), (34, machine.Pin.OUT)):
    try:
        machine.Pin(*args)
    except ValueError:
        bad.append(args[0])
print("RESULT " + json.dumps({"missing": missing, "nodev": nodev, "bad": bad}))
"""
    assert _result(_run(tmp_path, sim_path, script)) == {
        "missing": True,
        "nodev": True,
        "bad": [6, 34],
    }


def test_accelerated_clock_and_ntp(tmp_path: Path, sim_path: list[Path]) -> None:
    now = time.time()
    _node(tmp_path, {**WIRING, "clock": {"start": now - 3600, "real_start": now, "speed": 500}})
    script = """
import json, time, ntptime
before = time.gmtime()[0]
t0 = time.ticks_ms()
time.sleep_ms(60000)
slept = time.ticks_diff(time.ticks_ms(), t0)
ntptime.settime()
print("RESULT " + json.dumps({"year_before": before, "slept": slept, "now": time.time()}))
"""
    started = time.monotonic()
    result = _result(_run(tmp_path, sim_path, script))
    real = time.monotonic() - started
    assert result["year_before"] == 2000  # an RTC never set
    assert result["slept"] >= 60000
    assert real < 20  # a minute of the node's time took well under it
    # The node's clock runs an hour behind, catching up at 500x.
    assert now - 3600 + 60 <= result["now"] <= now - 3600 + 60 + 500 * real


def test_watchdog_resets_when_not_fed(tmp_path: Path, sim_path: list[Path]) -> None:
    _node(tmp_path, dict(WIRING))
    script = """
import machine, time
print("cause", machine.reset_cause())
wdt = machine.WDT(timeout=1000)
for _ in range(3):
    time.sleep_ms(500)
    wdt.feed()
print("fed")
time.sleep_ms(5000)
print("RESULT survived")
"""
    proc = _run(tmp_path, sim_path, script)
    assert proc.returncode == 87, proc.stdout + proc.stderr
    assert "fed" in proc.stdout and "RESULT" not in proc.stdout
    proc = _run(
        tmp_path, sim_path, "import machine\nprint('RESULT', machine.reset_cause())\n", cause="WDT"
    )
    assert _result(proc) == 3  # machine.WDT_RESET


def test_wlan_joins_only_the_configured_network(tmp_path: Path, sim_path: list[Path]) -> None:
    _node(tmp_path, dict(WIRING))
    script = """
import json, network
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("other", "pw")
wrong = [w.isconnected(), w.status()]
w.connect("net", "pw")
print("RESULT " + json.dumps({"wrong": wrong, "ok": w.isconnected(), "rssi": w.status("rssi"),
      "mac": w.config("mac").hex(), "same": w is network.WLAN(network.STA_IF)}))
"""
    result = _result(_run(tmp_path, sim_path, script))
    assert result["wrong"] == [False, 201]  # STAT_NO_AP_FOUND
    assert result["ok"] is True and -100 < result["rssi"] < 0
    assert result["mac"] == "26a1b2c3d4e5" and result["same"] is True


def test_emulation_fits_its_heap_allowance(tmp_path: Path, sim_path: list[Path]) -> None:
    _node(tmp_path, dict(WIRING))
    script = """
import gc
gc.collect()
before = gc.mem_alloc()
import time, select, machine, network, ntptime
import sim_env
uart = machine.UART(2, baudrate=9600, tx=17, rx=16, timeout=0, rxbuf=1024)
i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21))
uart.any()
i2c.readfrom_mem(0x76, 0xD0, 1)
sim_env.environment().now()
gc.collect()
print("RESULT", gc.mem_alloc() - before)
"""
    used = _result(_run(tmp_path, sim_path, script))
    assert used < (EMULATION_HEAP_KB - 8) * 1024, f"the emulation holds {used} bytes"


def test_noise_node_emulation_fits_its_heap_allowance(tmp_path: Path, sim_path: list[Path]) -> None:
    _node(tmp_path, {"wifi": WIRING["wifi"], "uart": [], "i2c": [], **MIC_WIRING})
    script = """
import gc
gc.collect()
before = gc.mem_alloc()
import time, select, machine, network, ntptime
i2s = machine.I2S(0, sck=machine.Pin(32), ws=machine.Pin(25), sd=machine.Pin(33), mode=0,
                  bits=32, format=1, rate=48000, ibuf=16384)
buf = bytearray(2048)
i2s.readinto(buf)
del buf
gc.collect()
print("RESULT", gc.mem_alloc() - before)
"""
    used = _result(_run(tmp_path, sim_path, script))
    assert used < (EMULATION_HEAP_KB - 8) * 1024, f"the emulation holds {used} bytes"
    print(f"\nnoise node emulation: {used} B")


def test_wifi_outages_on_the_node_clock(tmp_path: Path, sim_path: list[Path]) -> None:
    wifi = {**WIRING["wifi"], "drop_every_s": 100, "drop_for_s": 30}
    now = time.time()
    sim = {**WIRING, "wifi": wifi, "clock": {"start": now - 3600, "real_start": now, "speed": 500}}
    _node(tmp_path, sim)
    script = """
import json, network, time
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("net", "pw")
seen = []
for _ in range(20):
    seen.append(w.isconnected())
    time.sleep_ms(10000)
print("RESULT " + json.dumps(seen))
"""
    seen = _result(_run(tmp_path, sim_path, script))
    # Up for 70 s of every 100 s, down for 30: sampled every 10 s of node time.
    assert 11 <= seen.count(True) <= 15
    assert seen.count(False) >= 5


MIC_WIRING: dict[str, Any] = {
    "i2s": [{"sck": 32, "ws": 25, "sd": 33, "slot": "left"}],
    "mic": {"source": "street", "level_db": 70.0, "seed": 3},
}
_MIC_SCRIPT = """
import json
from machine import I2S, Pin
from noise.meter import NoiseConfig, NoiseMeter

def mic(fmt, sd=33):
    return I2S(0, sck=Pin(32), ws=Pin(25), sd=Pin(sd), mode=I2S.RX, bits=32, format=fmt,
               rate=48000, ibuf=16384)

def words(i2s, n):
    buf = bytearray(8 * n)
    got = i2s.readinto(buf)
    return [int.from_bytes(buf[i:i + 4], "little") for i in range(0, got, 4)]

out = {}
stereo = mic(I2S.STEREO)
first = words(stereo, 4096)  # the microphone's start-up: 4096 frames of zeros
later = words(stereo, 256)
out["startup_zero"] = not any(first)
out["left_talks"] = any(later[0::2]) and all(w & 0xFF == 0 for w in later[0::2])
out["right_zero"] = not any(later[1::2])
out["other_pins"] = any(words(mic(I2S.STEREO, sd=34), 4352))
mono = mic(I2S.MONO)
meter = NoiseMeter(NoiseConfig(period_s=1))
buf = bytearray(2048)
reading = None
while reading is None:
    n = mono.readinto(buf)
    reading = meter.feed(buf, n >> 2)
out["laeq"] = reading.laeq
out["la90"] = reading.la90
out["flags"] = reading.flags()
print("RESULT " + json.dumps(out))
"""


def test_emulated_microphone_slots_and_level_through_the_firmware_meter(
    tmp_path: Path, sim_path: list[Path]
) -> None:
    _node(tmp_path, dict(MIC_WIRING))
    result = _result(_run(tmp_path, sim_path, _MIC_SCRIPT))
    assert result["startup_zero"] and result["left_talks"] and result["right_zero"]
    assert result["other_pins"] is False  # a bus on other pins hears nothing
    # A steady 70 dB(A) for a -26 dBFS microphone, measured by the firmware's own meter.
    assert result["laeq"] == pytest.approx(70.0, abs=0.5)
    assert result["la90"] == pytest.approx(70.0, abs=1.0)
    assert result["flags"] == []


@pytest.mark.parametrize(
    ("faults", "slot", "mono"),
    [
        ({"i2s_quirk": "swap"}, 1, False),  # the driver swaps the slots
        ({"i2s_quirk": "mono_zeros"}, 0, False),  # a mono read of the left slot gives zeros
        ({"mic": "missing"}, None, False),
        ({"mic": "stuck"}, 0, True),
    ],
    ids=["swapped-slots", "mono-zeros", "missing", "stuck"],
)
def test_emulated_microphone_faults(
    tmp_path: Path, sim_path: list[Path], faults: dict[str, str], slot: int | None, mono: bool
) -> None:
    _node(tmp_path, {**MIC_WIRING, "faults": faults})
    script = """
import json
from machine import I2S, Pin
def read(fmt, frames):
    i2s = I2S(0, sck=Pin(32), ws=Pin(25), sd=Pin(33), mode=I2S.RX, bits=32, format=fmt,
              rate=48000, ibuf=16384)
    buf = bytearray(8 * frames)
    i2s.readinto(buf)
    return [int.from_bytes(buf[i:i + 4], "little") for i in range(len(buf) - 2048, len(buf), 4)]
s = read(I2S.STEREO, 4352)
m = read(I2S.MONO, 4352 * 2)
print("RESULT " + json.dumps({"left": any(s[0::2]), "right": any(s[1::2]), "mono": any(m),
      "stuck": s[0] if s[0] == s[2] == s[4] else None}))
"""
    result = _result(_run(tmp_path, sim_path, script))
    assert result["left"] is (slot == 0)
    assert result["right"] is (slot == 1)
    assert result["mono"] is mono
    if faults.get("mic") == "stuck":
        assert result["stuck"] == 0xFFFFFFFF  # the data line high: all ones


def test_street_noise_follows_the_hour_of_the_node_clock(
    tmp_path: Path, sim_path: list[Path]
) -> None:
    _node(tmp_path, dict(MIC_WIRING))
    script = """
import json, math
from sim_i2s import Street
street = Street({"traffic": 1.0, "seed": 4})
hours = []
for h in range(24):
    t0 = 1_800_000_000 // 86400 * 86400 + h * 3600
    e = sum(street.energy(t0 + s / 4) for s in range(0, 4 * 600)) / 2400
    hours.append(10 * math.log10(e))
print("RESULT " + json.dumps(hours))
"""
    hours = _result(_run(tmp_path, sim_path, script))
    night, rush = max(hours[1:5]), min(hours[7], hours[8], hours[17], hours[18])
    assert rush > night + 8, hours  # a busy road: traffic by day, quiet nights
    assert 45 < night < 65 and 65 < rush < 80, hours


def test_calibration_recording_on_a_node_whose_driver_swaps_the_slots(
    tmp_path: Path, sim_path: list[Path]
) -> None:
    from commons.noise import analyze

    mic = {"source": "street", "level_db": 94.0, "seed": 5}  # a calibrator's level
    _node(tmp_path, {**MIC_WIRING, "mic": mic, "faults": {"i2s_quirk": "swap"}})
    script = """
from noise import record
print("RESULT", record.record("cal.wav", 2, 32, 25, 33))
"""
    proc = _run(tmp_path, sim_path, script)
    assert _result(proc) == 2 * 48000
    assert "record: I2S slots left=0 right=" in proc.stdout and "reading slot 1" in proc.stdout
    readings = list(analyze(tmp_path / "cal.wav", period_s=1))
    assert readings and all(r["laeq"] == pytest.approx(94.0, abs=0.5) for r in readings)
