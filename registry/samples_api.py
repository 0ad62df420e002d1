"""The admin API for a connector's samples: ``/v1/connectors/{id}/samples|rejected|save``, and
the replay of its rejected records (``/rejected/replay``).

Handlers only translate between JSON and ``SampleService`` (the app's ``sample_service``
dependency); ``NotEnoughSamples`` becomes a 409 problem through ``registry._http_errors``.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from registry.connector_api import ConnectorDetail, connector_detail
from registry.replay import DEFAULT_LIMIT, MAX_LIMIT, RejectedReplayer, ReplayResult
from registry.sample_service import RejectedPage, SamplePage, SampleService


class SamplesController(Controller):
    path = "/v1/connectors/{connector_id:str}"

    @get("/samples")
    async def samples(
        self, sample_service: NamedDependency[SampleService], connector_id: FromPath[str]
    ) -> SamplePage:
        return await sample_service.samples(connector_id)

    @get("/rejected")
    async def rejected(
        self, sample_service: NamedDependency[SampleService], connector_id: FromPath[str]
    ) -> RejectedPage:
        return await sample_service.rejected(connector_id)

    @post("/rejected/replay", status_code=200)
    async def replay_rejected(
        self,
        rejected_replayer: NamedDependency[RejectedReplayer],
        connector_id: FromPath[str],
        dry_run: Annotated[bool, QueryParameter()] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> ReplayResult:
        """Check the kept rejected records against the current schema; write those that pass
        (``registry/replay.py``)."""
        return await rejected_replayer.replay(connector_id, dry_run=dry_run, limit=limit)

    @post("/save", status_code=200)
    async def save(
        self, sample_service: NamedDependency[SampleService], connector_id: FromPath[str]
    ) -> ConnectorDetail:
        connector = await sample_service.save(connector_id)
        return connector_detail(connector, sample_service.progress(connector_id))
