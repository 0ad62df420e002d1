"""The chaos suite's judge: attempts and copies in, the counts the invariants rest on out."""

from __future__ import annotations

from chaos.verdict import Attempt, Copy, Timeline, judge


def _attempt(
    batch: int, request_id: str, outcome: str, sent: float = 0.0, done: float = 0.1
) -> Attempt:
    return Attempt(batch, 0, request_id, "http://gw/v1/ingest/t", sent, done, outcome)


def test_an_acked_batch_on_the_topic_once_is_clean() -> None:
    verdict = judge(
        "s", 1, {0: ["a", "b"]}, [_attempt(0, "r1", "200")],
        [Copy("a", "r1", 0, 0), Copy("b", "r1", 1, 0)], Timeline(),
    )  # fmt: skip
    assert (verdict.sent, verdict.acked, verdict.lost, verdict.phantom) == (2, 2, 0, 0)
    assert verdict.passed


def test_an_acked_record_missing_is_lost() -> None:
    verdict = judge(
        "s", 1, {0: ["a", "b"]}, [_attempt(0, "r1", "200")], [Copy("a", "r1", 0, 0)], Timeline()
    )
    assert verdict.lost == 1
    assert verdict.failures == ["lost=1"]
    assert verdict.examples["lost"] == ["b"]


def test_a_retry_after_a_503_that_wrote_anyway_is_an_explained_duplicate() -> None:
    attempts = [_attempt(0, "r1", "503"), _attempt(0, "r2", "200", 1.0, 1.1)]
    copies = [Copy("a", "r1", 0, 0), Copy("a", "r2", 0, 1)]
    verdict = judge("s", 1, {0: ["a"]}, attempts, copies, Timeline())
    assert (verdict.dups_explained, verdict.dups_unexplained, verdict.written_after_503) == (
        1,
        0,
        1,
    )
    assert verdict.passed


def test_two_copies_from_one_request_are_unexplained() -> None:
    copies = [Copy("a", "r1", 0, 0), Copy("a", "r1", 0, 7)]
    verdict = judge("s", 1, {0: ["a"]}, [_attempt(0, "r1", "200")], copies, Timeline())
    assert verdict.dups_unexplained == 1
    assert not verdict.passed


def test_copies_no_attempt_explains_are_phantoms() -> None:
    copies = [
        Copy("never-sent", "rx", 0, 0),
        Copy("a", "not-a-request-of-a", 0, 1),
        Copy("a", "r1", 0, 2),
    ]
    verdict = judge("s", 1, {0: ["a"]}, [_attempt(0, "r1", "200")], copies, Timeline())
    assert verdict.phantom == 2


def test_written_although_refused_outright_is_a_phantom_but_a_503_given_up_is_not() -> None:
    attempts = [_attempt(0, "r1", "422"), _attempt(1, "r2", "503")]
    copies = [Copy("a", "r1", 0, 0), Copy("b", "r2", 0, 1)]
    verdict = judge("s", 1, {0: ["a"], 1: ["b"]}, attempts, copies, Timeline())
    assert verdict.phantom == 1
    assert verdict.unacked_present == 1
    assert verdict.acked == 0


def test_statuses_and_times_around_the_fault() -> None:
    attempts = [
        _attempt(0, "r1", "200", 0.0, 0.1),
        _attempt(1, "r2", "503", 1.0, 11.0),
        _attempt(1, "r3", "500", 11.5, 11.6),
        _attempt(1, "r4", "timeout", 12.0, 32.0),
        _attempt(1, "r5", "200", 40.0, 41.0),
        _attempt(2, "r6", "200", 6.0, 7.0),  # answered 200 during the fault: counted
    ]
    verdict = judge(
        "s", 1, {0: ["a"], 1: ["b"], 2: ["c"]}, attempts,
        [Copy("a", "r1", 0, 0), Copy("b", "r5", 0, 1), Copy("c", "r6", 0, 2)],
        Timeline(fault=1.0, recovery=20.0), no_200_during_fault=True,
    )  # fmt: skip
    assert verdict.fault_to_first_503_s == 10.0
    assert verdict.recovery_to_first_200_s == 21.0
    assert (verdict.non_503_5xx, verdict.hung, verdict.ok_during_fault) == (1, 1, 1)
    assert verdict.failures == ["non_503_5xx=1", "ok_during_fault=1"]
    assert verdict.outcomes == {"200": 3, "500": 1, "503": 1, "timeout": 1}
