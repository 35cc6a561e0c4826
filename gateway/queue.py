"""The gateway's durable queue: SQLite in WAL mode with full fsync.

Rows are line-protocol points waiting for InfluxDB. A message from the broker is
acknowledged only after :meth:`DurableQueue.commit` returned, and a row is deleted only
after InfluxDB answered 2xx, so a reading is never in no one's hands. Rejected input goes
to ``dead_letter`` with its reason. Counters live in the same transactions as the rows
they count, so they survive ``kill -9`` and stay exact.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    measurement TEXT NOT NULL,
    ts INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    stage TEXT NOT NULL,
    topic TEXT,
    payload BLOB,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS late_hours (
    measurement TEXT NOT NULL,
    hour INTEGER NOT NULL,
    PRIMARY KEY (measurement, hour)
) WITHOUT ROWID;
"""

COUNTERS = (
    "received",  # messages taken from the broker (valid or not)
    "enqueued",  # points put in the queue (readings and the gateway's own status)
    "written",  # points InfluxDB accepted
    "rejected",  # messages or points moved to the dead-letter table
    "rejected_invalid",  # ... because they broke the message contract
    "rejected_write",  # ... because InfluxDB refused the data itself
    "retried",  # write attempts that failed and were retried
    "queued",  # points waiting now
)

STAGE_INVALID = "invalid"
STAGE_WRITE = "write"


@dataclass(frozen=True)
class QueuedPoint:
    id: int
    measurement: str
    ts: int
    line: str


@dataclass(frozen=True)
class Rejection:
    """A message that broke the contract, kept with its reason."""

    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True)
class Accepted:
    """A valid message, as the line-protocol point to write."""

    measurement: str
    ts: int
    line: str


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received: float
    stage: str
    topic: str | None
    payload: bytes | None
    reason: str


class QueueFullError(Exception):
    """The queue's disk budget is spent: no new work is taken (and nothing is acknowledged)."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(f"queue {path} holds {size} bytes, limit {limit}: refusing new points")
        self.path = path
        self.size = size
        self.limit = limit


class DurableQueue:
    """One connection to the queue database. Use one instance per thread."""

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        # Each instance is used by one thread at a time, though maybe not the one creating it.
        self._db = sqlite3.connect(
            path, isolation_level=None, timeout=60.0, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk when it returns, so an acknowledged message survives
        # power loss, not only a crash of this process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO counters (name, value) VALUES (?, 0)",
                [(name,) for name in COUNTERS],
            )

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _add(self, deltas: dict[str, int]) -> None:
        self._db.executemany(
            "UPDATE counters SET value = value + ? WHERE name = ?",
            [(delta, name) for name, delta in deltas.items() if delta],
        )

    def size_bytes(self) -> int:
        """Bytes on disk: the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total

    # -- producer side ----------------------------------------------------------------

    def commit(
        self,
        accepted: Sequence[Accepted],
        rejected: Sequence[Rejection] = (),
        received: int | None = None,
    ) -> None:
        """Store a group of messages in one transaction; only then may they be acknowledged.

        Raises :class:`QueueFullError` (storing nothing) when the disk budget is spent.
        """
        if self.max_bytes is not None and accepted:
            size = self.size_bytes()
            if size >= self.max_bytes:
                raise QueueFullError(self.path, size, self.max_bytes)
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT INTO points (received, measurement, ts, line) VALUES (?, ?, ?, ?)",
                [(now, a.measurement, a.ts, a.line) for a in accepted],
            )
            self._db.executemany(
                "INSERT INTO dead_letter (received, stage, topic, payload, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                [(now, STAGE_INVALID, r.topic, r.payload, r.reason) for r in rejected],
            )
            self._add(
                {
                    "received": len(accepted) + len(rejected) if received is None else received,
                    "enqueued": len(accepted),
                    "queued": len(accepted),
                    "rejected": len(rejected),
                    "rejected_invalid": len(rejected),
                }
            )

    # -- consumer side ----------------------------------------------------------------

    def peek(self, limit: int) -> list[QueuedPoint]:
        """The oldest ``limit`` points, in arrival order, without removing them."""
        rows = self._db.execute(
            "SELECT id, measurement, ts, line FROM points ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [QueuedPoint(*row) for row in rows]

    def complete(self, points: Sequence[QueuedPoint], late_before: int | None = None) -> None:
        """InfluxDB accepted these points: delete them; remember late hours to re-aggregate.

        ``late_before``: points older than this (UTC seconds) fall outside the continuous
        queries' resampling window, so their hours are recorded for recomputation.
        """
        with self._transaction():
            self._db.executemany("DELETE FROM points WHERE id = ?", [(p.id,) for p in points])
            if late_before is not None:
                self._db.executemany(
                    "INSERT OR IGNORE INTO late_hours (measurement, hour) VALUES (?, ?)",
                    {(p.measurement, p.ts - p.ts % 3600) for p in points if p.ts < late_before},
                )
            self._add({"written": len(points), "queued": -len(points)})

    def reject(self, point: QueuedPoint, reason: str) -> None:
        """InfluxDB refused this point as bad data: move it to the dead-letter table."""
        with self._transaction():
            self._db.execute("DELETE FROM points WHERE id = ?", (point.id,))
            self._db.execute(
                "INSERT INTO dead_letter (received, stage, topic, payload, reason) "
                "VALUES (?, ?, NULL, ?, ?)",
                (time.time(), STAGE_WRITE, point.line.encode("utf-8"), reason),
            )
            self._add({"rejected": 1, "rejected_write": 1, "queued": -1})

    def count_retry(self) -> None:
        with self._transaction():
            self._add({"retried": 1})

    def late_hours(self, limit: int = 1000) -> dict[str, list[int]]:
        rows = self._db.execute(
            "SELECT measurement, hour FROM late_hours ORDER BY measurement, hour LIMIT ?",
            (limit,),
        ).fetchall()
        hours: dict[str, list[int]] = {}
        for measurement, hour in rows:
            hours.setdefault(measurement, []).append(hour)
        return hours

    def clear_late_hours(self, measurement: str, hours: Iterable[int]) -> None:
        with self._transaction():
            self._db.executemany(
                "DELETE FROM late_hours WHERE measurement = ? AND hour = ?",
                [(measurement, hour) for hour in hours],
            )

    # -- inspection -------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def oldest_received(self) -> float | None:
        row = self._db.execute("SELECT received FROM points ORDER BY id LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT id, received, stage, topic, payload, reason FROM dead_letter "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [DeadLetter(*row) for row in rows]


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
