"""Grafana's InfluxQL macros expanded the way Grafana expands them, for running panel queries.

- ``$timeFilter`` → ``time >= now() - 48h and time <= now()`` for a relative range (Grafana's
  InfluxDB datasource writes relative ranges with ``now()`` and absolute ones in ``ms``).
- ``$__interval`` → the range divided by the panel's data points (its width in pixels), rounded
  to one of Grafana's round intervals (``rangeutil.roundInterval``), and never below the panel's
  minimum interval (``interval``) or the datasource's (``timeInterval``, 1m in provisioning).
- ``$__interval_ms`` → the same interval in milliseconds.

A panel with a relative time override (``timeFrom``) uses it instead of the dashboard's range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# Grafana's rangeutil.roundInterval: (upper bound of the raw interval, rounded interval), in ms.
_ROUNDING = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
YEAR_MS = 31_536_000_000
# A full-width panel on a common screen.
DEFAULT_DATA_POINTS = 1_000
DATASOURCE_MIN_INTERVAL = "1m"


def duration_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text)
    if match is None:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def round_interval(ms: float) -> int:
    for bound, rounded in _ROUNDING:
        if ms < bound:
            return rounded
    return YEAR_MS


def format_interval(ms: int) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class Expansion:
    range_ms: int
    interval_ms: int

    def apply(self, query: str, now: int | None = None) -> str:
        """The query as Grafana sends it; with ``now`` (UTC s), as it would have at that moment
        (``now()`` pinned, so a snapshot of data gives the same answer whenever it is asked)."""
        time_filter = f"time >= now() - {format_interval(self.range_ms)} and time <= now()"
        text = (
            query.replace("$timeFilter", time_filter)
            .replace("$__interval_ms", str(self.interval_ms))
            .replace("$__interval", format_interval(self.interval_ms))
        )
        return text if now is None else text.replace("now()", f"{now}s")


def expansion(
    dashboard: dict[str, object], panel: dict[str, object], data_points: int = DEFAULT_DATA_POINTS
) -> Expansion:
    """The macros of ``panel`` on ``dashboard`` at its default (relative) time range."""
    time_from = panel.get("timeFrom")
    if isinstance(time_from, str):
        range_ms = duration_ms(time_from)
    else:
        time = dashboard["time"]
        assert isinstance(time, dict) and time["to"] == "now", time
        range_ms = duration_ms(str(time["from"]).removeprefix("now-"))
    minimum = max(
        duration_ms(str(panel.get("interval") or DATASOURCE_MIN_INTERVAL)),
        duration_ms(DATASOURCE_MIN_INTERVAL),
    )
    points = panel.get("maxDataPoints") or data_points
    assert isinstance(points, int | float)
    interval = max(round_interval(range_ms / points), minimum)
    return Expansion(range_ms, interval)
