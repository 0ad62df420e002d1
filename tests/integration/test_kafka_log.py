"""KafkaStateLog: read-your-writes, and compare-and-set across concurrent instances."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from inlet.settings import Settings
from inlet.statelog.fold import Record
from inlet.statelog.kafka import KafkaStateLog

pytestmark = pytest.mark.kafka


class Claims:
    """A fold in which each record claims the next number; a double claim would be a bug."""

    def __init__(self) -> None:
        self.owner: dict[int, str] = {}
        self.applied = 0

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        self.applied += 1
        number = int(key)
        assert value is not None
        self.owner.setdefault(number, value.decode())
        if self.owner[number] != value.decode():
            self.owner[number] = "CONFLICT"

    def next_number(self) -> int:
        return max(self.owner, default=0) + 1


async def _start(settings: Settings, topic: str) -> tuple[KafkaStateLog, Claims]:
    claims = Claims()
    state_log = KafkaStateLog(settings, claims, [topic])
    await state_log.start()
    return state_log, claims


async def test_a_write_is_folded_before_transact_returns(settings: Settings) -> None:
    topic = f"_test_state_{uuid.uuid4().hex[:8]}"
    state_log, claims = await _start(settings, topic)
    try:
        number = await state_log.transact(
            lambda: ([Record(topic, b"1", b"me")], claims.next_number())
        )
        assert number == 1
        assert claims.owner == {1: "me"}
    finally:
        await state_log.stop()

    # A new instance folds the same state from the log.
    again, claims_again = await _start(settings, topic)
    try:
        assert claims_again.owner == {1: "me"}
    finally:
        await again.stop()


async def test_two_instances_never_claim_the_same_number(settings: Settings) -> None:
    topic = f"_test_state_{uuid.uuid4().hex[:8]}"
    (log_a, claims_a), (log_b, claims_b) = await asyncio.gather(
        _start(settings, topic), _start(settings, topic)
    )

    async def claim(state_log: KafkaStateLog, claims: Claims, who: str) -> int:
        def decide() -> tuple[list[Record], int]:
            number = claims.next_number()
            return [Record(topic, str(number).encode(), who.encode())], number

        return await state_log.transact(decide)

    try:
        per_instance = 8
        results = await asyncio.gather(
            *(claim(log_a, claims_a, f"a{i}") for i in range(per_instance)),
            *(claim(log_b, claims_b, f"b{i}") for i in range(per_instance)),
        )
        await log_a.sync()
        await log_b.sync()
    finally:
        await asyncio.gather(log_a.stop(), log_b.stop())

    assert sorted(results) == list(range(1, 2 * per_instance + 1))
    assert "CONFLICT" not in claims_a.owner.values()
    assert claims_a.owner == claims_b.owner
    # Every writer's claim is in the log exactly once: nothing lost, nothing doubled.
    assert sorted(claims_a.owner.values()) == sorted(
        [f"a{i}" for i in range(per_instance)] + [f"b{i}" for i in range(per_instance)]
    )
