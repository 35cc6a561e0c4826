"""``commons gateway status``: the gateway's health for a person, or as JSON for a script.

Two sources: the queue database (always there, even when the service is stopped) and the
status the running gateway keeps retained on its MQTT status topic (alarm, uplink state,
per-node last seen), read with the gateway's own credentials if the broker answers.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from commons.contract import gateway_status_topic
from gateway.config import GatewaySettings
from gateway.queue import DurableQueue

RETAINED_WAIT_S = 2.0
STALE_NODE_S = 3600.0


def retained_status(settings: GatewaySettings, timeout: float = RETAINED_WAIT_S) -> dict[str, Any]:
    """The gateway's retained status message, or {} when the broker or the message is absent."""
    cfg = settings.mqtt
    received: list[dict[str, Any]] = []
    got = threading.Event()
    # A client id of its own: the gateway's fixed id would take over the service's session.
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{cfg.client_id}-status-{uuid.uuid4().hex[:6]}"
    )
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls_ca is not None:
        client.tls_set(ca_certs=str(cfg.tls_ca))
    topic = gateway_status_topic(settings.gateway_id)

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(ValueError):
            received.append(json.loads(msg.payload))
        got.set()

    client.on_connect = lambda c, *args: c.subscribe(topic, qos=1)
    client.on_message = on_message
    try:
        client.connect(cfg.host, cfg.port, keepalive=10)
    except OSError:
        return {}
    client.loop_start()
    try:
        got.wait(timeout)
    finally:
        client.loop_stop()
        client.disconnect()
    return received[-1] if received else {}


def gather(settings: GatewaySettings, dead_letters: int = 0) -> dict[str, Any]:
    queue = DurableQueue(settings.queue_path)
    try:
        oldest = queue.oldest_received()
        report: dict[str, Any] = {
            "gateway": settings.gateway_id,
            "queue": str(settings.queue_path),
            "counters": queue.counters(),
            "oldest_queued_s": round(time.time() - oldest, 1) if oldest is not None else None,
            "queue_bytes": queue.size_bytes(),
            "uplink_error": queue.state("uplink_error"),
            "dead_letters": [
                {
                    "received": d.received,
                    "stage": d.stage,
                    "topic": d.topic,
                    "payload": d.payload.decode("utf-8", "replace")[:200],
                    "reason": d.reason,
                }
                for d in queue.dead_letters(dead_letters)
            ]
            if dead_letters
            else [],
        }
    finally:
        queue.close()
    report["live"] = retained_status(settings)
    return report


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _serial_lines(live: dict[str, Any]) -> list[str]:
    """The serial ports' totals (PM sensors and USB-serial nodes), when the gateway has any."""
    serial = {k.removeprefix("serial_"): v for k, v in live.items() if k.startswith("serial_")}
    if not serial:
        return []
    lines = [
        f"  serial      {serial.get('connected', 0)} port(s) connected, "
        f"{serial.get('readings', 0)} readings, {serial.get('reconnects', 0)} reconnects"
    ]
    problems = {
        name: value
        for name, value in sorted(serial.items())
        if value and name.startswith(("rejected_", "bad_", "garbage", "dropped", "missing"))
    }
    if problems:
        lines.append("              " + ", ".join(f"{k} {v}" for k, v in problems.items()))
    return lines


def format_report(report: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    c = report["counters"]
    live = report["live"]
    lines = [f"gateway {report['gateway']}"]
    if live:
        state = live.get("state", "?")
        age = _age(now - live["ts"]) if isinstance(live.get("ts"), int) else "?"
        lines.append(f"  state       {state} (status {age} old, up {_age(live.get('uptime', 0))})")
        if live.get("alarm"):
            lines.append(f"  ALARM       {live['alarm']}")
        if "disk_free" in live:
            lines.append(f"  disk free   {live['disk_free'] / 1e6:,.0f} MB")
    else:
        lines.append("  state       unknown (no retained status: broker unreachable or never ran)")
    oldest = report["oldest_queued_s"]
    lines += [
        f"  queue       {c['queued']} waiting"
        + (f", oldest {_age(oldest)}" if oldest is not None else "")
        + f", {report['queue_bytes'] / 1e6:.1f} MB ({report['queue']})",
        f"  received    {c['received']}",
        f"  written     {c['written']}",
        f"  rejected    {c['rejected']} ({c['rejected_invalid']} invalid, "
        f"{c['rejected_write']} refused by InfluxDB)",
        f"  rate limit  {c.get('rate_limited', 0)} refused",
        f"  retried     {c['retried']} write attempts",
    ]
    if report["uplink_error"]:
        lines.append(f"  uplink      last error: {report['uplink_error']}")
    lines += _serial_lines(live or {})
    seen = live.get("last_seen", {}) if live else {}
    if seen:
        lines.append(f"  nodes       {len(seen)} heard from")
        for node, ts in sorted(seen.items(), key=lambda item: item[1]):
            mark = "  (silent)" if now - ts > STALE_NODE_S else ""
            lines.append(f"    {node:32} last seen {_age(now - ts)} ago{mark}")
    if report["dead_letters"]:
        lines.append("  newest dead letters:")
        for d in report["dead_letters"]:
            lines.append(f"    [{d['stage']}] {d['topic']}: {d['reason']}")
    return "\n".join(lines)
