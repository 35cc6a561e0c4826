"""The node registry: which nodes exist and the neighbourhood (area) each belongs to.

A SQLite file (``$COMMONS_HOME/registry.sqlite`` by default), written by ``commons node``
and read by the gateway to tag points with their area.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from commons.contract import GATEWAY_SEGMENT, NODE_ID_PATTERN

AREA_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.'-]{0,63}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    area TEXT,
    added REAL NOT NULL
);
"""


class RegistryError(ValueError):
    """A bad node id or area, or a node that is not (or already) registered."""


@dataclass(frozen=True)
class Node:
    id: str
    area: str | None
    added: float


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


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, node_id: str, area: str | None = None) -> Node:
        check_node_id(node_id)
        if area is not None:
            check_area(area)
        node = Node(node_id, area, time.time())
        try:
            self._db.execute(
                "INSERT INTO nodes (id, area, added) VALUES (?, ?, ?)",
                (node.id, node.area, node.added),
            )
        except sqlite3.IntegrityError:
            raise RegistryError(f"node {node_id!r} is already registered") from None
        return node

    def set_area(self, node_id: str, area: str | None) -> None:
        if area is not None:
            check_area(area)
        cursor = self._db.execute("UPDATE nodes SET area = ? WHERE id = ?", (area, node_id))
        if cursor.rowcount == 0:
            raise RegistryError(f"node {node_id!r} is not registered")

    def remove(self, node_id: str) -> None:
        cursor = self._db.execute("DELETE FROM nodes WHERE id = ?", (node_id,))
        if cursor.rowcount == 0:
            raise RegistryError(f"node {node_id!r} is not registered")

    def nodes(self) -> list[Node]:
        rows = self._db.execute("SELECT id, area, added FROM nodes ORDER BY id").fetchall()
        return [Node(*row) for row in rows]

    def areas(self) -> dict[str, str]:
        """node id → area, for every node that has one."""
        rows = self._db.execute("SELECT id, area FROM nodes WHERE area IS NOT NULL").fetchall()
        return dict(rows)


class AreaLookup:
    """The gateway's view of the registry: node → area, re-read at most every ``ttl`` s."""

    def __init__(self, path: Path, ttl: float = 30.0) -> None:
        self.path = path
        self.ttl = ttl
        self._areas: dict[str, str] = {}
        self._loaded = float("-inf")

    def area(self, node_id: str) -> str | None:
        now = time.monotonic()
        if now - self._loaded > self.ttl:
            self.refresh()
        return self._areas.get(node_id)

    def refresh(self) -> None:
        self._loaded = time.monotonic()
        if not self.path.exists():
            self._areas = {}
            return
        registry = Registry(self.path)
        try:
            self._areas = registry.areas()
        finally:
            registry.close()
