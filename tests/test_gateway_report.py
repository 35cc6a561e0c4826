"""``commons gateway status`` as a person reads it: the text made from a gathered report."""

from __future__ import annotations

from typing import Any

from gateway.report import format_report

NOW = 1_800_000_000.0


def _report(live: dict[str, Any]) -> dict[str, Any]:
    counters = {
        "received": 10,
        "written": 9,
        "rejected": 1,
        "rejected_invalid": 1,
        "rejected_write": 0,
        "retried": 0,
        "queued": 0,
    }
    return {
        "gateway": "gw-1",
        "counters": counters,
        "live": {"state": "online", "ts": int(NOW) - 5, "uptime": 60, **live},
        "oldest_queued_s": None,
        "queue_bytes": 4096,
        "queue": "/var/lib/commons/queue.sqlite",
        "uplink_error": "",
        "dead_letters": [],
    }


def test_serial_ports_are_summarised_with_their_problems() -> None:
    text = format_report(
        _report(
            {
                "serial_connected": 2,
                "serial_readings": 120,
                "serial_reconnects": 3,
                "serial_bad_checksum": 4,
                "serial_rejected_wrong_node": 1,
                "serial_garbage_bytes": 0,
            }
        ),
        now=NOW,
    )
    assert "serial      2 port(s) connected, 120 readings, 3 reconnects" in text
    assert "bad_checksum 4, rejected_wrong_node 1" in text
    assert "garbage_bytes" not in text  # nothing to report


def test_no_serial_line_without_serial_ports() -> None:
    assert "serial" not in format_report(_report({}), now=NOW)
