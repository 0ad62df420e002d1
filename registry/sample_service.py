"""Samples and saving: what a connector's first records looked like, and ``save`` once enough came.

Reads come from this instance's fold of ``_inlet_samples`` (written by the sample worker). Saving
is a connector change like any other: decided in ``StateLog.transact`` on caught-up state, so the
sample count it checks includes everything the worker committed before the call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from inlet.errors import Problem
from inlet.model.connectors import Connector, ConnectorState, connector_record_value, utc_now
from inlet.model.samples import (
    REQUIRED_SAMPLES,
    ConnectorSamples,
    RejectedSample,
    SampleRecord,
    SampleState,
)
from inlet.statelog.fold import Record, StateLog, confirm_absent
from inlet.topics import CONNECTORS_TOPIC
from registry.errors import NotEnoughSamples


class SampleCount(msgspec.Struct, frozen=True):
    count: int
    required: int


class RecordCounts(msgspec.Struct, frozen=True):
    """Records the gateway wrote to the connector's topic (accepted) and rejected topic."""

    accepted: int
    rejected: int


class Progress(msgspec.Struct, frozen=True):
    counts: RecordCounts
    samples: SampleCount


# What a connector shows before the sample worker has written anything for it.
NOTHING_SEEN = Progress(RecordCounts(0, 0), SampleCount(0, REQUIRED_SAMPLES))


class SamplePage(msgspec.Struct, frozen=True):
    required: int
    count: int
    records: list[SampleRecord]


class RejectedPage(msgspec.Struct, frozen=True):
    count: int  # every rejected record so far; ``records`` holds the most recent ones
    records: list[RejectedSample]  # newest first


class SampleService:
    def __init__(
        self,
        connector_state: ConnectorState,
        sample_state: SampleState,
        log: StateLog,
        *,
        clock: Callable[[], datetime] = utc_now,
        required: int = REQUIRED_SAMPLES,
    ) -> None:
        self._connectors = connector_state
        self._samples = sample_state
        self._log = log
        self._clock = clock
        self._required = required

    def progress(self, connector_id: str) -> Progress:
        state = self._samples.get(connector_id)
        if state is None:
            return msgspec.structs.replace(NOTHING_SEEN, samples=SampleCount(0, self._required))
        return Progress(
            RecordCounts(state.accepted, state.rejected),
            SampleCount(min(len(state.records), self._required), self._required),
        )

    async def samples(self, connector_id: str) -> SamplePage:
        state = await self._found(connector_id)
        records = [] if state is None else state.records[: self._required]
        return SamplePage(self._required, len(records), records)

    async def rejected(self, connector_id: str) -> RejectedPage:
        state = await self._found(connector_id)
        if state is None:
            return RejectedPage(0, [])
        return RejectedPage(state.rejected, state.recent_rejected[::-1])

    async def _found(self, connector_id: str) -> ConnectorSamples | None:
        """The connector's samples; a connector or samples not found are confirmed on caught-up
        state first (``ConnectorNotFound`` or ``StateUnavailable`` else)."""
        if self._connectors.get(connector_id) is None or self._samples.get(connector_id) is None:
            await confirm_absent(self._log)
        self._connectors.require(connector_id)
        return self._samples.get(connector_id)

    async def save(self, connector_id: str) -> Connector:
        """Mark the connector saved; NotEnoughSamples until enough valid records arrived.

        Saving a saved connector changes nothing and succeeds, so a retried call is harmless.
        """

        def decide() -> tuple[list[Record], Connector]:
            connector = self._connectors.require(connector_id)
            if connector.status == "saved":
                return [], connector
            have = self._samples.sample_count(connector_id)
            if have < self._required:
                raise _not_enough(have, self._required)
            saved = msgspec.structs.replace(connector, status="saved", updated_at=self._clock())
            value = connector_record_value(saved)
            return [Record(CONNECTORS_TOPIC, connector_id.encode(), value)], saved

        return await self._log.transact(decide)


def _not_enough(have: int, required: int) -> NotEnoughSamples:
    missing = required - have
    records = "record is" if missing == 1 else "records are"
    return NotEnoughSamples(
        f"{missing} more valid {records} needed before saving: {have} of {required} have arrived",
        problems=[Problem(field="samples", reason=f"{missing} more needed ({have}/{required})")],
    )
