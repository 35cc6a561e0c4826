"""The air a simulated node sits in: diurnal PM, temperature, humidity episodes, pressure.

The dry values follow the site's traffic (rush hours at 8 and 18 h) and the hour of the day
(``dry_air``). On top: humidity episodes (night fog, rain spells: RH 85-98 % for hours),
during which an optical PM sensor over-reads because particles take up water (bulk
kappa-Koehler growth, REFERENCE §4.2: C = 1 + (kappa/rho)/(1/aw - 1)), and a slow synoptic
pressure swing.

The timeline is written as ``env.bin`` for the emulated sensors (commons/sim/mpy/sim_env.py):
one record per ``step`` seconds, five little-endian uint16.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass
from pathlib import Path

RECORD = struct.Struct("<HHHHH")
STEP_S = 60
# Bulk hygroscopic growth for urban aerosol (REFERENCE §4.2, Crilley et al. 2018).
KAPPA = 0.4
PARTICLE_DENSITY = 1.65
RH_CAP = 98.0
EPISODE_CHANCE = 0.35  # share of days with a humid episode
PRESSURE_SWING_HPA = 8.0
PRESSURE_PERIOD_S = 4.5 * 86400


@dataclass(frozen=True)
class SimNode:
    node_id: str
    area: str
    # Site character: a busy road has more PM (and noise) than a park edge.
    traffic: float
    seed: int


def _rush_hours(hour: float) -> float:
    """0..1 traffic intensity over the day (local time = UTC here): peaks at 8 h and 18 h.

    The emulated microphone's street noise follows the same hours (commons/sim/mpy/sim_i2s.py).
    """
    morning = math.exp(-((hour - 8.0) ** 2) / 3.0)
    evening = math.exp(-((hour - 18.0) ** 2) / 4.0)
    daytime = 0.35 if 6.5 <= hour <= 22.0 else 0.05
    return min(1.0, daytime + morning + 0.8 * evening)


def dry_air(node: SimNode, ts: int, rng: random.Random) -> dict[str, float]:
    """PM2.5, PM10 (ug/m3), temperature (degC), RH (%), pressure (hPa) without humid episodes."""
    hour = (ts % 86400) / 3600.0
    intensity = _rush_hours(hour)
    background = 6.0 + 3.0 * math.sin(2 * math.pi * (ts / 86400.0) / 3.0)
    pm2_5 = max(0.5, background + 22.0 * node.traffic * intensity + rng.gauss(0, 1.5))
    pm10 = pm2_5 * (1.35 + 0.2 * rng.random())
    temp = 12.0 + 6.0 * math.sin(2 * math.pi * (hour - 9.0) / 24.0) + rng.gauss(0, 0.2)
    rh = min(99.0, max(20.0, 70.0 - 2.2 * (temp - 12.0) + rng.gauss(0, 1.0)))
    return {
        "pm2_5": round(pm2_5, 1),
        "pm10": round(pm10, 1),
        "temp": round(temp, 2),
        "rh": round(rh, 1),
        "pres": round(1013.0 + rng.gauss(0, 0.3), 1),
    }


@dataclass(frozen=True)
class Air:
    pm2_5: float  # as the optical sensor sees it (growth included), ug/m3
    pm10: float
    temp: float  # degC
    rh: float  # %
    pres: float  # hPa


def growth_factor(rh: float) -> float:
    """Mass over-reading of an optical sensor at ``rh`` % (1 when dry)."""
    aw = min(rh, RH_CAP) / 100.0
    if aw <= 0:
        return 1.0
    return 1.0 + (KAPPA / PARTICLE_DENSITY) / (1.0 / aw - 1.0)


def _episode(seed: int, day: int) -> tuple[float, float, float] | None:
    """(start s into the day, duration s, peak RH) of the day's humid episode, if any."""
    rng = random.Random(seed * 100_003 + day)
    if rng.random() >= EPISODE_CHANCE:
        return None
    night = rng.random() < 0.6
    start = rng.uniform(0, 6) if night else rng.uniform(6, 20)
    return start * 3600, rng.uniform(2, 6) * 3600, rng.uniform(88, 97)


def _envelope(seed: int, ts: int) -> tuple[float, float]:
    """(0..1 strength, peak RH) of a humid episode at ``ts`` (yesterday's may run past midnight)."""
    day = ts // 86400
    for d in (day, day - 1):
        ep = _episode(seed, d)
        if ep is None:
            continue
        start, length, peak = ep
        x = (ts - d * 86400 - start) / length
        if 0 <= x <= 1:
            return math.sin(math.pi * x) ** 0.5, peak
    return 0.0, 0.0


def air_at(node: SimNode, ts: int, rng: random.Random) -> Air:
    dry = dry_air(node, ts, rng)
    strength, peak = _envelope(node.seed, ts)
    rh = float(dry["rh"])
    temp = float(dry["temp"])
    if strength:
        rh = rh + (peak - rh) * strength
        temp -= 1.5 * strength
    growth = growth_factor(rh)
    phase = (node.seed % 7) / 7 * 2 * math.pi
    pres = float(dry["pres"]) + PRESSURE_SWING_HPA * math.sin(
        2 * math.pi * ts / PRESSURE_PERIOD_S + phase
    )
    return Air(
        pm2_5=float(dry["pm2_5"]) * growth,
        pm10=float(dry["pm10"]) * growth,
        temp=temp,
        rh=min(rh, 100.0),
        pres=pres,
    )


def _u16(value: float) -> int:
    return max(0, min(0xFFFF, round(value)))


def write_timeline(path: Path, node: SimNode, start: int, count: int, step: int = STEP_S) -> None:
    """``count`` records from ``start`` (UTC s, a multiple of ``step``) to ``path``."""
    rng = random.Random(node.seed)
    out = bytearray()
    for i in range(count):
        air = air_at(node, start + i * step, rng)
        out += RECORD.pack(
            _u16(air.pm2_5 * 10),
            _u16(air.pm10 * 10),
            _u16((air.temp + 50) * 100),
            _u16(air.rh * 100),
            _u16(air.pres * 10),
        )
    path.write_bytes(bytes(out))


def read_timeline(path: Path) -> list[Air]:
    """The records of ``path`` (tests, inspection)."""
    data = path.read_bytes()
    return [
        Air(a / 10, b / 10, c / 100 - 50, d / 100, e / 10)
        for a, b, c, d, e in RECORD.iter_unpack(data)
    ]


def sim_node(node_id: str, area: str, traffic: float, seed: int) -> SimNode:
    return SimNode(node_id, area, traffic=traffic, seed=seed)
