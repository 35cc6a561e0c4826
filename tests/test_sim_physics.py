"""The simulated air and the node clock plan: pure host-side checks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from commons.boards import board_path, load_board
from commons.sim import physics
from commons.sim.nodefolder import ClockPlan, NodeSpec, mac_for, sim_config

DAY = 86400


def test_growth_factor_follows_kappa_koehler() -> None:
    assert physics.growth_factor(0.0) == 1.0
    assert physics.growth_factor(50.0) == pytest.approx(1 + 0.4 / 1.65, rel=1e-6)
    assert physics.growth_factor(90.0) > 3.0
    assert physics.growth_factor(100.0) == physics.growth_factor(physics.RH_CAP)


def test_a_week_has_rush_hours_and_humid_episodes(tmp_path: Path) -> None:
    node = physics.sim_node("test-air", "Test", 1.0, 11)
    start = 1_795_651_200 // DAY * DAY  # midnight UTC
    physics.write_timeline(tmp_path / "env.bin", node, start, 7 * 1440)
    air = physics.read_timeline(tmp_path / "env.bin")
    assert len(air) == 7 * 1440
    # More particles at the morning rush (07:30-08:30) than at night (02:00-03:00), once the
    # humidity growth is taken out.
    dry = [a.pm2_5 / physics.growth_factor(a.rh) for a in air]
    rush = [v for i, v in enumerate(dry) if 450 <= i % 1440 < 510]
    night = [v for i, v in enumerate(dry) if 120 <= i % 1440 < 180]
    assert sum(rush) / len(rush) > 1.5 * sum(night) / len(night)
    # Fog and rain spells: hours above 85 % RH, where the optical reading is inflated.
    assert sum(a.rh > 85 for a in air) >= 120
    assert max(a.rh for a in air) >= 88
    assert all(a.pm10 >= a.pm2_5 for a in air)
    assert all(950 < a.pres < 1080 and -20 < a.temp < 45 for a in air)


def test_same_seed_same_air() -> None:
    node = physics.sim_node("x", "Test", 0.5, 9)
    a = physics.air_at(node, 1_795_651_200, random.Random(1))
    b = physics.air_at(node, 1_795_651_200, random.Random(1))
    assert a == b


def test_clock_plan_catches_up() -> None:
    plan = ClockPlan.backfill(now=10_000.0, hours=1.0, real_seconds=10.0)
    assert plan.start == 10_000.0 - 3600
    assert plan.caught_up_at() == pytest.approx(10_010.0)
    live = ClockPlan.backfill(now=10_000.0, hours=0, real_seconds=10.0)
    assert live.speed == 1.0 and live.caught_up_at() == 10_000.0


def test_sim_json_wires_the_board() -> None:
    board = load_board(board_path("air"))
    spec = NodeSpec("sim-x-1", "Test", 0.5, 1, pm_sensor="pms5003", faults=(("i2c_hang_at_s", 5),))
    sim = sim_config(spec, board, ClockPlan.live(0.0), 0, 10)
    assert sim["uart"][0]["device"] == "pms5003"
    assert (sim["uart"][0]["tx"], sim["uart"][0]["rx"]) == (17, 16)
    assert sim["i2c"][0]["devices"][0] == {
        "address": 0x76,
        "device": "bme280",
        "opts": {"calibration": "typical"},
    }
    assert sim["faults"] == {"i2c_hang_at_s": 5}
    assert sim["wifi"]["mac"] == mac_for("sim-x-1") and len(bytes.fromhex(mac_for("a"))) == 6
