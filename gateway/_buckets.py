"""Token-bucket arithmetic, kept as one number per bucket (pure: no clock, no storage).

A bucket is ``full_at``: the moment it is full again (the generic cell rate algorithm's
"theoretical arrival time"). Before it the bucket owes ``full_at - now`` seconds of refill; at or
after it the bucket is full, which is also what a bucket never used looks like, so a stored bucket
that is full holds nothing worth keeping (``_bucket_table.py`` reuses its slot). What is owed is
kept in seconds, not tokens: a connector whose limit changes keeps its debt, so processes that see
the change at different moments cannot hand out a fresh burst each.
"""

from __future__ import annotations

# Float rounding must not refuse a request that takes exactly what is left.
_EPSILON = 1e-9


def burst_of(rate: float) -> float:
    """One second's worth of records may arrive at once (and at least one record)."""
    return max(rate, 1.0)


def take(
    full_at: float, now: float, rate: float, burst: float, amount: float
) -> tuple[float, float]:
    """Take ``amount`` tokens: (the new ``full_at``, 0) if granted, else (unchanged, the wait in s).

    ``amount`` is at most ``burst``: a request larger than the burst never fits in the bucket,
    and is the caller's to refuse (``ratelimit.py``) rather than to wait for.
    """
    owed = max(0.0, full_at - now)
    level = burst - owed * rate
    if amount <= level + _EPSILON:
        return now + owed + amount / rate, 0.0
    return full_at, (amount - level) / rate
