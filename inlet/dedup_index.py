"""The keys a gateway remembers as accepted within the dedup window, and what each answered.

The interface the ingest path uses (``gateway/``) and the dedup state reader fills from Kafka.
A key is a digest the caller computes (connector id and the sender's key, hashed), so the index
never holds a sender's text. A value is an opaque 64-bit integer (the caller packs where the
original landed into it). Times are whole seconds since the epoch.

Layout (issue #13: 10 million keys in the window in at most 300 MB per gateway process). A key is
the digest's first 80 bits: a 16-bit **bucket** (bytes 0-1) and a 64-bit **word** (bytes 2-9).
Keys live in **generations**, one per ``span`` seconds of acceptance time (``window_s / 8``, at
most 65,536 s so that a time fits an uint16 offset from its generation's start). A generation is
a few **runs**, each three numpy arrays sorted by (bucket, word): the word (uint64), the value
(int64), the time offset (uint16), **18 bytes per key**; a fence table of 65,537 uint32 (256 KB
a run) that says where each bucket starts, so the bucket is not stored; and a filter of 4 bits
per key (one set per key, at the word modulo the filter's size: 0.5 byte a key).

A lookup is a dict probe of the newest keys and then, per run, newest generation first: the
filter (a miss gets past it with the chance 1 - e^(-1/4), 22 %), the fence table (an empty
bucket: most of a small run's), and a bisection of the ~20 keys of one bucket.

No pause: the newest keys wait in a small dict (``MERGE_EVERY`` of them) and then become a
sorted run of their own (a sort of 1,024 keys). Runs of a generation merge LSM-style (in the
newest generation, a run into the next larger once it is at least a quarter of its size, so the
runs shrink by more than 4 down the list; an older generation, which gets only a late key now
and then, into one run), and a merge runs **in slices** of ``_SLICE`` keys of output (whole
buckets: the output's fence table is the sum of the two inputs', known at the start), one slice
every ``_SLICE / _CREDIT`` adds. No ``add`` does more than one slice or one sort of the pending
keys, about a millisecond; lookups read the two inputs until the output is complete. Merges
write about 10-15 keys per key added (the benchmark prints it), ~1 µs of an add's time.

Bound: the arrays hold the keys accepted in the last ``window_s + span`` seconds (a generation
is dropped once its last second left the window), 18.5 bytes each, plus 256 KB per run (about a
dozen runs at 10 M keys), at most ``MERGE_EVERY`` pending keys in a dict (about 200 bytes each:
0.2 MB) and, while two runs merge, the output, which fills as the merge proceeds (at most one
generation: ``1/8`` of the window's keys, 23 MB at 10 M; the inputs go when it is complete).
Measured (``bench/dedup_index_bench.py``): 10 M keys grow a gateway process by 187 MB, 195 MB at
the peak. ``len`` counts what is held, so it may include keys up to one span past the window
that ``get`` no longer answers.

Collisions: two digests are the same key when their first 80 bits are (``KEY_BITS``). With
``n`` keys in the window the chance that any new key falsely matches an earlier one in that
window is about ``n² / 2⁸¹``: 4e-11 at 10 million keys (a false match would drop a record as a
duplicate). The bucket, implied by the fence table, is as much a part of the key as the stored
word; the filters only skip bisections and never answer that a key is held.

First acceptance wins: ``add`` keeps what is there unless it lies outside the window as seen from
the new acceptance (then the new one replaces it, the retry of an expired key being a first
acceptance again). A replaced entry is newer by at least a window, so it sits in a later
generation, and lookups, newest first, find it first. So a key is in at most one run of a
generation, which is what lets a merge add the fence tables.
"""

from __future__ import annotations

import mmap
import struct
from bisect import bisect_left
from collections.abc import Sequence
from itertools import chain
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

KEY_BITS = 80
DIGEST_BYTES = 16
MERGE_EVERY = 1024
GENERATIONS_PER_WINDOW = 8
_MAX_SPAN = 1 << 16  # time offsets are uint16
_NEVER = np.iinfo(np.int64).min
_BUCKETS = 1 << 16

# A merge writes _SLICE keys a step (0.8 ms of numpy, median, on a loaded 2-core machine) and
# earns a step every _SLICE / _CREDIT inserted keys. The merges write 9-15 keys per inserted key
# (the benchmark prints it); _CREDIT well above that keeps them ahead, so a generation stays at
# a few runs even while its largest merge is under way.
_SLICE = 16_384
_CREDIT = 256
# The newest generation merges its smallest run into the next once it is at least 1/_RATIO of
# that one's size: runs shrink by more than _RATIO down the list, so there are few of them.
_RATIO = 4
# A run's filter: _FILTER_BITS bits a key, one set per key; a miss passes it with the chance
# 1 - e^(-1/_FILTER_BITS) (22 %), so most misses skip a run's bisection.
_FILTER_BITS = 4
_SPARE_FENCES = 4
_CHUNK = 16_384  # add_many's keys at a time

# A key: its bucket (the digest's first 2 bytes) and its word (the next 8), both big-endian, so
# that (bucket, word) sorts as the digest's bytes do.
_SPLIT = struct.Struct(">HQ")
_KEY_BYTES = KEY_BITS // 8


def _keys(raw: NDArray[np.uint8]) -> tuple[NDArray[np.intp], NDArray[np.uint64]]:
    """The buckets and words of digests, one a row (``_SPLIT``, vectorised)."""
    buckets = (raw[:, 0].astype(np.intp) << 8) | raw[:, 1]
    return buckets, raw[:, 2:_KEY_BYTES].copy().view(">u8").ravel().astype(np.uint64)


_Array = TypeVar("_Array", bound=np.generic)

# What a lookup needs of a run: its filter (bytes, size in bits), fences, words, values and
# offsets, as memoryviews (an item read is a Python int, faster than a numpy scalar), and its
# generation's base.
_Probe = tuple[memoryview, int, memoryview, memoryview, memoryview, memoryview, int]


def _mapped(count: int, dtype: np.dtype[_Array]) -> NDArray[_Array]:
    """An array in its own anonymous mapping, given back to the system when the array goes.

    A generation's runs come and go merge by merge; from malloc's heap, the freed ones stay in
    the process as holes (measured: 5 B a key more at 5 M keys). A mapping of its own is unmapped
    whole when the array is freed, and its pages are only taken as they are written.
    """
    size = max(1, count * dtype.itemsize)
    return np.frombuffer(mmap.mmap(-1, size), dtype, count)


def _filter(count: int) -> tuple[NDArray[np.uint8], int]:
    """An empty filter for ``count`` keys: its bytes and its size in bits."""
    size = max(64, _FILTER_BITS * count)
    return _mapped(-(-size // 8), np.dtype(np.uint8)), size


def _mark(bits: NDArray[np.uint8], size: int, words: NDArray[np.uint64]) -> None:
    """Set each word's bit in a filter (one bit a key, at the word modulo its size)."""
    at = words % np.uint64(size)
    ones = np.left_shift(np.uint8(1), (at & np.uint64(7)).astype(np.uint8))
    np.bitwise_or.at(bits, (at >> np.uint64(3)).astype(np.intp), ones)


def _copy(source: NDArray[_Array]) -> NDArray[_Array]:
    copied = _mapped(len(source), source.dtype)
    copied[:] = source
    return copied


class _Run:
    """Keys of one generation sorted by (bucket, word), each key once."""

    __slots__ = ("base", "bits", "fences", "offsets", "probe", "size", "values", "words")

    def __init__(
        self,
        fences: NDArray[np.uint32],
        words: NDArray[np.uint64],
        values: NDArray[np.int64],
        offsets: NDArray[np.uint16],
        *,
        base: int,
        bits: tuple[NDArray[np.uint8], int],
    ) -> None:
        self.fences, self.words, self.values, self.offsets = fences, words, values, offsets
        self.base = base
        self.size = len(words)
        self.bits = bits[0]
        probe = (bits[0].data, bits[1], fences.data, words.data, values.data, offsets.data, base)
        self.probe: _Probe = probe

    @classmethod
    def build(
        cls,
        buckets: NDArray[np.intp],
        words: NDArray[np.uint64],
        values: NDArray[np.int64],
        offsets: NDArray[np.uint16],
        *,
        base: int,
        fences: NDArray[np.uint32],
        counts: NDArray[np.uint32],
    ) -> _Run:
        """A run of keys in any order, its fence table written into ``fences``.

        ``counts`` is scratch space, one uint32 per bucket: arrays of 65,536 made afresh (what
        np.bincount and np.cumsum would return) cost their first writes, as much as the rest.
        """
        order = np.lexsort((words, buckets))
        counts.fill(0)
        np.add.at(counts, buckets, 1)
        fences[0] = 0
        np.cumsum(counts, out=fences[1:])
        bits = _filter(len(words))
        _mark(*bits, words)
        words, values, offsets = _copy(words[order]), _copy(values[order]), _copy(offsets[order])
        return cls(fences, words, values, offsets, base=base, bits=bits)

    def lower_bound(self, buckets: NDArray[np.intp], words: NDArray[np.uint64]) -> NDArray[np.intp]:
        """For each key, the index of the first held key not below it (vectorised bisection).

        Each bisection stays inside its bucket, so the loop runs about log2(keys per bucket)
        times, however large the run.
        """
        lo = self.fences[buckets].astype(np.intp)
        hi = self.fences[buckets + 1].astype(np.intp)
        last = self.size - 1
        while True:
            open_ = lo < hi
            if not open_.any():
                return lo
            mid = (lo + hi) >> 1
            less = self.words[np.minimum(mid, last)] < words
            lo = np.where(open_ & less, mid + 1, lo)
            hi = np.where(open_ & ~less, mid, hi)

    def times_of(self, buckets: NDArray[np.intp], words: NDArray[np.uint64]) -> NDArray[np.int64]:
        """For each key, its acceptance time here, or ``_NEVER`` (vectorised lookup)."""
        found = np.full(len(words), _NEVER, np.int64)
        if self.size == 0:
            return found
        at = self.lower_bound(buckets, words)
        inside = at < self.fences[buckets + 1]
        at = np.minimum(at, self.size - 1)
        hit = inside & (self.words[at] == words)
        found[hit] = self.base + self.offsets[at[hit]].astype(np.int64)
        return found

    @property
    def nbytes(self) -> int:
        arrays = (self.fences, self.words, self.values, self.offsets, self.bits)
        return sum(array.nbytes for array in arrays)


class _Merge:
    """Two runs of one generation becoming one, a slice of whole buckets per ``step``.

    A key is in at most one of the two, so the output's fence table is the sum of theirs: each
    slice knows where its output goes before it starts, and the inputs are only read.
    """

    __slots__ = ("a", "b", "bits", "bucket", "fences", "offsets", "slot", "values", "words")

    def __init__(self, slot: int, a: _Run, b: _Run, fences: NDArray[np.uint32]) -> None:
        self.slot, self.a, self.b = slot, a, b
        self.fences = fences
        np.add(a.fences, b.fences, out=fences)
        size = a.size + b.size
        self.words = _mapped(size, np.dtype(np.uint64))
        self.values = _mapped(size, np.dtype(np.int64))
        self.offsets = _mapped(size, np.dtype(np.uint16))
        self.bits = _filter(size)
        self.bucket = 0  # the buckets below are written

    @property
    def done(self) -> bool:
        return self.bucket == _BUCKETS

    def run(self) -> _Run:
        outputs = (self.fences, self.words, self.values, self.offsets)
        return _Run(*outputs, base=self.a.base, bits=self.bits)

    def step(self, budget: int) -> int:
        """Write the next buckets, about ``budget`` keys of output (at least one bucket)."""
        fences, a, b = self.fences, self.a, self.b
        first = self.bucket
        end = int(np.searchsorted(fences, int(fences[first]) + budget, "right")) - 1
        end = min(_BUCKETS, max(first + 1, end))
        a0, a1 = int(a.fences[first]), int(a.fences[end])
        b0, b1 = int(b.fences[first]), int(b.fences[end])
        c0, c1 = int(fences[first]), int(fences[end])
        outputs: list[tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = [
            (self.words, a.words, b.words),
            (self.values, a.values, b.values),
            (self.offsets, a.offsets, b.offsets),
        ]
        if b1 == b0:
            for out, from_a, _ in outputs:
                out[c0:c1] = from_a[a0:a1]
        else:
            # Each of b's keys goes after the keys of b before it and the keys of a below it.
            buckets = np.repeat(np.arange(first, end), np.diff(b.fences[first : end + 1]))
            at = a.lower_bound(buckets, b.words[b0:b1]) - a0 + np.arange(b1 - b0)
            from_a_at = np.ones(c1 - c0, np.bool_)
            from_a_at[at] = False
            for out, from_a, from_b in outputs:
                part = out[c0:c1]
                part[at] = from_b[b0:b1]
                part[from_a_at] = from_a[a0:a1]
        _mark(*self.bits, self.words[c0:c1])
        self.bucket = end
        return c1 - c0

    @property
    def nbytes(self) -> int:
        arrays = (self.fences, self.words, self.values, self.offsets, self.bits[0])
        return sum(array.nbytes for array in arrays)


class DedupIndex:
    """Digest → (value, accepted at) for the keys accepted in the last ``window_s`` seconds."""

    def __init__(self, window_s: int, *, merge_every: int = MERGE_EVERY) -> None:
        if window_s < 1:
            raise ValueError("window_s must be at least 1")
        self.window_s = window_s
        self.merge_every = merge_every
        self.span = min(-(-window_s // GENERATIONS_PER_WINDOW), _MAX_SPAN)
        # The newest keys by their 10 bytes (joined, they parse as add_many's digests do).
        self._pending: dict[bytes, tuple[int, int]] = {}
        self._generations: dict[int, list[_Run]] = {}  # slot (time // span) → runs
        self._probes: list[_Probe] = []
        self._merge: _Merge | None = None
        self._credit = 0
        self._slice = _SLICE
        self._spare_fences: list[NDArray[np.uint32]] = []
        self._counts = np.zeros(_BUCKETS, np.uint32)
        self.merged_keys = 0  # keys written by merges, for the benchmark's write amplification

    def add(self, digest: bytes, value: int, accepted_at_s: int) -> None:
        """Remember ``digest`` as accepted at ``accepted_at_s``; the first acceptance wins."""
        held = self._find(digest)
        if held is not None and held[1] > accepted_at_s - self.window_s:
            return
        self._pending[digest[:_KEY_BYTES]] = (value, accepted_at_s)
        if len(self._pending) >= self.merge_every:
            self._flush()
        elif self._merge is not None:
            # Not in the add that flushed: each add does one bounded piece of work at most.
            self._credit += _CREDIT
            if self._credit >= self._slice:
                self._credit -= self._slice
                self._step()

    def add_many(
        self,
        digests: bytes,
        values: Sequence[int] | NDArray[np.int64],
        accepted_at_s: Sequence[int] | NDArray[np.int64],
    ) -> None:
        """``add`` for each (digest, value, time), in order; ``digests`` are 16 bytes each, joined.

        The same as calling ``add`` in a loop, in a few numpy steps per run: what the state
        reader uses to load a window's keys at start. Its merge work is proportional to the
        batch, not to the index.
        """
        if len(digests) != DIGEST_BYTES * len(values) or len(values) != len(accepted_at_s):
            raise ValueError("add_many needs one 16-byte digest, one value and one time each")
        all_values = np.asarray(values, np.int64)
        all_times = np.asarray(accepted_at_s, np.int64)
        # In chunks: a batch's temporaries (a few of its size per run) would otherwise be left
        # in malloc's heap as holes (measured: 22 MB after loading 4 M keys in batches of 1e5).
        for first in range(0, len(all_values), _CHUNK):
            last = first + _CHUNK
            part = digests[first * DIGEST_BYTES : last * DIGEST_BYTES]
            self._add_chunk(part, all_values[first:last], all_times[first:last])

    def _add_chunk(self, digests: bytes, vals: NDArray[np.int64], times: NDArray[np.int64]) -> None:
        self._flush()
        buckets, words = _keys(np.frombuffer(digests, np.uint8).reshape(-1, DIGEST_BYTES))
        # A key given twice in the batch goes through ``add``, in order, after the rest (keys
        # that differ do not affect each other); every other key is decided at once.
        order = np.lexsort((words, buckets))
        same = (buckets[order][1:] == buckets[order][:-1]) & (words[order][1:] == words[order][:-1])
        repeated = np.zeros(len(words), np.bool_)
        repeated[order[1:][same]] = True
        repeated[order[:-1][same]] = True
        once = np.flatnonzero(~repeated)
        newest = np.full(len(once), _NEVER, np.int64)
        for runs in self._generations.values():
            for run in runs:
                newest = np.maximum(newest, run.times_of(buckets[once], words[once]))
        take = once[newest <= times[once] - self.window_s]
        self._insert(buckets[take], words[take], vals[take], times[take])
        for i in np.flatnonzero(repeated).tolist():
            digest = digests[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES]
            self.add(digest, int(vals[i]), int(times[i]))
        self._credit += _CREDIT * len(take)
        while self._merge is not None and self._credit >= self._slice:
            self._credit -= self._slice
            self._step()

    def get(self, digest: bytes, now_s: int) -> int | None:
        """The value kept for ``digest``, or None if unknown or accepted before the window."""
        held = self._find(digest)
        if held is None or held[1] <= now_s - self.window_s:
            return None
        return held[0]

    def expire(self, now_s: int) -> None:
        """Forget what was accepted before the window (memory stays bounded by the window).

        For a clock: the answers are exact for later calls whose times are ``now_s`` or later. An
        ``add`` older than that may or may not still see a key that had left the window at
        ``now_s`` (whole generations go; a late one is kept until its generation goes).
        """
        cutoff = now_s - self.window_s
        if any(at <= cutoff for _, at in self._pending.values()):
            self._pending = {k: e for k, e in self._pending.items() if e[1] > cutoff}
        # A generation goes once its last second (base + span - 1) is at or before the cutoff.
        gone = [g for g in self._generations if (g + 1) * self.span - 1 <= cutoff]
        for g in gone:
            for run in self._generations.pop(g):
                self._spare(run.fences)
        if self._merge is not None and self._merge.slot in gone:
            self._spare(self._merge.fences)
            self._merge = None
            self._schedule()
        if gone:
            self._order()

    def __len__(self) -> int:
        return len(self._pending) + sum(r.size for runs in self._generations.values() for r in runs)

    @property
    def nbytes(self) -> int:
        """Bytes in the index's arrays: the runs, their fence tables, a merge's output."""
        merging = 0 if self._merge is None else self._merge.nbytes
        return merging + sum(r.nbytes for runs in self._generations.values() for r in runs)

    def _find(self, digest: bytes) -> tuple[int, int] | None:
        held = self._pending.get(digest[:_KEY_BYTES])
        if held is not None:
            return held
        bucket, word = _SPLIT.unpack_from(digest)
        after = bucket + 1
        for bits, size, fences, words, values, offsets, base in self._probes:
            at = word % size
            if not bits[at >> 3] >> (at & 7) & 1:
                continue
            end = fences[after]
            i = fences[bucket]
            if i != end:
                i = bisect_left(words, word, i, end)
                if i < end and words[i] == word:
                    return values[i], base + offsets[i]
        return None

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        buckets, words = _keys(np.frombuffer(b"".join(pending), np.uint8).reshape(-1, _KEY_BYTES))
        entries = np.fromiter(chain.from_iterable(pending.values()), np.int64, 2 * len(pending))
        entries = entries.reshape(-1, 2)
        self._insert(buckets, words, entries[:, 0], entries[:, 1])

    def _insert(
        self,
        buckets: NDArray[np.intp],
        words: NDArray[np.uint64],
        values: NDArray[np.int64],
        times: NDArray[np.int64],
    ) -> None:
        if len(words) == 0:
            return
        slots = times // self.span
        first, last = int(slots.min()), int(slots.max())
        # Most often all in one generation (np.unique costs 0.7 ms even on 1,024 keys)
        for g in [first] if first == last else np.unique(slots).tolist():
            mine = slice(None) if first == last else slots == g
            base = g * self.span
            offsets = (times[mine] - base).astype(np.uint16)
            fences = self._fence_table()
            run = _Run.build(
                *(buckets[mine], words[mine], values[mine], offsets),
                base=base,
                fences=fences,
                counts=self._counts,
            )
            self._generations.setdefault(g, []).append(run)
        self._schedule()
        self._order()

    def _schedule(self) -> None:
        """Start the next merge, if one is due: the newest generation's first."""
        if self._merge is not None:
            return
        newest = max(self._generations, default=None)
        for g in sorted(self._generations, reverse=True):
            runs = self._generations[g]
            if len(runs) < 2:
                continue
            runs.sort(key=lambda run: -run.size)
            # A generation past its span gets no more keys (but a late few): one run is best.
            for large, small in zip(runs[-2::-1], runs[:0:-1], strict=True):
                if g != newest or small.size * _RATIO >= large.size:
                    self._merge = _Merge(g, large, small, self._fence_table())
                    return
        self._credit = 0

    def _step(self) -> None:
        merge = self._merge
        assert merge is not None
        self.merged_keys += merge.step(self._slice)
        if merge.done:
            runs = self._generations[merge.slot]
            runs.remove(merge.a)
            runs.remove(merge.b)
            runs.append(merge.run())
            self._merge = None
            # Spare tables may be rewritten at once (by _schedule): the probes are only read
            # again after _order has dropped the old runs'.
            self._spare(merge.a.fences)
            self._spare(merge.b.fences)
            self._schedule()
            self._order()

    # Fence tables are reused: a new one costs its 64 pages' first writes, 0.3 ms on a flush.
    def _fence_table(self) -> NDArray[np.uint32]:
        if self._spare_fences:
            return self._spare_fences.pop()
        return _mapped(_BUCKETS + 1, np.dtype(np.uint32))

    def _spare(self, fences: NDArray[np.uint32]) -> None:
        if len(self._spare_fences) < _SPARE_FENCES:
            self._spare_fences.append(fences)

    def _order(self) -> None:
        # Newest generation first; in a generation the smallest runs (the newest keys) first.
        self._probes = [
            run.probe
            for g in sorted(self._generations, reverse=True)
            for run in sorted(self._generations[g], key=lambda run: run.size)
        ]
