from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from gateway import _bucket_table
from gateway._bucket_table import SLOTS, BucketTable
from gateway._buckets import burst_of, take
from gateway.errors import BatchExceedsBurst, RateLimited
from gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# The pure arithmetic.


def test_a_full_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    full_at, wait = take(0.0, 100.0, rate=10, burst=10, amount=10)
    assert full_at == pytest.approx(101.0)
    assert wait == 0.0
    refused_at, wait = take(full_at, 100.0, rate=10, burst=10, amount=1)
    assert refused_at == full_at  # a refusal changes nothing
    assert wait == pytest.approx(0.1)
    full_at, wait = take(full_at, 100.5, rate=10, burst=10, amount=5)
    assert wait == 0.0
    assert take(full_at, 100.5, rate=10, burst=10, amount=5)[1] == pytest.approx(0.5)


def test_n_records_take_n_tokens_and_wait_for_exactly_the_missing_ones() -> None:
    full_at, _ = take(0.0, 100.0, rate=10, burst=10, amount=6)
    assert take(full_at, 100.0, rate=10, burst=10, amount=5)[1] == pytest.approx(0.1)
    full_at, wait = take(full_at, 100.0, rate=10, burst=10, amount=4)
    assert wait == 0.0
    assert full_at == pytest.approx(101.0)
    assert take(full_at, 100.0, rate=10, burst=10, amount=10)[1] == pytest.approx(1.0)


def test_a_batch_larger_than_the_burst_is_refused_for_good_and_takes_nothing() -> None:
    """Issue #10, item 3: at 5/s, 6-record requests passed one after another (each owed a bucket
    it then waited for), and 1,000-record ones let 1,000 records through at once."""
    clock = Clock()
    limiter = RateLimiter(None, clock)
    for _ in range(3):
        with pytest.raises(BatchExceedsBurst) as refused:
            limiter.admit("c", 5, 6)
        assert refused.value.details() == {"records": 6, "burst": 5.0}
        assert "exceeds the connector's burst of 5" in refused.value.message
        assert not refused.value.retryable
        clock.now += 10
    with pytest.raises(BatchExceedsBurst):
        limiter.admit("c", 5, 1_000)
    # Nothing was taken: the whole burst is still there, and then nothing more.
    limiter.admit("c", 5, 5)
    with pytest.raises(RateLimited) as limited:
        limiter.admit("c", 5, 1)
    assert limited.value.retry_after_s == pytest.approx(0.2)
    limiter.admit("c", None, 1_000_000)  # no limit: anything


def test_the_average_holds_over_any_batching() -> None:
    rate, burst, full_at, granted, now = 20.0, burst_of(20.0), 0.0, 0, 0.0
    for step in range(10_000):
        now = step * 0.003  # 30 s
        full_at, wait = take(full_at, now, rate, burst, amount=1 + step % 7)
        granted += (1 + step % 7) if wait == 0 else 0
    assert rate * now <= granted <= rate * now + burst


def test_what_is_owed_survives_a_changed_limit() -> None:
    full_at, _ = take(0.0, 100.0, rate=5, burst=5, amount=5)  # one second owed
    # The limit is raised: the debt is kept in seconds, so the new rate's burst refills from now.
    assert take(full_at, 100.0, rate=100, burst=100, amount=50)[1] == pytest.approx(0.5)
    assert take(full_at, 101.0, rate=100, burst=100, amount=100)[1] == 0.0


# The table and the limiter (the table private to this process: no file).


def test_limiter_is_per_connector_and_off_without_a_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock)
    assert limiter.check("a", None, 10_000) == 0
    assert limiter.check("a", 0, 10_000) == 0
    assert limiter.check("a", 5, 5) == 0
    assert limiter.check("a", 5, 1) == pytest.approx(0.2)
    assert limiter.check("b", 5, 5) == 0
    clock.now += 1
    assert limiter.check("a", 5, 5) == 0


def test_the_table_keeps_more_connectors_than_slots_reusing_full_buckets() -> None:
    table = BucketTable.in_memory()
    # Rounds of half as many connectors as slots, each taking its whole burst, two seconds apart:
    # a round's buckets are full again when the next comes, so their slots are free for others.
    per_round = SLOTS // 2
    for round_ in range(4):
        now = 100.0 + 2 * round_
        connectors = [f"con_{i}" for i in range(round_ * per_round, (round_ + 1) * per_round)]
        for connector in connectors:
            assert table.take(connector, 1.0, 1.0, 1.0, now) == 0.0
        # Every connector of this round is found again, its bucket empty.
        for connector in connectors:
            assert table.take(connector, 1.0, 1.0, 1.0, now) > 0


def test_a_full_table_takes_over_the_bucket_nearest_to_full() -> None:
    table = BucketTable.in_memory()
    now = 100.0
    for i in range(SLOTS):
        assert table.take(f"con_{i}", 1.0, 1.0, 1.0, now) == 0.0
    # No slot is free: a newcomer still gets a bucket (some other connector's restarts full).
    assert table.take("newcomer", 1.0, 1.0, 1.0, now) == 0.0
    assert table.take("newcomer", 1.0, 1.0, 1.0, now) > 0


# The table in a file: what the worker processes of one gateway share.


def test_two_tables_on_one_file_share_the_buckets(tmp_path: Path) -> None:
    path = tmp_path / "gateway" / "rate-limits-8080"
    one, two = BucketTable.at(path), BucketTable.at(path)
    assert one.take("c", 10.0, 10.0, 6.0, 100.0) == 0.0
    assert two.take("c", 10.0, 10.0, 6.0, 100.0) == pytest.approx(0.2)
    assert two.take("c", 10.0, 10.0, 4.0, 100.0) == 0.0
    one.close()
    two.close()
    # Reopened (a gateway restarted within the same boot): the debt is still there.
    again = BucketTable.at(path)
    assert again.take("c", 10.0, 10.0, 1.0, 100.0) == pytest.approx(0.1)
    again.close()


def test_a_table_from_another_boot_or_layout_starts_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rate-limits-8080"
    table = BucketTable.at(path)
    assert table.take("c", 1.0, 1.0, 1.0, 5_000.0) == 0.0
    table.close()
    # After a reboot the monotonic clock restarts: 5,000 s ahead would never be paid off.
    monkeypatch.setattr(_bucket_table, "_boot_id", lambda: b"another-boot")
    after_reboot = BucketTable.at(path)
    assert after_reboot.take("c", 1.0, 1.0, 1.0, 10.0) == 0.0
    after_reboot.close()
    path.write_bytes(b"an older layout")
    assert BucketTable.at(path).take("c", 1.0, 1.0, 1.0, 10.0) == 0.0


def test_a_limiter_whose_table_cannot_be_opened_limits_this_process(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    limiter = RateLimiter(tmp_path / "file" / "rate-limits-8080", Clock())
    assert limiter.check("c", 2, 2) == 0
    assert limiter.check("c", 2, 1) > 0


def _take_many(path: str, times: int, go: Event, granted: multiprocessing.SimpleQueue[int]) -> None:
    table = BucketTable.at(Path(path))
    go.wait(60)
    count = sum(table.take("c", 1e-9, BURST, 1.0, 100.0) == 0.0 for _ in range(times))
    granted.put(count)


BURST = 30_000.0


def test_processes_sharing_the_table_are_granted_the_burst_once(tmp_path: Path) -> None:
    """Three processes race for tokens that never refill: exactly the burst is granted."""
    path = tmp_path / "rate-limits-8080"
    spawn = multiprocessing.get_context("spawn")
    go, granted = spawn.Event(), spawn.SimpleQueue()
    workers = [
        spawn.Process(target=_take_many, args=(str(path), 20_000, go, granted)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    go.set()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert sum(granted.get() for _ in workers) == BURST
    assert path.stat().st_mode & 0o777 == 0o600
