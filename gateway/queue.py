"""The gateway's durable queue: SQLite in WAL mode with full fsync.

The ingress stores each MQTT message as it came (topic, payload, receive time) in
``inbox`` and acknowledges it to the broker only after :meth:`DurableQueue.commit`
returned. The uplink turns inbox messages into points and removes them only after InfluxDB
answered 2xx, or moves them to ``dead_letter`` with the reason they cannot be stored. A
reading is therefore never in no one's hands. Counters live in the same transactions as
the rows they count, so they survive ``kill -9`` and stay exact.

Each process or thread opens its own :class:`DurableQueue` on the same file.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    stage TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS late_hours (
    measurement TEXT NOT NULL,
    hour INTEGER NOT NULL,
    PRIMARY KEY (measurement, hour)
) WITHOUT ROWID;
"""

COUNTERS = (
    "received",  # messages taken from the broker
    "written",  # points InfluxDB accepted (readings and the gateway's own status)
    "rejected",  # messages moved to the dead-letter table
    "rejected_invalid",  # ... because they broke the message contract
    "rejected_write",  # ... because InfluxDB refused the data itself
    "retried",  # write attempts that failed and were tried again
    "rate_limited",  # messages refused because their node exceeded its rate
    "queued",  # messages waiting now
)

STAGE_INVALID = "invalid"
STAGE_WRITE = "write"
STAGE_RATE_LIMIT = "rate_limit"

# Below this much free disk the queue takes no new messages, so it can never be the thing
# that fills the disk and corrupts what it already holds.
DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Message:
    """An MQTT message as it was received."""

    topic: str
    payload: bytes
    received: float


@dataclass(frozen=True)
class QueuedMessage:
    id: int
    received: float
    topic: str
    payload: bytes


@dataclass(frozen=True)
class Rejected:
    message: QueuedMessage
    stage: str
    reason: str


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received: float
    stage: str
    topic: str
    payload: bytes
    reason: str


class QueueFullError(Exception):
    """The queue may not grow: no new work is taken (and nothing is acknowledged)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"queue {path}: {reason}; refusing new messages")
        self.path = path
        self.reason = reason


class DurableQueue:
    """One connection to the queue database."""

    def __init__(
        self,
        path: Path,
        max_bytes: int | None = None,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        # One instance is used by one thread at a time, though maybe not the one creating it.
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

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _add(self, deltas: dict[str, int]) -> None:
        self._db.executemany(
            "UPDATE counters SET value = value + ? WHERE name = ?",
            [(delta, name) for name, delta in deltas.items() if delta],
        )

    def size_bytes(self) -> int:
        """Bytes the queue's data takes: pages in use, not the file size (which never shrinks)."""
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def refusal(self) -> str | None:
        """Why the queue must not take more right now, or None when it may."""
        if self.max_bytes is not None:
            size = self.size_bytes()
            if size >= self.max_bytes:
                return f"holds {size} bytes, limit {self.max_bytes}"
        free = shutil.disk_usage(self.path.parent).free
        if free < self.min_free_bytes:
            return f"{free} bytes free on disk, less than {self.min_free_bytes}"
        return None

    # -- ingress ----------------------------------------------------------------------

    def commit(
        self,
        messages: Sequence[Message],
        from_broker: bool = True,
        rate_limited: int = 0,
        samples: Sequence[tuple[Message, str]] = (),
    ) -> None:
        """Store messages in one transaction; only then may they be acknowledged.

        ``from_broker`` false: the gateway's own messages, not counted as ``received``.
        ``rate_limited``: messages received but refused by the per-node rate limit, of
        which ``samples`` (message, reason) are kept in the dead-letter table.

        Raises :class:`QueueFullError`, storing nothing, when the queue may not grow.
        """
        if not messages and not rate_limited:
            return
        refusal = self.refusal()
        if refusal is not None:
            raise QueueFullError(self.path, refusal)
        with self._transaction():
            self._db.executemany(
                "INSERT INTO inbox (received, topic, payload) VALUES (?, ?, ?)",
                [(m.received, m.topic, m.payload) for m in messages],
            )
            self._db.executemany(
                "INSERT INTO dead_letter (received, stage, topic, payload, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                [(m.received, STAGE_RATE_LIMIT, m.topic, m.payload, why) for m, why in samples],
            )
            received = len(messages) + rate_limited if from_broker else 0
            self._add({"received": received, "queued": len(messages), "rate_limited": rate_limited})

    # -- uplink -----------------------------------------------------------------------

    def peek(self, limit: int) -> list[QueuedMessage]:
        """The oldest ``limit`` messages, in arrival order, without removing them."""
        rows = self._db.execute(
            "SELECT id, received, topic, payload FROM inbox ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [QueuedMessage(*row) for row in rows]

    def settle(
        self,
        written: Sequence[QueuedMessage] = (),
        rejected: Sequence[Rejected] = (),
        late_hours: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Remove messages that are done: written to InfluxDB, or dead-lettered with a reason.

        ``late_hours``: (measurement, hour start) that the written points touched outside
        the continuous queries' window, kept until their aggregates are recomputed.
        """
        done = [(m.id,) for m in written] + [(r.message.id,) for r in rejected]
        with self._transaction():
            self._db.executemany("DELETE FROM inbox WHERE id = ?", done)
            self._db.executemany(
                "INSERT INTO dead_letter (received, stage, topic, payload, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (r.message.received, r.stage, r.message.topic, r.message.payload, r.reason)
                    for r in rejected
                ],
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO late_hours (measurement, hour) VALUES (?, ?)", late_hours
            )
            invalid = sum(1 for r in rejected if r.stage == STAGE_INVALID)
            self._add(
                {
                    "written": len(written),
                    "rejected": len(rejected),
                    "rejected_invalid": invalid,
                    "rejected_write": len(rejected) - invalid,
                    "queued": -len(done),
                }
            )

    def count_retry(self, error: str) -> None:
        with self._transaction():
            self._add({"retried": 1})
            self._set_state("uplink_error", error)

    def clear_error(self) -> None:
        self._set_state("uplink_error", "")

    def _set_state(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO state (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def mark_alive(self, ts: float) -> None:
        """Remember that the gateway was running at ``ts`` (to know how long it was away)."""
        with self._transaction():
            self._set_state("alive_at", repr(ts))

    def alive_at(self) -> float | None:
        value = self.state("alive_at")
        return float(value) if value else None

    def state(self, name: str) -> str:
        row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return "" if row is None else str(row[0])

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
        row = self._db.execute("SELECT received FROM inbox ORDER BY id LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT id, received, stage, topic, payload, reason FROM dead_letter "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [DeadLetter(*row) for row in rows]
