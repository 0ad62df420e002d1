"""The admin API for a connector's samples: ``/v1/connectors/{id}/samples|rejected|save``.

Handlers only translate between JSON and ``SampleService`` (the app's ``sample_service``
dependency); ``NotEnoughSamples`` becomes a 409 problem through ``registry._http_errors``.
"""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from registry.connector_api import ConnectorDetail, connector_detail
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

    @post("/save", status_code=200)
    async def save(
        self, sample_service: NamedDependency[SampleService], connector_id: FromPath[str]
    ) -> ConnectorDetail:
        connector = await sample_service.save(connector_id)
        return connector_detail(connector, sample_service.progress(connector_id))
