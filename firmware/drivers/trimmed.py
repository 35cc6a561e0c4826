"""Trimmed mean of integer samples, kept as running sums so adding allocates nothing."""


class TrimmedMean:
    """Mean of the samples added since ``reset()``, the lowest and highest dropped.

    As airrohr does for the SDS011: min and max are dropped only when there are
    more than two samples; with one or two the plain mean is returned.
    """

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.low = 0
        self.high = 0

    def reset(self) -> None:
        self.count = 0
        self.total = 0
        self.low = 0
        self.high = 0

    def add(self, value: int) -> None:
        if self.count == 0:
            self.low = value
            self.high = value
        elif value < self.low:
            self.low = value
        elif value > self.high:
            self.high = value
        self.total += value
        self.count += 1

    def mean(self) -> float | None:
        """The trimmed mean in the samples' unit, or None when nothing was added."""
        count = self.count
        if count == 0:
            return None
        if count > 2:
            return (self.total - self.low - self.high) / (count - 2)
        return self.total / count
