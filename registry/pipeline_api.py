"""The admin API for pipelines: ``/v1/pipelines``.

A pipeline's view joins its definition with what its feed workers last reported on the
``_inlet_pipeline_status`` topic: records delivered and dead-lettered, lag, the last error, and
the status they add up to (``run_state``: running, paused, retrying or failing). DSNs are shown
masked (``mask_dsn``): a password given in one is never returned.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from inlet.model.pipeline_sinks import mask_dsn
from inlet.model.pipelines import (
    PIPELINE_PARTITION,
    PartitionStatus,
    Pipeline,
    PostgresSink,
    RunState,
    Sink,
    run_state,
)
from inlet.topics import pipeline_group
from registry.pipeline_preview import PipelinePreview, PipelinePreviewer
from registry.pipeline_service import DlqPolicy, NewPipeline, PipelineService


class PartitionView(msgspec.Struct, frozen=True, kw_only=True):
    partition: int
    next_offset: int | None
    end_offset: int | None
    lag: int | None
    delivered: int
    dead_lettered: int
    duplicates_skipped: int  # records whose idempotency key the sink already held
    worker: str
    reported_at: datetime


class LastError(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    at: datetime | None
    partition: int | None  # None: about the whole pipeline (e.g. its sink was unreachable)


class PipelineView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    connector_id: str
    sink: Sink
    dlq_topic: str
    consumer_group: str
    status: RunState
    records_delivered: int
    records_dead_lettered: int
    records_duplicates_skipped: int
    lag: int | None  # None until a worker has measured every reported partition's end
    last_error: LastError | None
    partitions: list[PartitionView]
    created_at: datetime
    updated_at: datetime


class PipelineList(msgspec.Struct, frozen=True):
    data: list[PipelineView]


def _masked(sink: Sink) -> Sink:
    if isinstance(sink, PostgresSink):
        return msgspec.structs.replace(sink, dsn=mask_dsn(sink.dsn))
    return sink


def _view(pipeline: Pipeline, reports: list[PartitionStatus]) -> PipelineView:
    partitions = [r for r in reports if r.partition != PIPELINE_PARTITION]
    lags = [r.lag for r in partitions]
    errors = [r for r in reports if r.last_error is not None]
    latest = max(errors, key=lambda r: r.last_error_at or r.updated_at, default=None)
    last_error = None
    if latest is not None and latest.last_error is not None:
        last_error = LastError(
            message=latest.last_error,
            at=latest.last_error_at,
            partition=None if latest.partition == PIPELINE_PARTITION else latest.partition,
        )
    return PipelineView(
        id=pipeline.id,
        name=pipeline.name,
        connector_id=pipeline.connector_id,
        sink=_masked(pipeline.sink),
        dlq_topic=pipeline.dlq_topic,
        consumer_group=pipeline_group(pipeline.id),
        status=run_state(pipeline, reports),
        records_delivered=sum(r.delivered for r in partitions),
        records_dead_lettered=sum(r.dead_lettered for r in partitions),
        records_duplicates_skipped=sum(r.duplicates_skipped for r in partitions),
        lag=sum(lag for lag in lags if lag is not None) if lags and None not in lags else None,
        last_error=last_error,
        partitions=[
            PartitionView(
                partition=r.partition,
                next_offset=r.next_offset,
                end_offset=r.end_offset,
                lag=r.lag,
                delivered=r.delivered,
                dead_lettered=r.dead_lettered,
                duplicates_skipped=r.duplicates_skipped,
                worker=r.worker,
                reported_at=r.updated_at,
            )
            for r in partitions
        ],
        created_at=pipeline.created_at,
        updated_at=pipeline.updated_at,
    )


def reported_view(service: PipelineService, pipeline: Pipeline) -> PipelineView:
    """The pipeline's view with what its workers last reported."""
    return _view(pipeline, service.reports(pipeline.id))


class PipelineController(Controller):
    path = "/v1/pipelines"

    @post("/", status_code=201)
    async def create(
        self,
        pipeline_service: NamedDependency[PipelineService],
        data: JSONBody[NewPipeline],
    ) -> PipelineView:
        pipeline = await pipeline_service.create(data)
        return _view(pipeline, [])

    @post("/preview", status_code=200)
    async def preview(
        self,
        pipeline_previewer: NamedDependency[PipelinePreviewer],
        data: JSONBody[NewPipeline],
    ) -> PipelinePreview:
        """What the pipeline's sink would make of the connector's samples; creates nothing."""
        return await pipeline_previewer.preview(data)

    @get("/")
    async def list_pipelines(
        self, pipeline_service: NamedDependency[PipelineService]
    ) -> PipelineList:
        pipelines = await pipeline_service.all()
        return PipelineList([reported_view(pipeline_service, p) for p in pipelines])

    @get("/{pipeline_id:str}")
    async def get_pipeline(
        self, pipeline_service: NamedDependency[PipelineService], pipeline_id: FromPath[str]
    ) -> PipelineView:
        return reported_view(pipeline_service, await pipeline_service.get(pipeline_id))

    @delete("/{pipeline_id:str}", status_code=204)
    async def delete_pipeline(
        self,
        pipeline_service: NamedDependency[PipelineService],
        pipeline_id: FromPath[str],
        dlq: FromQuery[DlqPolicy] = "delete",
    ) -> None:
        await pipeline_service.delete(pipeline_id, dlq)

    @post("/{pipeline_id:str}/pause", status_code=200)
    async def pause(
        self, pipeline_service: NamedDependency[PipelineService], pipeline_id: FromPath[str]
    ) -> PipelineView:
        paused = await pipeline_service.set_paused(pipeline_id, True)
        return reported_view(pipeline_service, paused)

    @post("/{pipeline_id:str}/resume", status_code=200)
    async def resume(
        self, pipeline_service: NamedDependency[PipelineService], pipeline_id: FromPath[str]
    ) -> PipelineView:
        resumed = await pipeline_service.set_paused(pipeline_id, False)
        return reported_view(pipeline_service, resumed)
