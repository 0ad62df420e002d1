"""Micro-benchmark of the dedup index: memory for a full window, and what one lookup costs.

Run: ``uv run python bench/dedup_index_bench.py [--keys N] [--window-s W]`` (part of ``make
bench``; about a minute). In a process that first imports the gateway (``gateway.app`` and what it
imports, as a gateway worker holds them before any key), it fills ``inlet/dedup_index.py``'s
``DedupIndex`` with ``N`` keys (10 million by default) accepted evenly over one window (24 h), then
prints:

  RSS before / after / peak   VmRSS and VmHWM from /proc/self/status, MB
  bytes per key               (RSS after - before) / N, and the arrays' own nbytes / N
  fill                        add_many in batches of 100,000 (how the state reader loads a window)
  add                         ns per add() of a new key (the gateway's path), and the slowest one
                              (the add that merges the pending keys into their generation)
  get hit / miss              ns per get() of a held key (spread over the window) / an unknown one
  expire                      ms for expire() one generation span later (one generation dropped)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import gateway.app  # noqa: F401  (the libraries a gateway worker holds, for a fair RSS before)
from inlet.dedup_index import DIGEST_BYTES, DedupIndex

T0 = 1_800_000_000
BATCH = 100_000
PROBES = 200_000


def _rss_mb(field: str) -> float:
    for line in open("/proc/self/status").read().splitlines():  # noqa: PTH123, SIM115
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _digests(rng: np.random.Generator, count: int) -> bytes:
    return rng.integers(0, 256, count * DIGEST_BYTES, dtype=np.uint8).tobytes()


def _split(joined: bytes) -> list[bytes]:
    return [joined[i : i + DIGEST_BYTES] for i in range(0, len(joined), DIGEST_BYTES)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--window-s", type=int, default=86_400)
    args = parser.parse_args()
    keys, window = args.keys, args.window_s
    rng = np.random.default_rng(13)

    # Warm up what the fill uses (numpy's sorts, the random generator) so that "before" has it.
    DedupIndex(window).add_many(_digests(rng, 1000), list(range(1000)), [T0] * 1000)
    before = _rss_mb("VmRSS")
    index = DedupIndex(window)
    sample = bytearray()  # a sample of held keys, from every part of the window
    per_batch = DIGEST_BYTES * max(1, PROBES * BATCH // keys)
    started = time.process_time()
    for first in range(0, keys, BATCH):
        count = min(BATCH, keys - first)
        joined = _digests(rng, count)
        times = T0 + (np.arange(first, first + count, dtype=np.int64) * window) // keys
        index.add_many(joined, np.arange(first, first + count, dtype=np.int64), times)
        sample += joined[:per_batch]
    fill_s = time.process_time() - started
    filled = _rss_mb("VmRSS")
    now = T0 + window - 1

    # The gateway's path: one add() per new key (the pending dict fills and merges), then get()s.
    new = _split(_digests(rng, PROBES))
    add = index.add
    slowest = 0.0
    started = time.process_time()
    for i, digest in enumerate(new):
        t = time.process_time()
        add(digest, i, now)
        slowest = max(slowest, time.process_time() - t)
    add_ns = (time.process_time() - started) / len(new) * 1e9
    after = _rss_mb("VmRSS")
    size = len(index)
    nbytes = index.nbytes

    get = index.get
    held = _split(bytes(sample))
    hits = [held[i] for i in np.random.default_rng(7).integers(0, len(held), PROBES).tolist()]
    started = time.process_time()
    found = sum(1 for digest in hits if get(digest, now) is not None)
    hit_ns = (time.process_time() - started) / len(hits) * 1e9
    recent = new[: PROBES // 2]
    started = time.process_time()
    found_recent = sum(1 for digest in recent if get(digest, now) is not None)
    recent_ns = (time.process_time() - started) / len(recent) * 1e9
    misses = _split(_digests(rng, PROBES))
    started = time.process_time()
    false = sum(1 for digest in misses if get(digest, now) is not None)
    miss_ns = (time.process_time() - started) / len(misses) * 1e9
    peak = _rss_mb("VmHWM")

    generations = len(index._newest_first)
    started = time.process_time()
    index.expire(now + index.span)
    expire_ms = (time.process_time() - started) * 1e3
    dropped = size - len(index)

    print(
        f"DedupIndex: {size:,} keys, window {window:,} s, span {index.span:,} s, "
        f"{generations} generations; times are this process's CPU time"
    )
    print(
        f"  RSS before {before:.1f} MB, filled {filled:.1f} MB, after the adds {after:.1f} MB, "
        f"peak {peak:.1f} MB"
    )
    print(
        f"  bytes per key: {(filled - before) * 2**20 / keys:.1f} by RSS, "
        f"{nbytes / size:.1f} in the arrays"
    )
    print(
        f"  fill (add_many, batches of {BATCH:,}): {fill_s:.1f} s, {fill_s / keys * 1e9:.0f} ns/key"
    )
    print(f"  add: {add_ns:,.0f} ns per new key, slowest {slowest * 1e3:.1f} ms (a merge)")
    print(
        f"  get: hit {hit_ns:,.0f} ns (any age; {found:,}/{len(hits):,} found), "
        f"hit {recent_ns:,.0f} ns (newest; {found_recent:,}/{len(recent):,}), "
        f"miss {miss_ns:,.0f} ns ({false} false)"
    )
    print(
        f"  expire one span later: {expire_ms:.1f} ms, {dropped:,} keys dropped, "
        f"RSS {_rss_mb('VmRSS'):.1f} MB"
    )


if __name__ == "__main__":
    main()
