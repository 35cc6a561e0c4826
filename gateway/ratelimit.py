"""Per-node rate limiting: a token bucket for each node id, so one node cannot flood the rest.

The limit is generous: a node replaying its flash buffer after an outage publishes much
faster than its sampling interval, and that is normal. A node beyond it is misbehaving:
its excess messages are acknowledged (the broker would otherwise redeliver them forever),
counted, and a sample of them is kept in the dead-letter table with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

# Nodes silent for this long are forgotten, so the table stays bounded.
IDLE_FORGET_S = 600.0


@dataclass
class _Bucket:
    tokens: float
    updated: float
    limited: int = 0  # messages refused since the last sample was kept


class NodeRateLimiter:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._last_sweep = 0.0

    def allow(self, node: str, now: float) -> bool:
        bucket = self._buckets.get(node)
        if bucket is None:
            bucket = self._buckets[node] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if now - self._last_sweep > IDLE_FORGET_S:
            self._sweep(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        bucket.limited += 1
        return False

    def take_limited(self, node: str) -> int:
        """Messages of ``node`` refused since the last call (for the dead-letter sample)."""
        bucket = self._buckets.get(node)
        if bucket is None:
            return 0
        count, bucket.limited = bucket.limited, 0
        return count

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        idle = [n for n, b in self._buckets.items() if now - b.updated > IDLE_FORGET_S]
        for node in idle:
            del self._buckets[node]
