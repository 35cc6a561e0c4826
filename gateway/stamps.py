"""Receive times for readings a node could not date, one second apart per node.

A reading without ``ts`` (its node's clock was never set) is stamped with the second the
gateway received it (contract: flag ``clock_gateway``). InfluxDB keeps one point per
measurement, tags and second, so two such readings of one node in the same second would
overwrite each other — and that is exactly what a node does when it reconnects and sends the
readings it buffered while offline, all at once. The ingress therefore gives each undated
reading of a node a receive time at least one second after the previous one's. The time is
decided once, when the message is queued, so a retried write stamps it the same way.
"""

from __future__ import annotations

# A payload that dates itself has this key; anything else gets a gateway stamp downstream.
_TS_KEY = b'"ts"'


class ArrivalStamps:
    """Per node, the last whole second given to an undated reading."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def received(self, node: str, payload: bytes, now: float) -> float:
        """The receive time to queue ``payload`` with: ``now``, or a later whole second."""
        if _TS_KEY in payload:
            return now
        second = int(now)
        last = self._last.get(node)
        if last is not None and second <= last:
            second = last + 1
        self._last[node] = second
        return now if second == int(now) else float(second)
