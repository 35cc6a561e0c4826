"""Readings for export tests: a database and a ``$COMMONS_HOME`` of their own, known values.

Two days (2024-03-30 and 2024-03-31, the day Europe/Paris has 23 hours) of readings every
10 minutes from four nodes: two registered in one area, one registered in another area far
away, and one that is not registered (no public location). Written as line protocol
(``ingest.schema.to_line``) straight into a fresh database.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commons.contract import Kind, Reading
from commons.home import STACK_FILE, StackInfo
from ingest.dbinit import init_database
from ingest.influx import InfluxHTTP
from ingest.registry import Location, Registry
from ingest.schema import RAW_RP, to_line

START = datetime(2024, 3, 30, tzinfo=UTC)
END = datetime(2024, 4, 1, tzinfo=UTC)
INTERVAL_S = 600
# Exact locations: private. None of these numbers may appear in an export.
EXACT = {
    "a": Location(48.856613, 2.352222),
    "n": Location(48.857123, 2.353111),
    "s": Location(45.764043, 4.835659),
}
# Node a is silent for these hours of the first day (a gap, incomplete hours).
SILENT_HOURS = range(3, 6)
# ... and sends only 2 of its 6 readings in this hour (an incomplete, invalid hourly mean).
PARTIAL_HOUR = 8


@dataclass(frozen=True)
class Scene:
    home: Path
    database: str
    air: str  # registered, area north
    noise: str  # registered, area north
    south: str  # registered, area south
    unregistered: str  # area north, no registry entry
    north: str
    south_area: str
    public: dict[str, Location]  # node → public location

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.air, self.noise, self.south, self.unregistered)

    def influx(self, url: str) -> InfluxHTTP:
        return InfluxHTTP(url, self.database, retention_policy=RAW_RP)

    def registry(self) -> Registry:
        return Registry(self.home / "registry.sqlite")


def _air_values(i: int) -> dict[str, float]:
    pm25 = 5.0 + (i % 17) * 0.37
    values = {
        "pm1": round(pm25 * 0.7, 3),
        "pm2_5": pm25,
        "pm10": pm25 + 4.2,
        "rh": 40.0 + (i % 45),  # above 70 % now and then: rh_high on the storage side
        "pres": 1013.25,
    }
    if i % 3:
        values["temp"] = 12.5 + (i % 7) / 10
    return values


def _noise_values(i: int) -> dict[str, float]:
    laeq = 50.0 + (i % 24) / 2
    return {
        "period": float(INTERVAL_S),
        "laeq": laeq,
        "lafmax": laeq + 12.0,
        "lafmin": laeq - 9.0,
        "la10": laeq + 3.0,
        "la50": laeq - 1.0,
        "la90": laeq - 5.0,
    }


def readings(node: str, kind: Kind, offset_s: int = 0, skip: range = range(0)) -> list[Reading]:
    out = []
    steps = int((END - START).total_seconds()) // INTERVAL_S
    for i in range(steps):
        ts = int(START.timestamp()) + i * INTERVAL_S + offset_s
        hour = (ts - int(START.timestamp())) // 3600
        if hour in skip or (skip and hour == PARTIAL_HOUR and i % 6 >= 2):
            continue
        flags = ("warmup",) if i < 2 else ()
        values = _air_values(i) if kind is Kind.AIR else _noise_values(i)
        out.append(Reading(node, kind, ts, i, "1.4.0", flags, values))
    return out


def make_scene(stack: StackInfo, root: Path) -> Scene:
    tag = uuid.uuid4().hex[:8]
    database = f"export_{tag}"
    home = root / "home"
    home.mkdir(parents=True)
    description: dict[str, Any] = stack.to_json()
    description["influx"] = {"url": stack.influx.url, "database": database}
    (home / STACK_FILE).write_text(json.dumps(description))
    scene_nodes = {k: f"{k}-{tag}" for k in ("a", "n", "s", "u")}
    north, south = f"north-{tag}", f"south-{tag}"
    areas = {"a": north, "n": north, "s": south, "u": north}
    public: dict[str, Location] = {}
    with Registry(home / "registry.sqlite") as registry:
        for key in ("a", "n", "s"):
            node = registry.add(scene_nodes[key], areas[key], EXACT[key], interval=INTERVAL_S)
            assert node.public is not None
            public[node.id] = node.public
    influx = InfluxHTTP(stack.influx.url, database, retention_policy=RAW_RP)
    init_database(influx)
    lines: list[str] = []
    for key, kind, offset, skip in (
        ("a", Kind.AIR, 0, SILENT_HOURS),
        ("n", Kind.NOISE, 30, range(0)),
        ("s", Kind.AIR, 5, range(0)),
        ("u", Kind.AIR, 7, range(0)),
    ):
        lines.extend(to_line(r, areas[key]) for r in readings(scene_nodes[key], kind, offset, skip))
    status = Reading(
        scene_nodes["a"],
        Kind.STATUS,
        int(START.timestamp()) + 60,
        1,
        "1.4.0",
        (),
        {"uptime": 60.0, "heap_free": 81234.0},
        {"state": "online"},
    )
    lines.append(
        to_line(status, north, (public[scene_nodes["a"]].lat, public[scene_nodes["a"]].lon))
    )
    for at in range(0, len(lines), 5000):
        result = influx.write(lines[at : at + 5000])
        assert result.status == 204, result
    influx.close()
    return Scene(
        home=home,
        database=database,
        air=scene_nodes["a"],
        noise=scene_nodes["n"],
        south=scene_nodes["s"],
        unregistered=scene_nodes["u"],
        north=north,
        south_area=south,
        public=public,
    )


def stored(
    influx: InfluxHTTP, measurement: str, node: str, rp: str = RAW_RP
) -> list[dict[str, Any]]:
    """What InfluxDB holds for ``node``, as rows of the export pipeline (time as datetime)."""
    q = (
        f'SELECT * FROM "{influx.database}"."{rp}"."{measurement}" '
        f"WHERE \"node\" = '{node}' ORDER BY time ASC"
    )
    out = []
    for series in influx.series(q):
        for values in series["values"]:
            row = {k: v for k, v in zip(series["columns"], values, strict=True) if v is not None}
            row["time"] = datetime.fromtimestamp(row["time"], UTC)
            row.setdefault("area", None)
            out.append(row)
    return out
