"""The keys a gateway remembers as accepted within the dedup window, and what each answered.

The interface the ingest path uses (``gateway/``) and the dedup state reader fills from Kafka.
A key is a digest the caller computes (connector id and the sender's key, hashed), so the index
never holds a sender's text. A value is an opaque 64-bit integer (the caller packs where the
original landed into it). Times are whole seconds since the epoch.

Layout (issue #13: 10 million keys in the window in at most 300 MB per gateway process). Keys
live in **generations**, one per ``span`` seconds of acceptance time (``window_s / 8``, at most
65,536 s so that a time fits an uint16 offset from its generation's start). A generation is four
numpy arrays sorted by key: the digest's first 8 bytes (int64), its next 2 (uint16), the value
(int64), the time offset (uint16): **20 bytes per key**, nothing else per key. The newest keys
wait in a small dict (``MERGE_EVERY`` of them at most) and are merged into their generations in
one step: a sort of the new keys and one scatter per array, so an insert costs the copy of
its generation only every ``MERGE_EVERY`` inserts, and a merge touches one generation (one
``span`` of keys), not the whole index. A lookup is a dict probe and, per generation, newest
first, a bisection of about 16 keys that a table of fences (256 KB a generation) points to.
``expire`` drops whole generations that lie before the window.

Bound: the arrays hold the keys accepted in the last ``window_s + span`` seconds (a generation
is dropped once its last second left the window), 20 bytes each, plus at most ``MERGE_EVERY``
pending keys in a dict (about 200 bytes each: 6.5 MB) and, while one generation merges, a second
copy of that generation. ``len`` counts what is held, so it may include keys up to one span past
the window that ``get`` no longer answers.

Collisions: two digests are the same key when their first 80 bits are (``KEY_BITS``). With
``n`` keys in the window the chance that any new key falsely matches an earlier one in that
window is about ``n² / 2⁸¹``: 4e-11 at 10 million keys (a false match would drop a record as a
duplicate).

First acceptance wins: ``add`` keeps what is there unless it lies outside the window as seen from
the new acceptance (then the new one replaces it, the retry of an expired key being a first
acceptance again). A replaced entry is newer by at least a window, so it sits in a later
generation, and lookups, newest first, find it first.
"""

from __future__ import annotations

import mmap
import struct
from bisect import bisect_left
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

KEY_BITS = 80
DIGEST_BYTES = 16
MERGE_EVERY = 32_768
GENERATIONS_PER_WINDOW = 8
_MAX_SPAN = 1 << 16  # time offsets are uint16
_NEVER = np.iinfo(np.int64).min

# The 80 bits a key keeps: the digest's first 8 bytes as an int64 (the sort key) and its next 2.
_SPLIT = struct.Struct("<qH")


_Array = TypeVar("_Array", bound=np.generic)

# A generation's fence table splits the key space into 2**bits equal ranges (about 16 keys each,
# at most 2**16 ranges: 256 KB) and holds where each starts, so that a lookup bisects ~16 keys
# in Python's C bisect over a memoryview (~0.3 µs) instead of calling numpy (~0.8 µs a call).
_KEYS_PER_FENCE = 16
_MAX_FENCE_BITS = 16
_SIGN = 1 << 63  # keys are signed; key + _SIGN is the same order, unsigned


def _mapped(count: int, dtype: np.dtype[_Array]) -> NDArray[_Array]:
    """An array in its own anonymous mapping, given back to the system when the array goes.

    A generation's arrays grow by a merge at a time, each a little larger than the one it
    replaces; from malloc's heap, the freed ones stay in the process as holes (measured: 5 B a
    key more at 5 M keys). A mapping of its own is unmapped whole when the array is freed.
    """
    size = max(1, count * dtype.itemsize)
    return np.frombuffer(mmap.mmap(-1, size), dtype, count)


def _scatter(
    held: NDArray[_Array], new: NDArray[_Array], fresh: NDArray[np.intp], held_at: NDArray[np.bool_]
) -> NDArray[_Array]:
    merged = _mapped(len(held) + len(new), held.dtype)
    merged[fresh] = new
    merged[held_at] = held
    return merged


# What a lookup needs of a generation: the fences' shift and table, its four arrays as memoryviews
# (an item read is a Python int, faster than a numpy scalar), and its base.
_Probe = tuple[int, memoryview, memoryview, memoryview, memoryview, memoryview, int]


def _probe(probe: _Probe, key: int, tag: int) -> tuple[int, int] | None:
    shift, fences, keys, tags, values, offsets, base = probe
    fence = (key + _SIGN) >> shift
    end = fences[fence + 1]
    i = bisect_left(keys, key, fences[fence], end)
    # Equal 64-bit keys with different tags sit side by side; at 10 M keys a run of two happens
    # about once in 4e5 windows, so this loop almost always runs once or not at all.
    while i < end and keys[i] == key:
        if tags[i] == tag:
            return values[i], base + offsets[i]
        i += 1
    return None


class _Generation:
    """The keys accepted in ``[base, base + span)``, sorted by key (a key's tags in no order)."""

    __slots__ = ("base", "keys", "offsets", "probe", "tags", "values")

    def __init__(self, base: int) -> None:
        self.base = base
        self.keys: NDArray[np.int64] = np.empty(0, np.int64)
        self.tags: NDArray[np.uint16] = np.empty(0, np.uint16)
        self.values: NDArray[np.int64] = np.empty(0, np.int64)
        self.offsets: NDArray[np.uint16] = np.empty(0, np.uint16)
        self.probe = self._probe()

    def find(self, key: int, tag: int) -> tuple[int, int] | None:
        return _probe(self.probe, key, tag)

    def times_of(self, keys: NDArray[np.int64], tags: NDArray[np.uint16]) -> NDArray[np.int64]:
        """For each (key, tag), its acceptance time here, or ``_NEVER`` (vectorised ``find``)."""
        n = len(self.keys)
        found = np.full(len(keys), _NEVER, np.int64)
        if n == 0:
            return found
        at = np.minimum(self.keys.searchsorted(keys), n - 1)
        same_key = self.keys[at] == keys
        hit = same_key & (self.tags[at] == tags)
        found[hit] = self.base + self.offsets[at[hit]].astype(np.int64)
        # A key whose first entry has another tag may still be further along its run.
        for i in np.flatnonzero(same_key & ~hit).tolist():
            entry = self.find(int(keys[i]), int(tags[i]))
            if entry is not None:
                found[i] = entry[1]
        return found

    def merge(
        self,
        keys: NDArray[np.int64],
        tags: NDArray[np.uint16],
        values: NDArray[np.int64],
        offsets: NDArray[np.uint16],
    ) -> None:
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        # Each new key goes before the held keys not smaller than it (searchsorted), shifted by
        # the new keys before it; the held keys fill the other places, in order. One scatter per
        # array, about 1 ns a key (np.insert does the same with an argsort of the places on top).
        fresh = self.keys.searchsorted(keys) + np.arange(len(keys))
        held = _mapped(len(self.keys) + len(keys), np.dtype(np.bool_))
        held[:] = True
        held[fresh] = False
        self.keys = _scatter(self.keys, keys, fresh, held)
        self.tags = _scatter(self.tags, tags[order], fresh, held)
        self.values = _scatter(self.values, values[order], fresh, held)
        self.offsets = _scatter(self.offsets, offsets[order], fresh, held)
        self.probe = self._probe()

    def _probe(self) -> _Probe:
        bits = min(_MAX_FENCE_BITS, max(0, (len(self.keys) // _KEYS_PER_FENCE).bit_length()))
        shift = 64 - bits
        # fences[j] = how many keys lie below the j-th range: where that range starts.
        starts = (np.arange(1, 1 << bits, dtype=np.uint64) << np.uint64(shift)) - np.uint64(_SIGN)
        fences = _mapped((1 << bits) + 1, np.dtype(np.uint32))
        fences[0], fences[-1] = 0, len(self.keys)
        fences[1:-1] = self.keys.searchsorted(starts.view(np.int64))
        return (
            shift,
            fences.data,
            self.keys.data,
            self.tags.data,
            self.values.data,
            self.offsets.data,
            self.base,
        )

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.tags.nbytes + self.values.nbytes + self.offsets.nbytes


class DedupIndex:
    """Digest → (value, accepted at) for the keys accepted in the last ``window_s`` seconds."""

    def __init__(self, window_s: int, *, merge_every: int = MERGE_EVERY) -> None:
        if window_s < 1:
            raise ValueError("window_s must be at least 1")
        self.window_s = window_s
        self.merge_every = merge_every
        self.span = min(-(-window_s // GENERATIONS_PER_WINDOW), _MAX_SPAN)
        self._pending: dict[tuple[int, int], tuple[int, int]] = {}
        self._generations: dict[int, _Generation] = {}
        self._newest_first: list[_Generation] = []
        self._probes: list[_Probe] = []

    def add(self, digest: bytes, value: int, accepted_at_s: int) -> None:
        """Remember ``digest`` as accepted at ``accepted_at_s``; the first acceptance wins."""
        key = _SPLIT.unpack_from(digest)
        held = self._find(key)
        if held is not None and held[1] > accepted_at_s - self.window_s:
            return
        self._pending[key] = (value, accepted_at_s)
        if len(self._pending) >= self.merge_every:
            self._merge_pending()

    def add_many(
        self,
        digests: bytes,
        values: Sequence[int] | NDArray[np.int64],
        accepted_at_s: Sequence[int] | NDArray[np.int64],
    ) -> None:
        """``add`` for each (digest, value, time), in order; ``digests`` are 16 bytes each, joined.

        The same as calling ``add`` in a loop, in a few numpy steps per generation: what the state
        reader uses to load a window's keys at start.
        """
        if len(digests) != DIGEST_BYTES * len(values) or len(values) != len(accepted_at_s):
            raise ValueError("add_many needs one 16-byte digest, one value and one time each")
        if len(values) == 0:
            return
        self._merge_pending()
        raw = np.frombuffer(digests, np.uint8).reshape(-1, DIGEST_BYTES)
        keys = raw[:, :8].copy().view("<i8").ravel().astype(np.int64)
        tags = raw[:, 8:10].copy().view("<u2").ravel().astype(np.uint16)
        vals = np.asarray(values, np.int64)
        times = np.asarray(accepted_at_s, np.int64)
        # A key given twice in the batch goes through ``add``, in order, after the rest (keys
        # that differ do not affect each other); every other key is decided at once.
        order = np.lexsort((tags, keys))
        same_as_next = (keys[order][1:] == keys[order][:-1]) & (tags[order][1:] == tags[order][:-1])
        repeated = np.zeros(len(keys), bool)
        repeated[order[1:][same_as_next]] = True
        repeated[order[:-1][same_as_next]] = True
        once = ~repeated
        newest = np.full(int(once.sum()), _NEVER, np.int64)
        for generation in self._newest_first:
            newest = np.maximum(newest, generation.times_of(keys[once], tags[once]))
        take = np.flatnonzero(once)[newest <= times[once] - self.window_s]
        self._insert(keys[take], tags[take], vals[take], times[take])
        for i in np.flatnonzero(repeated).tolist():
            digest = digests[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES]
            self.add(digest, int(vals[i]), int(times[i]))

    def get(self, digest: bytes, now_s: int) -> int | None:
        """The value kept for ``digest``, or None if unknown or accepted before the window."""
        held = self._find(_SPLIT.unpack_from(digest))
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
            del self._generations[g]
        if gone:
            self._order()

    def __len__(self) -> int:
        return len(self._pending) + sum(len(g.keys) for g in self._newest_first)

    @property
    def nbytes(self) -> int:
        """Bytes the generations' arrays hold (the pending dict, at most ``MERGE_EVERY``, aside)."""
        return sum(g.nbytes for g in self._newest_first)

    def _find(self, key: tuple[int, int]) -> tuple[int, int] | None:
        held = self._pending.get(key)
        if held is not None:
            return held
        for probe in self._probes:
            held = _probe(probe, *key)
            if held is not None:
                return held
        return None

    def _merge_pending(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        count = len(pending)
        keys = np.fromiter((k for k, _ in pending), np.int64, count)
        tags = np.fromiter((t for _, t in pending), np.uint16, count)
        values = np.fromiter((v for v, _ in pending.values()), np.int64, count)
        times = np.fromiter((t for _, t in pending.values()), np.int64, count)
        self._insert(keys, tags, values, times)

    def _insert(
        self,
        keys: NDArray[np.int64],
        tags: NDArray[np.uint16],
        values: NDArray[np.int64],
        times: NDArray[np.int64],
    ) -> None:
        if len(keys) == 0:
            return
        slots = times // self.span
        for g in np.unique(slots).tolist():
            mine = slots == g
            generation = self._generations.get(g)
            if generation is None:
                generation = self._generations[g] = _Generation(g * self.span)
            offsets = (times[mine] - generation.base).astype(np.uint16)
            generation.merge(keys[mine], tags[mine], values[mine], offsets)
        self._order()

    def _order(self) -> None:
        self._newest_first = [self._generations[g] for g in sorted(self._generations, reverse=True)]
        self._probes = [g.probe for g in self._newest_first]
