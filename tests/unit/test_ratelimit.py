from __future__ import annotations

import pytest

from gateway.ratelimit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    assert bucket.take(10) == 0
    assert bucket.take(1) == pytest.approx(0.1)
    clock.now += 0.5
    assert bucket.take(5) == 0
    assert bucket.take(5) == pytest.approx(0.5)


def test_a_request_larger_than_the_burst_waits_for_a_full_bucket() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    bucket.take(10)
    assert bucket.take(50) == pytest.approx(1.0)


def test_limiter_is_per_connector_and_off_without_a_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert limiter.check("a", None, 10_000) == 0
    assert limiter.check("a", 5, 5) == 0
    assert limiter.check("a", 5, 1) > 0
    assert limiter.check("b", 5, 5) == 0
    # A changed limit takes effect at once with a fresh bucket.
    assert limiter.check("a", 100, 50) == 0
