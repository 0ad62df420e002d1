"""Per-connector rate limits: token buckets, refilled continuously."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` records per second on average, bursts up to ``burst`` records."""

    __slots__ = ("_clock", "_level", "_stamp", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._level = burst
        self._stamp = clock()

    def take(self, amount: float) -> float:
        """Take ``amount`` tokens; returns 0 if granted, else seconds until it would be."""
        now = self._clock()
        self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
        self._stamp = now
        if amount <= self._level:
            self._level -= amount
            return 0.0
        # A request larger than the burst can never pass whole: say when a full bucket is back.
        needed = min(amount, self.burst) - self._level
        return needed / self.rate


class RateLimiter:
    """One bucket per connector, rebuilt when the connector's limit changes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, connector_id: str, rate: float | None, records: int) -> float:
        """0 when ``records`` may pass now, else the seconds to wait (for ``Retry-After``)."""
        if rate is None or rate <= 0:
            return 0.0
        bucket = self._buckets.get(connector_id)
        if bucket is None or bucket.rate != rate:
            # One second's worth of records may arrive at once.
            bucket = self._buckets[connector_id] = TokenBucket(rate, max(rate, 1.0), self._clock)
        return bucket.take(records)
