"""What a scenario's run proves: the writers' attempts against the records found on the topic.

Pure: no Kafka, no HTTP. Every attempt carries its own ``X-Request-Id`` (the gateway writes it into
each record's ``inlet-request-id`` header), so a copy on the topic names the attempt that wrote it:

- **lost**: a record some attempt was answered 200 for, absent from the topic. Must be 0.
- **phantom**: a copy no attempt explains (a record never sent, or a request id never used for that
  record), or a copy of a record whose attempts were all refused outright (a 4xx other than 429,
  which write nothing). Must be 0.
- **duplicates explained**: extra copies from distinct attempts; the writer retries only after a
  503, a 429, a timeout or a broken connection, so each such copy is a retry of an answer that
  claimed nothing.
- **duplicates unexplained**: extra copies carrying the same request id (one attempt, written
  twice). Must be 0.
- **unacked present**: records never answered 200 (the writer gave up at the drain deadline) that
  are on the topic anyway: a 503 "may" have written them. Reported, not an invariant.
- **non-503 5xx**: any other 5xx answer. Must be 0. **hung**: no answer within the writer's bound.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

# Outcomes a writer retries (the same records, a new request id); everything else ends a batch.
RETRIED = frozenset({"503", "429", "timeout", "conn_error"})


@dataclass(frozen=True)
class Attempt:
    """One HTTP request of a batch; when it left and was answered, in seconds since the start."""

    batch: int
    writer: int
    request_id: str
    url: str
    sent: float
    done: float
    outcome: str  # the status as text ("200", "503", …), "timeout" or "conn_error"


@dataclass(frozen=True)
class Copy:
    """One record found on the topic."""

    record_id: str
    request_id: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Timeline:
    """When the fault began and when it was undone (seconds since the run's start)."""

    fault: float | None = None
    recovery: float | None = None


@dataclass
class Verdict:
    scenario: str
    run: int
    sent: int = 0
    acked: int = 0
    requests: int = 0
    lost: int = 0
    phantom: int = 0
    dups_explained: int = 0
    dups_unexplained: int = 0
    unacked_present: int = 0
    # Attempts answered 503 (or timed out) whose records are on the topic all the same.
    written_after_503: int = 0
    non_503_5xx: int = 0
    hung: int = 0
    # 200s for requests sent well after the fault struck and answered before it was undone.
    ok_during_fault: int = 0
    fault_to_first_503_s: float | None = None
    slowest_200_s: float | None = None  # the longest a request took to be answered 200
    recovery_to_first_200_s: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def judge(
    scenario: str,
    run: int,
    batches: dict[int, list[str]],
    attempts: list[Attempt],
    copies: Iterable[Copy],
    timeline: Timeline,
    *,
    no_200_during_fault: bool = False,
    grace_s: float = 2.0,
) -> Verdict:
    """The verdict of one run. ``grace_s``: requests sent this soon after the fault may still have
    been acknowledged before it bit, so they do not count as answered during it."""
    verdict = Verdict(scenario, run, requests=len(attempts))
    by_batch: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_batch[attempt.batch].append(attempt)
    batch_of = {rid: b for b, ids in batches.items() if by_batch.get(b) for rid in ids}
    acked_batches = {b for b, tried in by_batch.items() if any(a.outcome == "200" for a in tried)}
    attempt_of = {a.request_id: a for a in attempts}

    verdict.sent = len(batch_of)
    verdict.acked = sum(len(batches[b]) for b in acked_batches)
    verdict.outcomes = dict(sorted(Counter(a.outcome for a in attempts).items()))
    verdict.non_503_5xx = sum(
        1 for a in attempts if a.outcome.isdigit() and int(a.outcome) >= 500 and a.outcome != "503"
    )
    verdict.hung = verdict.outcomes.get("timeout", 0)
    slowest = max((a.done - a.sent for a in attempts if a.outcome == "200"), default=None)
    verdict.slowest_200_s = None if slowest is None else round(slowest, 2)

    found: dict[str, list[Copy]] = defaultdict(list)
    for copy in copies:
        found[copy.record_id].append(copy)
    examples: dict[str, list[str]] = defaultdict(list)

    def example(kind: str, text: str) -> None:
        if len(examples[kind]) < 5:
            examples[kind].append(text)

    for rid, owner in batch_of.items():
        if owner in acked_batches and rid not in found:
            verdict.lost += 1
            example("lost", rid)
    written_requests: set[str] = set()
    for rid, present in found.items():
        batch = batch_of.get(rid)
        explained = [
            c
            for c in present
            if batch is not None and (a := attempt_of.get(c.request_id)) and a.batch == batch
        ]
        unexplained = len(present) - len(explained)
        if unexplained:
            verdict.phantom += unexplained
            example("phantom", f"{rid} at {[(c.partition, c.offset) for c in present]}")
        if batch is not None and batch not in acked_batches and explained:
            if all(attempt_of[c.request_id].outcome in RETRIED for c in explained):
                verdict.unacked_present += 1
            else:
                verdict.phantom += 1  # written although every answer refused it outright
                example("phantom", f"{rid} written by a refused request")
        per_request = Counter(c.request_id for c in explained)
        written_requests.update(per_request)
        same_request = sum(n - 1 for n in per_request.values())
        if same_request:
            verdict.dups_unexplained += same_request
            where = [(c.partition, c.offset) for c in explained]
            example("dups_unexplained", f"{rid} at {where}")
        verdict.dups_explained += max(0, len(per_request) - 1)
    verdict.written_after_503 = sum(
        1 for rid in written_requests if attempt_of[rid].outcome in {"503", "timeout"}
    )

    if timeline.fault is not None:
        fault = timeline.fault
        first_503 = min(
            (a.done for a in attempts if a.outcome == "503" and a.done >= fault), default=None
        )
        if first_503 is not None:
            verdict.fault_to_first_503_s = round(first_503 - fault, 2)
        end = timeline.recovery if timeline.recovery is not None else float("inf")
        verdict.ok_during_fault = sum(
            1
            for a in attempts
            if a.outcome == "200" and a.sent >= fault + grace_s and a.done <= end
        )
    if timeline.recovery is not None:
        recovery = timeline.recovery
        first_200 = min(
            (a.done for a in attempts if a.outcome == "200" and a.done >= recovery), default=None
        )
        if first_200 is not None:
            verdict.recovery_to_first_200_s = round(first_200 - recovery, 2)

    for name in ("lost", "phantom", "dups_unexplained", "non_503_5xx"):
        if getattr(verdict, name):
            verdict.failures.append(f"{name}={getattr(verdict, name)}")
    if no_200_during_fault and verdict.ok_during_fault:
        verdict.failures.append(f"ok_during_fault={verdict.ok_during_fault}")
    verdict.examples = dict(examples)
    return verdict
