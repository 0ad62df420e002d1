"""The console's pipelines: the list with live status, pause / resume / delete, and a new pipeline
from a connector with a preview of what its sink would write.

Every page calls what the JSON API calls: ``PipelineService`` (create, pause, resume, delete, the
checks), the views of ``pipeline_api`` (``reported_view``: status, delivered, lag, dead letters,
last error, the DSN masked) and ``PipelinePreviewer`` (the preview on the samples, computed by the
sinks' own code). A refusal is the API's own problem, each ``problems`` entry shown beside its
field (``name``, ``connector_id``, ``sink.dsn``, ``sink.table``, ``sink.directory``).

The DSN is a secret: once the pipeline exists, pages show it only as the API does (masked). Before
creation it is the user's own input: the preview page fills it back into its (password) field so
that Create can send it, in the answer to a POST, never in a URL. The list's numbers refresh once
a second (``static/pipelines.js`` polls ``/console/pipelines/status``); without JavaScript, on
reload.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from inlet.errors import InletError, Problem
from inlet.model.pipelines import FilesSink, PostgresSink, Sink

# The module, not its names: the error table imports the console's session, and so this package,
# which is still being imported when that happens.
from registry._http_errors import status_of
from registry.connector_api import MAX_PAGE_SIZE
from registry.connector_service import ConnectorService
from registry.pipeline_api import PipelineView, reported_view
from registry.pipeline_preview import PipelinePreview, PipelinePreviewer
from registry.pipeline_service import NewPipeline, PipelineService
from registry.sample_service import SampleService

SinkChoice = Literal["postgres", "files", "pull"]
LIST_PATH = "/console/pipelines"


class PipelineForm(msgspec.Struct, frozen=True, kw_only=True):
    """The new-pipeline form as posted (every field a string: it is a plain HTML form)."""

    name: str = ""
    connector_id: str = ""
    sink: SinkChoice = "postgres"
    dsn: str = ""
    table: str = ""
    directory: str = ""
    format: Literal["parquet", "ndjson"] = "parquet"

    def sink_settings(self) -> Sink:
        if self.sink == "files":
            return FilesSink(directory=self.directory, format=self.format)
        return PostgresSink(dsn=self.dsn, table=self.table.strip() or None)

    def new_pipeline(self) -> NewPipeline:
        return NewPipeline(
            name=self.name.strip(), connector_id=self.connector_id, sink=self.sink_settings()
        )


Form = Annotated[PipelineForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


class StatusRow(msgspec.Struct, frozen=True):
    """What the list's live numbers are, per pipeline (from the API's own view)."""

    id: str
    status: str
    records_delivered: int
    lag: int | None
    records_dead_lettered: int
    last_error: str | None


def _status_row(view: PipelineView) -> StatusRow:
    error = None if view.last_error is None else view.last_error.message
    return StatusRow(
        view.id,
        view.status,
        view.records_delivered,
        view.lag,
        view.records_dead_lettered,
        error,
    )


def _problems_by_field(problems: list[Problem]) -> dict[str, list[str]]:
    """Problems keyed by the form field they concern (``sink.dsn`` is the ``dsn`` field)."""
    found: dict[str, list[str]] = {}
    for problem in problems:
        field = (problem.field or "").removeprefix("sink.")
        found.setdefault(field, []).append(problem.reason)
    return found


class PipelinePages(Controller):
    path = LIST_PATH

    @get("/")
    async def list_page(
        self,
        pipeline_service: NamedDependency[PipelineService],
        connector_service: NamedDependency[ConnectorService],
    ) -> Template:
        views = [reported_view(pipeline_service, p) for p in await pipeline_service.all()]
        names = {c.id: c.name for c in await _connectors(connector_service)}
        return Template(
            template_name="pipelines/list.html",
            context={"nav": "pipelines", "pipelines": views, "connector_names": names},
        )

    @get("/status")
    async def status(self, pipeline_service: NamedDependency[PipelineService]) -> list[StatusRow]:
        """The list's live numbers, polled by ``pipelines.js``."""
        pipelines = await pipeline_service.all()
        return [_status_row(reported_view(pipeline_service, p)) for p in pipelines]

    @get("/new")
    async def new_page(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector: FromQuery[str] = "",
    ) -> Template:
        form = PipelineForm(connector_id=connector)
        return await _form_page(connector_service, form)

    @post("/preview", status_code=200)
    async def preview(
        self,
        request: Request[Any, Any, Any],
        data: Form,
        connector_service: NamedDependency[ConnectorService],
        pipeline_previewer: NamedDependency[PipelinePreviewer],
        sample_service: NamedDependency[SampleService],
    ) -> Template:
        if data.sink == "pull":
            page = await _pull_page(connector_service, sample_service, data)
            page.context["api_base"] = str(request.base_url).rstrip("/")
            return page
        try:
            preview = await pipeline_previewer.preview(data.new_pipeline())
        except InletError as exc:
            return await _form_page(connector_service, data, exc, status_code=status_of(exc))
        return await _form_page(connector_service, data, preview=preview)

    @post("/", status_code=303)
    async def create(
        self,
        data: Form,
        connector_service: NamedDependency[ConnectorService],
        pipeline_service: NamedDependency[PipelineService],
    ) -> Redirect | Template:
        if data.sink == "pull":
            return Redirect(f"{LIST_PATH}/new?connector={data.connector_id}", status_code=303)
        try:
            created = await pipeline_service.create(data.new_pipeline())
        except InletError as exc:
            return await _form_page(connector_service, data, exc, status_code=status_of(exc))
        return Redirect(f"{LIST_PATH}#{created.id}", status_code=303)

    @post("/{pipeline_id:str}/pause", status_code=303)
    async def pause(
        self, pipeline_service: NamedDependency[PipelineService], pipeline_id: FromPath[str]
    ) -> Redirect:
        await pipeline_service.set_paused(pipeline_id, True)
        return Redirect(f"{LIST_PATH}#{pipeline_id}", status_code=303)

    @post("/{pipeline_id:str}/resume", status_code=303)
    async def resume(
        self, pipeline_service: NamedDependency[PipelineService], pipeline_id: FromPath[str]
    ) -> Redirect:
        await pipeline_service.set_paused(pipeline_id, False)
        return Redirect(f"{LIST_PATH}#{pipeline_id}", status_code=303)

    @post("/{pipeline_id:str}/delete", status_code=303)
    async def delete(
        self, pipeline_service: NamedDependency[PipelineService], pipeline_id: FromPath[str]
    ) -> Redirect:
        await pipeline_service.delete(pipeline_id)
        return Redirect(LIST_PATH, status_code=303)


async def _connectors(connector_service: ConnectorService) -> list[Any]:
    page, _ = await connector_service.list_page(limit=MAX_PAGE_SIZE, cursor=None)
    return list(page)


async def _form_page(
    connector_service: ConnectorService,
    form: PipelineForm,
    error: InletError | None = None,
    *,
    preview: PipelinePreview | None = None,
    status_code: int = 200,
) -> Template:
    return Template(
        template_name="pipelines/new.html",
        context={
            "nav": "pipelines",
            "form": form,
            "connectors": await _connectors(connector_service),
            "error": error,
            "problems": _problems_by_field(error.problems if error else []),
            "preview": preview,
        },
        status_code=status_code,
    )


async def _pull_page(
    connector_service: ConnectorService, sample_service: SampleService, form: PipelineForm
) -> Template:
    """The pull feed needs no pipeline: how to read it, and the samples as it returns them."""
    try:
        samples = await sample_service.samples(form.connector_id)
    except InletError as exc:
        return await _form_page(connector_service, form, exc, status_code=status_of(exc))
    page = await _form_page(connector_service, form)
    page.context["pull"] = samples
    return page
