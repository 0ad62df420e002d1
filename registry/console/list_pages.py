"""The console's start page: the connectors, a page at a time, as the API lists them.

The rows are the API's own: ``ConnectorService.list_page`` (the same page size and cursor as
``GET /v1/connectors``) and, for each, the counts and sample progress ``GET
/v1/connectors/{id}`` shows (``SampleService.progress``, ``connector_detail``).
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from registry.connector_api import DEFAULT_PAGE_SIZE, connector_detail
from registry.connector_service import ConnectorService
from registry.sample_service import NOTHING_SEEN, SampleService


class ListPages(Controller):
    path = "/console"

    @get(["/", "/connectors"])
    async def connectors(
        self,
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        page, next_cursor = await connector_service.list_page(
            limit=DEFAULT_PAGE_SIZE, cursor=cursor
        )
        rows = [
            connector_detail(
                c, NOTHING_SEEN if sample_service is None else sample_service.progress(c.id)
            )
            for c in page
        ]
        return Template(
            template_name="connectors/list.html",
            context={"connectors": rows, "next_cursor": next_cursor, "first_page": cursor is None},
        )
