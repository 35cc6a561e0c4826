"""The durable queue on a real SQLite file: counters, settling, refusal, reopening."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.queue import (
    STAGE_INVALID,
    STAGE_WRITE,
    DurableQueue,
    Message,
    QueueFullError,
    Rejected,
)


def _messages(n: int, start: int = 0) -> list[Message]:
    return [
        Message(f"commons/v1/node-{i % 3}/air", b'{"i": %d}' % i, 1.0 + i)
        for i in range(start, start + n)
    ]


def test_commit_peek_settle_keep_counters_exact(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite")
    queue.commit(_messages(10))
    batch = queue.peek(4)
    assert [m.payload for m in batch] == [b'{"i": %d}' % i for i in range(4)]
    queue.settle(
        written=batch[:2],
        rejected=[
            Rejected(batch[2], STAGE_INVALID, "v: missing"),
            Rejected(batch[3], STAGE_WRITE, "InfluxDB HTTP 400: field type conflict"),
        ],
        late_hours=[("air", 3600), ("air", 3600), ("noise", 7200)],
    )
    counters = queue.counters()
    assert counters["received"] == 10
    assert counters["written"] == 2
    assert counters["rejected"] == 2
    assert counters["rejected_invalid"] == 1
    assert counters["rejected_write"] == 1
    assert counters["queued"] == 6
    assert [m.payload for m in queue.peek(100)] == [b'{"i": %d}' % i for i in range(4, 10)]
    letters = queue.dead_letters()
    assert {(d.stage, d.reason) for d in letters} == {
        (STAGE_INVALID, "v: missing"),
        (STAGE_WRITE, "InfluxDB HTTP 400: field type conflict"),
    }
    assert letters[0].topic.startswith("commons/v1/")
    assert queue.late_hours() == {"air": [3600], "noise": [7200]}
    queue.clear_late_hours("air", [3600])
    assert queue.late_hours() == {"noise": [7200]}
    queue.close()


def test_everything_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = DurableQueue(path)
    queue.commit(_messages(5))
    queue.count_retry("HTTP 503: unavailable")
    queue.close()
    again = DurableQueue(path)
    assert len(again.peek(100)) == 5
    assert again.counters()["retried"] == 1
    assert again.state("uplink_error") == "HTTP 503: unavailable"
    again.clear_error()
    assert again.state("uplink_error") == ""
    again.close()


def test_the_gateways_own_messages_are_not_counted_as_received(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite")
    queue.commit(_messages(1), from_broker=False)
    assert queue.counters()["received"] == 0
    assert queue.counters()["queued"] == 1
    queue.close()


def test_a_full_queue_refuses_and_stores_nothing(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite", max_bytes=64 * 1024)
    while queue.refusal() is None:
        queue.commit(_messages(200))
    before = queue.counters()
    with pytest.raises(QueueFullError) as caught:
        queue.commit(_messages(1))
    assert "limit" in caught.value.reason
    assert queue.counters() == before
    queue.close()


def test_too_little_free_disk_refuses(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite", min_free_bytes=2**62)
    with pytest.raises(QueueFullError) as caught:
        queue.commit(_messages(1))
    assert "free on disk" in caught.value.reason
    assert queue.counters()["received"] == 0
    queue.close()


def test_a_drained_queue_takes_work_again(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite", max_bytes=64 * 1024)
    while queue.refusal() is None:
        queue.commit(_messages(200))
    while batch := queue.peek(500):
        queue.settle(written=batch)
    assert queue.refusal() is None
    queue.commit(_messages(1))
    assert queue.counters()["queued"] == 1
    queue.close()
