"""The per-node token bucket."""

from __future__ import annotations

from gateway.ratelimit import GRACE_MAX_S, GRACE_MIN_S, NodeRateLimiter, grace_after


def test_burst_then_sustained_rate() -> None:
    limiter = NodeRateLimiter(rate=10.0, burst=5.0)
    assert [limiter.allow("a", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.take_limited("a") == 2
    assert limiter.take_limited("a") == 0
    # 0.3 s later three tokens have come back.
    assert [limiter.allow("a", 0.3) for _ in range(4)] == [True] * 3 + [False]


def test_nodes_are_limited_separately() -> None:
    limiter = NodeRateLimiter(rate=1.0, burst=2.0)
    for _ in range(10):
        limiter.allow("flood", 0.0)
    assert limiter.allow("calm", 0.0)
    assert limiter.allow("calm", 0.0)


def test_suspension_lets_a_backlog_through_and_then_limits_again() -> None:
    limiter = NodeRateLimiter(rate=1.0, burst=2.0)
    limiter.suspend(100.0)
    assert all(limiter.allow("a", 50.0) for _ in range(1000))
    assert [limiter.allow("a", 100.0) for _ in range(3)] == [True, True, False]


def test_grace_grows_with_the_time_away_within_bounds() -> None:
    assert grace_after(0.0) == GRACE_MIN_S
    assert GRACE_MIN_S < grace_after(3600.0) < GRACE_MAX_S
    assert grace_after(30 * 86400.0) == GRACE_MAX_S
