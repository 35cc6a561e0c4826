"""Exponential backoff with full jitter (AWS architecture blog's "full jitter" variant)."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 60.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """Seconds to wait before the next attempt: uniform in [0, min(cap, base·2^n)]."""
        ceiling = min(self.cap, self.base * 2**self.attempts)
        self.attempts += 1
        return self._rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.attempts = 0
