from __future__ import annotations

import hashlib
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inlet import dedup_index
from inlet.dedup_index import DIGEST_BYTES, DedupIndex

T0 = 1_800_000_000


def digest(n: int) -> bytes:
    return hashlib.blake2b(n.to_bytes(8, "little"), digest_size=16).digest()


class Model:
    """The index's meaning, in a dict: first acceptance within the window wins."""

    def __init__(self, window_s: int) -> None:
        self.window_s = window_s
        self.entries: dict[bytes, tuple[int, int]] = {}

    def add(self, d: bytes, value: int, at: int) -> None:
        held = self.entries.get(d)
        if held is None or held[1] <= at - self.window_s:
            self.entries[d] = (value, at)

    def get(self, d: bytes, now: int) -> int | None:
        held = self.entries.get(d)
        return None if held is None or held[1] <= now - self.window_s else held[0]

    def expire(self, now: int) -> None:
        cutoff = now - self.window_s
        self.entries = {d: e for d, e in self.entries.items() if e[1] > cutoff}


def settle(index: DedupIndex) -> None:
    """Flush the pending keys and finish every merge (what enough later adds would do)."""
    index._flush()
    while index._merge is not None:
        index._step()


def assert_merged(index: DedupIndex) -> None:
    """One run a generation, but the newest: there each run is over 4 times the next one."""
    newest = max(index._generations, default=None)
    for g, runs in index._generations.items():
        sizes = sorted((run.size for run in runs), reverse=True)
        if g != newest:
            assert len(sizes) == 1
        assert all(small * 4 < large for large, small in itertools.pairwise(sizes))


def test_the_first_acceptance_wins() -> None:
    index = DedupIndex(60)
    index.add(digest(1), 10, T0)
    index.add(digest(1), 20, T0 + 5)
    assert index.get(digest(1), T0 + 6) == 10
    assert index.get(digest(2), T0 + 6) is None
    assert len(index) == 1


@pytest.mark.parametrize("merge_every", [1, 1000])
def test_a_key_is_known_for_exactly_window_s_seconds(merge_every: int) -> None:
    index = DedupIndex(60, merge_every=merge_every)
    index.add(digest(1), 7, T0)
    assert index.get(digest(1), T0) == 7
    assert index.get(digest(1), T0 + 59) == 7
    assert index.get(digest(1), T0 + 60) is None


@pytest.mark.parametrize("merge_every", [1, 1000])
def test_a_key_accepted_again_after_its_window_is_a_first_acceptance(merge_every: int) -> None:
    index = DedupIndex(60, merge_every=merge_every)
    index.add(digest(1), 7, T0)
    index.add(digest(1), 8, T0 + 59)  # a duplicate: the window still holds the first
    index.add(digest(1), 9, T0 + 60)
    assert index.get(digest(1), T0 + 60) == 9
    assert index.get(digest(1), T0 + 119) == 9
    index.add(digest(1), 10, T0 + 100)
    assert index.get(digest(1), T0 + 100) == 9


def test_many_keys_across_merges_and_generations_are_all_found() -> None:
    index = DedupIndex(800, merge_every=64)
    for n in range(5000):
        index.add(digest(n), n, T0 + n // 8)  # 625 s: six generations of 100 s
    now = T0 + 625
    assert len(index._generations) >= 6
    assert all(index.get(digest(n), now) == n for n in range(5000))
    assert all(index.get(digest(n), now) is None for n in range(5000, 6000))
    assert len(index) == 5000
    settle(index)
    runs = [run for runs in index._generations.values() for run in runs]
    assert_merged(index)
    assert (
        sum(run.words.nbytes + run.values.nbytes + run.offsets.nbytes for run in runs) == 18 * 5000
    )
    assert all(
        run.bits.nbytes == max(8, -(-run.size // 2)) for run in runs
    )  # filters: 4 bits a key
    filters = sum(run.bits.nbytes for run in runs)
    assert index.nbytes == 18 * 5000 + filters + len(runs) * 4 * (2**16 + 1)  # and fence tables


def test_expire_keeps_memory_bounded_by_the_window_and_one_span() -> None:
    window = 80
    index = DedupIndex(window, merge_every=50)
    per_second = 10
    n = 0
    for second in range(4 * window):
        for _ in range(per_second):
            index.add(digest(n), n, T0 + second)
            n += 1
        index.expire(T0 + second)
        assert len(index) <= per_second * (window + index.span)
    now = T0 + 4 * window - 1
    assert index.get(digest(n - 1), now) == n - 1
    # The last second of the window (second 240) is still in it; the one before just left.
    assert index.get(digest(n - per_second * window), now) == n - per_second * window
    assert index.get(digest(n - per_second * (window + 1)), now) is None


def test_keys_sharing_their_first_8_bytes_are_told_apart_by_the_next_two() -> None:
    index = DedupIndex(60, merge_every=1)
    a = bytes(8) + b"\x01\x00" + bytes(6)
    b = bytes(8) + b"\x02\x00" + bytes(6)
    c = bytes(8) + b"\x03\x00" + bytes(6)
    index.add(a, 1, T0)
    index.add(b, 2, T0)
    assert (index.get(a, T0), index.get(b, T0), index.get(c, T0)) == (1, 2, None)
    index.add_many(c + a, [3, 4], [T0, T0])
    assert (index.get(a, T0), index.get(b, T0), index.get(c, T0)) == (1, 2, 3)


def test_a_key_is_its_digests_first_80_bits() -> None:
    index = DedupIndex(60)
    index.add(bytes(10) + b"\x01" * 6, 1, T0)
    assert index.get(bytes(10) + b"\x02" * 6, T0) == 1


@pytest.mark.parametrize("chunk", [50, 16_384])
def test_add_many_is_add_in_a_loop(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup_index, "_CHUNK", chunk)  # batches split across chunks, or not
    rng = random.Random(13)
    window = 50
    loop, bulk = DedupIndex(window, merge_every=37), DedupIndex(window, merge_every=37)
    for step in range(20):
        batch = [
            (rng.randrange(400), rng.randrange(1 << 62), T0 + step * 10 + rng.randrange(10))
            for _ in range(rng.randrange(1, 120))
        ]
        for n, value, at in batch:
            loop.add(digest(n), value, at)
        bulk.add_many(
            b"".join(digest(n) for n, _, _ in batch),
            [v for _, v, _ in batch],
            [at for _, _, at in batch],
        )
        now = T0 + step * 10 + 9
        assert [loop.get(digest(n), now) for n in range(400)] == [
            bulk.get(digest(n), now) for n in range(400)
        ]


def test_no_add_does_more_than_one_slice_of_a_merge_and_the_runs_stay_few() -> None:
    index = DedupIndex(8 * 3600, merge_every=256)
    index._slice = 4096
    most_runs = most_written = 0
    for n in range(60_000):
        written = index.merged_keys
        index.add(digest(n), n, T0 + n // 100)  # 600 s: all in the first generation (3,600 s)
        most_written = max(most_written, index.merged_keys - written)
        most_runs = max(most_runs, sum(len(runs) for runs in index._generations.values()))
    # A slice is whole buckets: a little over 4,096 keys at most (a bucket holds one or two here).
    assert 0 < most_written <= 4096 + 16
    assert most_runs <= 8  # 60,000 keys in runs that shrink by 4 and the merges keep up
    assert all(index.get(digest(n), T0 + 600) == n for n in range(0, 60_000, 7))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        DedupIndex(0)
    with pytest.raises(ValueError, match="16-byte"):
        DedupIndex(60).add_many(bytes(DIGEST_BYTES), [1, 2], [T0, T0])


# Random operations against the dict model. The clock moves forward; an add may be a few seconds
# late, but never earlier than the last expire (the index's contract for expire).
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 40), st.integers(0, 5)),
        st.tuples(st.just("many"), st.lists(st.integers(0, 40), max_size=12), st.integers(0, 5)),
        st.tuples(st.just("get"), st.integers(0, 40), st.just(0)),
        st.tuples(st.just("tick"), st.integers(1, 9), st.just(0)),
        st.tuples(st.just("expire"), st.just(0), st.just(0)),
    ),
    max_size=200,
)


def clustered(n: int) -> bytes:
    """A digest in one of three buckets, so that runs interleave inside a bucket."""
    return bytes([0, n % 3]) + digest(n)[2:]


@settings(max_examples=300, deadline=None)
@given(
    ops=_ops,
    window=st.integers(1, 30),
    merge_every=st.integers(1, 9),
    slice_keys=st.integers(1, 8),
    few_buckets=st.booleans(),
)
def test_the_index_answers_as_the_dict_model(
    ops: list[tuple[str, object, int]],
    window: int,
    merge_every: int,
    slice_keys: int,
    few_buckets: bool,
) -> None:
    # Merges in slices of a few keys, so that most operations meet a merge half done.
    index, model = DedupIndex(window, merge_every=merge_every), Model(window)
    index._slice = slice_keys
    key = clustered if few_buckets else digest
    clock = floor = T0
    value = 0
    for op, arg, late in ops:
        at = max(floor, clock - late)
        if op == "add":
            assert isinstance(arg, int)
            value += 1
            index.add(key(arg), value, at)
            model.add(key(arg), value, at)
        elif op == "many":
            assert isinstance(arg, list)
            values = list(range(value + 1, value + 1 + len(arg)))
            value += len(arg)
            index.add_many(b"".join(key(n) for n in arg), values, [at] * len(arg))
            for n, v in zip(arg, values, strict=True):
                model.add(key(n), v, at)
        elif op == "get":
            assert isinstance(arg, int)
            assert index.get(key(arg), clock) == model.get(key(arg), clock)
        elif op == "tick":
            assert isinstance(arg, int)
            clock += arg
        else:
            index.expire(clock)
            model.expire(clock)
            floor = clock
    expected = [model.get(key(n), clock) for n in range(41)]
    assert [index.get(key(n), clock) for n in range(41)] == expected
    assert len(index) >= sum(1 for e in model.entries.values() if e[1] > clock - window)
    settle(index)
    assert [index.get(key(n), clock) for n in range(41)] == expected
    assert_merged(index)
