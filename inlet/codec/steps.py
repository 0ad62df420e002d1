"""Work in steps: long CPU work that lets an event loop serve other requests meanwhile.

Parsing and encoding a large body takes up to a second of pure Python and C calls that never
await; run at once on an event loop, it stalls every other connection of the process for that
long. So the parser and the codec are written as generators that ``yield`` after each bounded
piece of work (``STEP_BYTES`` of input, or ``STEP_RECORDS`` records, whichever comes first; where
records cost very different amounts, such as invalid ones examined for all their errors, also
after ``STEP_SECONDS``: ``Pacer``) and ``return`` their result. ``run`` drives one to its end at
once (tests, replays, benchmarks); ``run_yielding`` gives the loop a turn at every step (the
gateway). A small body has no step
boundary at all: a single-record request pays nothing for this.

A thread would not do it: msgspec and the Avro writer hold the GIL for a whole call, and the loop
thread would wait a switch interval (5 ms) every time it gave the GIL up.

A step may also hand its driver a future to wait for before the next step (``WaitingSteps``): the
producer's window (``inlet/kafka.py``), which lets a large request run only so far ahead of
Kafka's acks.
``run_yielding`` awaits it (other requests run meanwhile); ``run`` cannot wait, and refuses one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from time import perf_counter
from typing import Any, Final, TypeVar

T = TypeVar("T")
Steps = Generator[None, None, T]
# Steps that may also yield a future to wait for before the next step.
WaitingSteps = Generator[asyncio.Future[Any] | None, None, T]

# About 2-8 ms of work each (bench/hostile_bench.py measures what another connection waits).
STEP_BYTES: Final = 256 * 1024
STEP_RECORDS: Final = 1024
# The longest a step should run where a record's cost varies (``Pacer``): another request waits
# at most about this long for one (a full garbage collection aside), at each of the few turns it
# needs (read, produce, ack, answer). 5 ms left 9 ms of the loop's CPU between two turns at p99
# beside a 10 MiB body, 2 ms (with 512-record produce slices) 5 ms (``bench/hostile_bench.py``).
STEP_SECONDS: Final = 0.002


class Pacer:
    """When a loop over ``total`` items should step: after ``every`` items, or after
    ``STEP_SECONDS`` if that comes first. Never for ``total <= every``: a small request is done in
    one go (its time then is bounded by its size anyway), and pays no clock reading."""

    __slots__ = ("_count", "_every", "_until")

    def __init__(self, total: int, every: int = STEP_RECORDS) -> None:
        self._every = every if total > every else 0
        self._count = 0
        self._until = -1.0  # the clock starts at the first item

    def due(self) -> bool:
        """Called once per item done: true when the caller should ``yield`` now."""
        if not self._every:
            return False
        now = perf_counter()
        if self._until < 0:
            self._until = now + STEP_SECONDS
        self._count += 1
        if self._count < self._every and now < self._until:
            return False
        self._count, self._until = 0, -1.0  # restarted after the step, not counting the wait
        return True


def run(steps: WaitingSteps[T]) -> T:
    """Every step at once; the generator's result."""
    while True:
        try:
            waiting = next(steps)
        except StopIteration as done:
            result: T = done.value
            return result
        if waiting is not None and not waiting.done():
            raise RuntimeError("these steps wait for a future: drive them with run_yielding")


async def run_yielding(steps: WaitingSteps[T]) -> T:
    """Every step, giving the running event loop a turn between two steps (waiting for the
    future a step yields, if any)."""
    while True:
        try:
            waiting = next(steps)
        except StopIteration as done:
            result: T = done.value
            return result
        if waiting is None:
            await asyncio.sleep(0)
        else:
            await waiting


def release(*lists: list[Any]) -> Steps[None]:
    """Empty ``lists``, ``STEP_RECORDS`` items a step: a large request's records and their
    objects freed at once stall the loop 10-15 ms. No step for lists of up to that many."""
    for items in lists:
        while len(items) > STEP_RECORDS:
            del items[-STEP_RECORDS:]
            yield
        items.clear()
