"""Per-node rate limiting: a token bucket for each node id, so one node cannot flood the rest.

The limit is generous: a node replaying its flash buffer after an outage publishes much
faster than its sampling interval, and that is normal. A node beyond it is misbehaving:
its excess messages are acknowledged (the broker would otherwise redeliver them forever),
counted, and a sample of them is kept in the dead-letter table with the reason.

Arrival at the gateway is bursty for a reason no node controls: after the gateway was away,
the broker delivers everything it kept for the gateway's session at once. So the limit is
suspended for a grace period after each reconnection, long enough for that backlog to drain
(draining runs thousands of messages a second, a fleet's backlog accrues a few a second).
"""

from __future__ import annotations

from dataclasses import dataclass

# Nodes silent for this long are forgotten, so the table stays bounded.
IDLE_FORGET_S = 600.0
# Grace after a reconnection: a tenth of the time away, within these bounds.
GRACE_MIN_S = 10.0
GRACE_MAX_S = 600.0
GRACE_SHARE = 0.1


def grace_after(away_s: float) -> float:
    """Seconds the limit stays suspended after the gateway was away for ``away_s``."""
    return min(GRACE_MAX_S, max(GRACE_MIN_S, away_s * GRACE_SHARE))


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
        self.suspended_until = 0.0

    def suspend(self, until: float) -> None:
        """Let everything through until ``until`` (the broker is delivering a backlog)."""
        self.suspended_until = max(self.suspended_until, until)
        self._buckets.clear()

    def allow(self, node: str, now: float) -> bool:
        if now < self.suspended_until:
            return True
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
