"""Pipelines' lifecycle: create, pause, resume, delete.

Like connectors, every change is decided on caught-up state inside ``StateLog.transact``, and the
pipeline's dead-letter topic (the one effect outside the log) is ordered around it: created before
the record (and deleted again if the record is not written), deleted after the tombstone.

The feed workers (``consumers/pipeline_worker.py``) fold the same log and act on it: they start a
pipeline's feed when it appears, stop it when it is paused or deleted. The data a feed wrote
stays where it is when the pipeline is deleted: Inlet never drops a user's table or files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import msgspec

from inlet.errors import InletError, Problem
from inlet.model.connectors import ConnectorState, utc_now
from inlet.model.fields import validate_connector_name
from inlet.model.pipeline_sinks import sink_identity, sink_problems, stored_sink
from inlet.model.pipelines import (
    PartitionStatus,
    Pipeline,
    PipelineState,
    PipelineStatusState,
    Sink,
    new_pipeline_id,
    pipeline_record,
    pipeline_tombstone,
    status_tombstone,
)
from inlet.sink_rules import SinkRules
from inlet.statelog.fold import Record, StateLog, confirm_absent
from inlet.topics import pipeline_dlq_topic
from registry.errors import InvalidPipeline, NameTaken, PipelineNotFound
from registry.topic_admin import TopicAdmin, TopicSpec

log = logging.getLogger("inlet.registry.pipelines")

DlqPolicy = Literal["delete", "keep"]
# Dead letters are few and read in order, like rejected records: one partition does.
DLQ_PARTITIONS = 1


class NewPipeline(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    connector_id: str
    sink: Sink
    paused: bool = False


class PipelineService:
    def __init__(
        self,
        pipelines: PipelineState,
        statuses: PipelineStatusState,
        connectors: ConnectorState,
        log: StateLog,
        topics: TopicAdmin,
        *,
        rules: SinkRules,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._rules = rules
        self._pipelines = pipelines
        self._statuses = statuses
        self._connectors = connectors
        self._log = log
        self._topics = topics
        self._clock = clock

    # --- Reads, from local state. ---

    async def get(self, pipeline_id: str) -> Pipeline:
        if self._pipelines.get(pipeline_id) is None:
            await confirm_absent(self._log)
        return self._require(pipeline_id)

    async def all(self) -> list[Pipeline]:
        return self._pipelines.all()

    def reports(self, pipeline_id: str) -> list[PartitionStatus]:
        return self._statuses.reports(pipeline_id)

    # --- Writes. ---

    def checked(self, new: NewPipeline) -> Sink:
        """The sink ``new`` would be stored with, on this instance's state; InvalidPipeline or
        NameTaken as ``create`` answers them (the preview checks with it too)."""
        problems = [
            *(Problem(field="name", reason=p.reason) for p in validate_connector_name(new.name)),
            *sink_problems(new.sink, self._rules),
            *self._connector_problems(new.connector_id),
        ]
        if problems:
            raise InvalidPipeline("invalid pipeline", problems=problems)
        sink = stored_sink(new.sink, new.name, self._rules)
        self._require_free(new.name, sink)
        return sink

    async def create(self, new: NewPipeline) -> Pipeline:
        sink = self.checked(new)  # early, so a refused pipeline makes no topic
        connector = self._connectors.by_id[new.connector_id]
        now = self._clock()
        pipeline_id = new_pipeline_id()
        draft = Pipeline(
            id=pipeline_id,
            name=new.name,
            connector_id=new.connector_id,
            sink=sink,
            dlq_topic=pipeline_dlq_topic(new.connector_id, pipeline_id),
            paused=new.paused,
            created_at=now,
            updated_at=now,
        )
        await self._topics.create(
            [TopicSpec(draft.dlq_topic, DLQ_PARTITIONS, connector.replication_factor)]
        )

        def decide() -> tuple[list[Record], Pipeline]:
            # Again, on caught-up state: another instance may have taken the name or the sink,
            # or the connector may be gone.
            problems = self._connector_problems(draft.connector_id)
            if problems:
                raise InvalidPipeline("invalid pipeline", problems=problems)
            self._require_free(draft.name, draft.sink)
            return [pipeline_record(draft, self._pipelines.box)], draft

        try:
            return await self._log.transact(decide)
        except BaseException:
            await self._undo_create(draft)
            raise

    async def set_paused(self, pipeline_id: str, paused: bool) -> Pipeline:
        def decide() -> tuple[list[Record], Pipeline]:
            current = self._require(pipeline_id)
            if current.paused == paused:
                return [], current
            changed = msgspec.structs.replace(current, paused=paused, updated_at=self._clock())
            return [pipeline_record(changed, self._pipelines.box)], changed

        return await self._log.transact(decide)

    async def delete(self, pipeline_id: str, dlq: DlqPolicy = "delete") -> None:
        def decide() -> tuple[list[Record], Pipeline]:
            pipeline = self._require(pipeline_id)
            statuses = [
                status_tombstone(pipeline_id, report.partition)
                for report in self._statuses.reports(pipeline_id)
            ]
            return [pipeline_tombstone(pipeline_id), *statuses], pipeline

        pipeline = await self._log.transact(decide)
        if dlq == "delete":
            await self._discard_dlq(pipeline)

    # --- Helpers. ---

    def _require(self, pipeline_id: str) -> Pipeline:
        pipeline = self._pipelines.get(pipeline_id)
        if pipeline is None:
            raise PipelineNotFound(f"pipeline {pipeline_id!r} not found")
        return pipeline

    def _connector_problems(self, connector_id: str) -> list[Problem]:
        if self._connectors.get(connector_id) is None:
            reason = f"no connector has the id {connector_id!r}"
            return [Problem(field="connector_id", reason=reason)]
        return []

    def _require_free(self, name: str, sink: Sink) -> None:
        taken = self._pipelines.by_name(name)
        if taken is not None:
            raise NameTaken(f"a pipeline named {taken.name!r} exists")
        identity = sink_identity(sink)
        for other in self._pipelines.all():
            if sink_identity(other.sink) == identity:
                field = "sink.directory" if identity.startswith("files:") else "sink.table"
                reason = f"pipeline {other.id!r} already writes there"
                raise InvalidPipeline(
                    "the sink is in use", problems=[Problem(field=field, reason=reason)]
                )

    async def _undo_create(self, draft: Pipeline) -> None:
        try:
            await self._log.sync()
        except InletError:
            log.warning(
                "pipeline create failed with an unknown outcome; keeping its topic",
                extra={"topic": draft.dlq_topic},
            )
            return
        if self._pipelines.get(draft.id) is None:
            await self._discard_dlq(draft)

    async def _discard_dlq(self, pipeline: Pipeline) -> None:
        # Best effort, as for connectors' topics: the pipeline is already gone.
        try:
            await self._topics.delete([pipeline.dlq_topic])
        except Exception:
            log.exception("could not delete topic", extra={"topic": pipeline.dlq_topic})
