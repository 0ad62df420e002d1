"""Micro-benchmark of a rate-limit check: what one limited request pays for its connector's bucket.

Run: ``uv run python bench/ratelimit_bench.py [--checks N]``. Prints µs per check for:
  private table    the buckets in this process only (no lock): what a per-process bucket costs
  shared table     the buckets in a file every worker maps, under flock (the gateway's)
  shared, 2 procs  the same with a second process checking the same connector meanwhile
Each check takes one token from a bucket that never runs dry, so every check is a grant (the write
path). One check is made per request, however many records it holds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from gateway._bucket_table import BucketTable
from gateway.ratelimit import RateLimiter

_RATE = 1e12  # never runs dry


def _per_check_us(limiter: RateLimiter, checks: int) -> float:
    check = limiter.check
    started = time.perf_counter()
    for _ in range(checks):
        check("con_0123456789abcdef", _RATE, 1)
    return (time.perf_counter() - started) / checks * 1e6


def _contend(path: str, stop: Event) -> None:
    table = BucketTable.at(Path(path))
    while not stop.is_set():
        for _ in range(1000):
            table.take("con_0123456789abcdef", _RATE, _RATE, 1.0, time.monotonic())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rate-limits-8080"
        rows = [
            ("private table", _per_check_us(RateLimiter(None), args.checks)),
            ("shared table", _per_check_us(RateLimiter(path), args.checks)),
        ]
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        other = spawn.Process(target=_contend, args=(str(path), stop))
        other.start()
        time.sleep(1.0)  # let it start checking
        rows.append(("shared, 2 procs", _per_check_us(RateLimiter(path), args.checks)))
        stop.set()
        other.join(30)
    print(f"{'design':<18}{'µs/check':>10}")
    for name, micros in rows:
        print(f"{name:<18}{micros:>10.2f}")


if __name__ == "__main__":
    main()
