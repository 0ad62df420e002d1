"""Micro-benchmark of the dedup index: memory for a full window, and what one lookup costs.

Run: ``uv run python bench/dedup_index_bench.py [--keys N] [--window-s W]`` (part of ``make
bench``; about a minute). In a process that first builds the gateway's app (``create_app``: the
libraries and the app a gateway worker holds before any key, Kafka clients aside), it fills
``inlet/dedup_index.py``'s ``DedupIndex`` with ``N`` keys (10 million by default) accepted evenly
over one window (24 h), then prints:

  RSS before / after / peak   VmRSS and VmHWM from /proc/self/status, MB (the probes are made
                              before "before": what grows after is the index)
  bytes per key               (RSS filled - before) / N, the same once malloc_trim has given
                              back the heap's holes, and the arrays' own nbytes / N
  fill                        add_many in batches of 100,000 (how the state reader loads a window)
  add                         ns per add() of a new key (the gateway's path); p99, p99.9 and the
                              slowest single add (the ones that sort the pending keys into a run
                              or do a slice of a merge)
  merges                      keys the merges wrote per key added, and the runs held
  get hit / miss              ns per get() of a held key (spread over the window) / an unknown one
  expire                      ms for expire() one generation span later (one generation dropped)
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import time

import numpy as np

from gateway.app import create_app
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
    app = create_app()  # what a gateway worker holds before any key, for a fair RSS before

    # Warm up what the fill uses (numpy's sorts, the random generator) so that "before" has it.
    DedupIndex(window).add_many(_digests(rng, 1000), list(range(1000)), [T0] * 1000)
    # The probes are made first, so that "before" holds them and the rest is the index's: a
    # sample of the keys to hold (some in each batch, from every part of the window), new keys
    # to add, unknown keys to miss.
    per_batch = max(1, PROBES * BATCH // keys)
    sample = _digests(rng, per_batch * -(-keys // BATCH))
    held = _split(sample)
    hits = [held[i] for i in np.random.default_rng(7).integers(0, len(held), PROBES).tolist()]
    new = _split(_digests(rng, PROBES))
    misses = _split(_digests(rng, PROBES))
    before = _rss_mb("VmRSS")
    index = DedupIndex(window)
    started = time.process_time()
    for n, first in enumerate(range(0, keys, BATCH)):
        count = min(BATCH, keys - first)
        picked = DIGEST_BYTES * per_batch * n
        joined = sample[picked : picked + DIGEST_BYTES * per_batch]
        joined += _digests(rng, count - per_batch)
        times = T0 + (np.arange(first, first + count, dtype=np.int64) * window) // keys
        index.add_many(joined, np.arange(first, first + count, dtype=np.int64), times)
    fill_s = time.process_time() - started
    filled = _rss_mb("VmRSS")
    filled_peak = _rss_mb("VmHWM")
    # What malloc's heap kept of the fill's temporaries (the benchmark's batches among them),
    # given back: the rest is what the index holds.
    ctypes.CDLL(None).malloc_trim(0)
    trimmed = _rss_mb("VmRSS")
    now = T0 + window - 1

    # The gateway's path: one add() per new key (the pending dict fills and merges), then get()s.
    add = index.add
    # A gateway worker freezes what start-up built (gateway/app.py): full collections, which
    # would walk this benchmark's lists of probes, are not the index's pauses.
    gc.collect()
    gc.freeze()
    merged_before = getattr(index, "merged_keys", 0)
    each = np.empty(len(new))
    clock = time.process_time
    started = clock()
    for i, digest in enumerate(new):
        t = clock()
        add(digest, i, now)
        each[i] = clock() - t
    add_ns = (clock() - started) / len(new) * 1e9
    p99, p999 = np.percentile(each, [99, 99.9]) * 1e3
    amplification = (getattr(index, "merged_keys", 0) - merged_before) / len(new)
    runs = sum(len(r) for r in index._generations.values()) if hasattr(index, "_merge") else 0
    after = _rss_mb("VmRSS")
    size = len(index)
    nbytes = index.nbytes

    get = index.get
    started = time.process_time()
    found = sum(1 for digest in hits if get(digest, now) is not None)
    hit_ns = (time.process_time() - started) / len(hits) * 1e9
    recent = new[: PROBES // 2]
    started = time.process_time()
    found_recent = sum(1 for digest in recent if get(digest, now) is not None)
    recent_ns = (time.process_time() - started) / len(recent) * 1e9
    started = time.process_time()
    false = sum(1 for digest in misses if get(digest, now) is not None)
    miss_ns = (time.process_time() - started) / len(misses) * 1e9
    peak = _rss_mb("VmHWM")

    generations = len(index._generations)
    started = time.process_time()
    index.expire(now + index.span)
    expire_ms = (time.process_time() - started) * 1e3
    dropped = size - len(index)

    print(
        f"DedupIndex: {size:,} keys, window {window:,} s, span {index.span:,} s, "
        f"{generations} generations; times are this process's CPU time"
    )
    print(
        f"  RSS before {before:.1f} MB, filled {filled:.1f} MB (peak {filled_peak:.1f}), "
        f"after the adds {after:.1f} MB, peak {peak:.1f} MB"
    )
    print(
        f"  bytes per key: {(filled - before) * 2**20 / keys:.1f} by RSS, "
        f"{(trimmed - before) * 2**20 / keys:.1f} by RSS after malloc_trim ({trimmed:.1f} MB), "
        f"{nbytes / size:.1f} in the arrays"
    )
    print(
        f"  fill (add_many, batches of {BATCH:,}): {fill_s:.1f} s, {fill_s / keys * 1e9:.0f} ns/key"
    )
    print(
        f"  add: {add_ns:,.0f} ns per new key; p99 {p99:.3f} ms, p99.9 {p999:.3f} ms, "
        f"slowest {each.max() * 1e3:.1f} ms"
    )
    print(f"  merges: {amplification:.1f} keys written per key added; {runs} runs held")
    print(
        f"  get: hit {hit_ns:,.0f} ns (any age; {found:,}/{len(hits):,} found), "
        f"hit {recent_ns:,.0f} ns (newest; {found_recent:,}/{len(recent):,}), "
        f"miss {miss_ns:,.0f} ns ({false} false)"
    )
    print(
        f"  expire one span later: {expire_ms:.1f} ms, {dropped:,} keys dropped, "
        f"RSS {_rss_mb('VmRSS'):.1f} MB"
    )
    del app


if __name__ == "__main__":
    main()
