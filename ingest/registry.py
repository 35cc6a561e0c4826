"""The node registry: which nodes exist, their neighbourhood (area) and where they are.

A SQLite file (``$COMMONS_HOME/registry.sqlite`` by default), written by ``commons node``
and read by the gateway to tag points with their area and public location.

A node has two locations. Its exact one (``lat``/``lon``) is private: it says which house a
resident's sensor hangs on, and only the operator sees it. Its public one is the centre of the
cell of a grid (about 100 m by default) that holds the exact location; it is the only location
that ever leaves the registry — into InfluxDB, dashboards and exports.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commons.contract import GATEWAY_SEGMENT, NODE_ID_PATTERN

AREA_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.'-]{0,63}$")

# Side of a public location's grid cell, in metres: a street, not a house.
DEFAULT_GRID_M = 100.0
# Metres per degree of latitude (mean, WGS 84); a degree of longitude is this times cos(lat).
_M_PER_DEG_LAT = 111_320.0
# Decimal places kept for public coordinates (~1 m): enough to place the cell, no false precision.
_PUBLIC_DECIMALS = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    area TEXT,
    added REAL NOT NULL
);
"""
# Columns added after the first release; an older registry file gains them when opened.
_ADDED_COLUMNS = {
    "lat": "REAL",
    "lon": "REAL",
    "grid_m": "REAL",
    "public_lat": "REAL",
    "public_lon": "REAL",
    "interval_s": "REAL",
    "kinds": "TEXT",
    "pm_sensor": "TEXT",
}

# What a node measures (its board's sensors) and which PM sensor it has, when the operator
# said so: QA thresholds and dashboards follow them.
KINDS = ("air", "noise")
PM_SENSORS = ("sds011", "pms5003")


class RegistryError(ValueError):
    """A bad node id, area or location, or a node that is not (or already) registered."""


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True)
class Node:
    id: str
    area: str | None
    added: float
    # Exact location: private, for the operator only.
    location: Location | None = None
    # Public location: the centre of the ``grid_m`` cell holding the exact one.
    public: Location | None = None
    grid_m: float | None = None
    # The node's reporting interval in seconds, when known (completeness of means).
    interval: float | None = None
    # What it measures ("air", "noise"); empty when not known.
    kinds: tuple[str, ...] = ()
    pm_sensor: str | None = None


def check_node_id(node_id: str) -> str:
    if node_id == GATEWAY_SEGMENT or not NODE_ID_PATTERN.match(node_id):
        raise RegistryError(f"node id {node_id!r} is not [a-z0-9-]{{3,32}}")
    return node_id


def check_area(area: str) -> str:
    if not AREA_PATTERN.match(area):
        raise RegistryError(
            f"area {area!r}: 1-64 letters, digits, spaces or _.'- starting with a letter or digit"
        )
    return area


def check_location(lat: float, lon: float) -> Location:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise RegistryError(f"latitude {lat!r} is not within -90..90 degrees")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise RegistryError(f"longitude {lon!r} is not within -180..180 degrees")
    return Location(lat, lon)


def check_hardware(kinds: tuple[str, ...], pm_sensor: str | None) -> None:
    for kind in kinds:
        if kind not in KINDS:
            raise RegistryError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if pm_sensor is not None and pm_sensor not in PM_SENSORS:
        raise RegistryError(f"PM sensor {pm_sensor!r} is not one of {', '.join(PM_SENSORS)}")


def coarsen(location: Location, grid_m: float = DEFAULT_GRID_M) -> Location:
    """The centre of the grid cell of side ``grid_m`` metres that holds ``location``.

    Rows are ``grid_m`` tall in latitude; each row is cut into cells ``grid_m`` wide at the
    row's centre latitude, so every location of a cell maps to the same public point and
    nearby nodes in one cell are indistinguishable.
    """
    if not (math.isfinite(grid_m) and grid_m > 0):
        raise RegistryError(f"grid {grid_m!r} m: must be a positive number of metres")
    dlat = grid_m / _M_PER_DEG_LAT
    row = math.floor((location.lat + 90.0) / dlat)
    lat = min(-90.0 + (row + 0.5) * dlat, 90.0)
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = min(grid_m / (_M_PER_DEG_LAT * cos_lat), 360.0)
    col = math.floor((location.lon + 180.0) / dlon)
    lon = -180.0 + (col + 0.5) * dlon
    if lon > 180.0:
        lon -= 360.0
    return Location(round(lat, _PUBLIC_DECIMALS), round(lon, _PUBLIC_DECIMALS))


_COLUMNS = "id, area, added, lat, lon, grid_m, public_lat, public_lon, interval_s, kinds, pm_sensor"


def _node(row: tuple[Any, ...]) -> Node:
    node_id, area, added, lat, lon, grid_m, plat, plon, interval, kinds, pm_sensor = row
    return Node(
        id=node_id,
        area=area,
        added=added,
        location=None if lat is None else Location(lat, lon),
        public=None if plat is None else Location(plat, plon),
        grid_m=grid_m,
        interval=interval,
        kinds=tuple(kinds.split(",")) if kinds else (),
        pm_sensor=pm_sensor,
    )


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(nodes)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE nodes ADD COLUMN {name} {kind}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self,
        node_id: str,
        area: str | None = None,
        location: Location | None = None,
        grid_m: float = DEFAULT_GRID_M,
        interval: float | None = None,
    ) -> Node:
        check_node_id(node_id)
        if area is not None:
            check_area(area)
        if interval is not None and not (math.isfinite(interval) and interval > 0):
            raise RegistryError(f"interval {interval!r} s: must be a positive number of seconds")
        try:
            self._db.execute(
                "INSERT INTO nodes (id, area, added, interval_s) VALUES (?, ?, ?, ?)",
                (node_id, area, time.time(), interval),
            )
        except sqlite3.IntegrityError:
            raise RegistryError(f"node {node_id!r} is already registered") from None
        if location is not None:
            return self.set_location(node_id, location, grid_m)
        return self.node(node_id)

    def node(self, node_id: str) -> Node:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM nodes WHERE id = ?", (node_id,)).fetchone()
        if row is None:
            raise RegistryError(f"node {node_id!r} is not registered")
        return _node(row)

    def set_area(self, node_id: str, area: str | None) -> None:
        if area is not None:
            check_area(area)
        cursor = self._db.execute("UPDATE nodes SET area = ? WHERE id = ?", (area, node_id))
        if cursor.rowcount == 0:
            raise RegistryError(f"node {node_id!r} is not registered")

    def set_location(
        self, node_id: str, location: Location | None, grid_m: float = DEFAULT_GRID_M
    ) -> Node:
        """Place the node (``None`` forgets its location); its public location follows."""
        if location is None:
            values: tuple[float | None, ...] = (None,) * 5
        else:
            check_location(location.lat, location.lon)
            public = coarsen(location, grid_m)
            values = (location.lat, location.lon, grid_m, public.lat, public.lon)
        cursor = self._db.execute(
            "UPDATE nodes SET lat = ?, lon = ?, grid_m = ?, public_lat = ?, public_lon = ?"
            " WHERE id = ?",
            (*values, node_id),
        )
        if cursor.rowcount == 0:
            raise RegistryError(f"node {node_id!r} is not registered")
        return self.node(node_id)

    def set_hardware(
        self, node_id: str, kinds: tuple[str, ...], pm_sensor: str | None = None
    ) -> Node:
        """What the node measures and with which PM sensor (empty / None: not known)."""
        check_hardware(kinds, pm_sensor)
        text = ",".join(k for k in KINDS if k in kinds) or None
        cursor = self._db.execute(
            "UPDATE nodes SET kinds = ?, pm_sensor = ? WHERE id = ?", (text, pm_sensor, node_id)
        )
        if cursor.rowcount == 0:
            raise RegistryError(f"node {node_id!r} is not registered")
        return self.node(node_id)

    def set_interval(self, node_id: str, interval: float | None) -> None:
        if interval is not None and not (math.isfinite(interval) and interval > 0):
            raise RegistryError(f"interval {interval!r} s: must be a positive number of seconds")
        cursor = self._db.execute(
            "UPDATE nodes SET interval_s = ? WHERE id = ?", (interval, node_id)
        )
        if cursor.rowcount == 0:
            raise RegistryError(f"node {node_id!r} is not registered")

    def remove(self, node_id: str) -> None:
        cursor = self._db.execute("DELETE FROM nodes WHERE id = ?", (node_id,))
        if cursor.rowcount == 0:
            raise RegistryError(f"node {node_id!r} is not registered")

    def nodes(self, area: str | None = None) -> list[Node]:
        if area is None:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM nodes ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM nodes WHERE area = ? ORDER BY id", (area,)
            ).fetchall()
        return [_node(row) for row in rows]

    def areas(self) -> dict[str, str]:
        """node id → area, for every node that has one."""
        rows = self._db.execute("SELECT id, area FROM nodes WHERE area IS NOT NULL").fetchall()
        return dict(rows)

    def area_names(self) -> list[str]:
        """Every area that has at least one node, sorted."""
        rows = self._db.execute(
            "SELECT DISTINCT area FROM nodes WHERE area IS NOT NULL ORDER BY area"
        ).fetchall()
        return [str(row[0]) for row in rows]


@dataclass(frozen=True)
class PublicInfo:
    """What the gateway may attach to a node's points: area and public location only."""

    area: str | None
    public: Location | None


class NodeLookup:
    """The gateway's view of the registry: node → public info, re-read at most every ``ttl`` s."""

    def __init__(self, path: Path, ttl: float = 30.0) -> None:
        self.path = path
        self.ttl = ttl
        self._info: dict[str, PublicInfo] = {}
        self._loaded = float("-inf")

    def info(self, node_id: str) -> PublicInfo | None:
        now = time.monotonic()
        if now - self._loaded > self.ttl:
            self.refresh()
        return self._info.get(node_id)

    def area(self, node_id: str) -> str | None:
        info = self.info(node_id)
        return None if info is None else info.area

    def refresh(self) -> None:
        self._loaded = time.monotonic()
        if not self.path.exists():
            self._info = {}
            return
        with Registry(self.path) as registry:
            self._info = {n.id: PublicInfo(n.area, n.public) for n in registry.nodes()}
