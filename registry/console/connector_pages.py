"""The connector page, ``/console/connectors/{id}``: its URL, the wait for 50, save, rotate, delete,
replay.

Every action is a plain HTML form (``POST`` with the CSRF token; the answer redirects back, or
shows the service's refusal beside the form with the API's own problem body and status); only the
live part needs JavaScript (``static/live.js`` polls ``…/live``). Handlers call the services the
JSON API calls (``ConnectorService``, ``SampleService``, ``RejectedReplayer``, the schema
registry) and nothing else decides: Save is enabled by the count the service saves by, and a
forged save before 50 is refused by the service's own 409.

**The token is shown on one page only.** Whoever makes one (the builder's create, Rotate here)
puts it in the session (``issued_token.py``) and redirects here; the first render of this
connector's page takes it out of the session, so a reload, the Back button (``Cache-Control:
no-store`` on every answer) or any other page show the URL masked. It is never in a console URL,
and never logged (no URL holds it, and the session cookie is encrypted).

Choices where the issue is silent: the live part polls every 750 ms rather than holding a
server-sent-events stream open (each poll is one cheap read of this instance's folds; no
connection per open tab to drain when the server stops, and it works through any proxy). Rotate
offers the grace periods in ``GRACE_PERIODS`` (none, an hour, a day: the API's maximum). The curl
examples use the URL itself only while the token is shown, else ``"$INGEST_URL"``. Delete
proposes the connector's own ``on_delete`` and lets the person keep the topics instead, as
``?topics=keep`` does. A replay reads at most ``DEFAULT_LIMIT`` records, as the API's default, and
says when more remain.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from inlet.errors import InletError, SubjectNotFound
from inlet.model.connectors import Connector, TopicPolicy
from inlet.model.schemas import SchemaVersion
from inlet.problems import problem_body

# As a module: the error table imports the console's session, whose package lists this module.
from registry._http_errors import status_of
from registry.connector_service import MAX_GRACE_PERIOD_S, ConnectorService
from registry.console.connector_view import Live, deleted_with, live, progress_text
from registry.console.ingest_examples import curl_examples
from registry.console.issued_token import hand_over, take_over
from registry.replay import DEFAULT_LIMIT, RejectedReplayer
from registry.sample_service import SampleService
from registry.schemas import SchemaRegistry

CONNECTORS_PAGE = "/console/"
# The grace periods Rotate offers (the API takes any number of seconds up to a day).
GRACE_PERIODS = [
    (0, "none: the old URL stops now"),
    (3600, "1 hour"),
    (MAX_GRACE_PERIOD_S, "1 day"),
]
# The shell word the curl examples use while the token is masked.
URL_PLACEHOLDER = '"$INGEST_URL"'

_AnyRequest = Request[Any, Any, Any]


class RotateForm(msgspec.Struct, frozen=True):
    grace_period_s: int = 0


class DeleteForm(msgspec.Struct, frozen=True):
    topics: TopicPolicy | None = None


class ReplayForm(msgspec.Struct, frozen=True):
    dry_run: Literal["true", "false"] = "true"


class Refusal(NamedTuple):
    """A service's refusal as the JSON API answers it: its status and problem body."""

    status: int
    body: dict[str, object]


_FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


class ConnectorPages(Controller):
    path = "/console/connectors/{connector_id:str}"
    include_in_schema = False

    @get("/")
    async def page(
        self,
        request: _AnyRequest,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService],
        schema_registry: NamedDependency[SchemaRegistry],
    ) -> Template:
        connector = await connector_service.get(connector_id)
        token = take_over(request.session, connector.id)
        return await _page(
            connector, connector_service, sample_service, schema_registry, token=token
        )

    @get("/live")
    async def live(
        self,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService],
    ) -> Live:
        connector = await connector_service.get(connector_id)
        return await _live(connector, sample_service)

    @post("/save")
    async def save(
        self,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService],
        schema_registry: NamedDependency[SchemaRegistry],
    ) -> Redirect | Template:
        refusal = await _refused(sample_service.save(connector_id))
        if refusal is None:
            return Redirect(_page_path(connector_id), status_code=303)
        connector = await connector_service.get(connector_id)
        return await _page(
            connector, connector_service, sample_service, schema_registry, refusal=refusal
        )

    @post("/rotate-token")
    async def rotate_token(
        self,
        request: _AnyRequest,
        *,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService],
        schema_registry: NamedDependency[SchemaRegistry],
        data: Annotated[RotateForm, _FORM],
    ) -> Redirect | Template:
        try:
            issued = await connector_service.rotate_token(connector_id, data.grace_period_s)
        except InletError as exc:
            connector = await connector_service.get(connector_id)
            return await _page(
                connector,
                connector_service,
                sample_service,
                schema_registry,
                refusal=_refusal(exc),
            )
        hand_over(request.session, connector_id, issued.token)
        return Redirect(_page_path(connector_id), status_code=303)

    @get("/delete")
    async def confirm_delete(
        self, connector_id: FromPath[str], connector_service: NamedDependency[ConnectorService]
    ) -> Template:
        connector = await connector_service.get(connector_id)
        return _delete_page(connector)

    @post("/delete")
    async def delete(
        self,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        data: Annotated[DeleteForm, _FORM],
    ) -> Redirect | Template:
        refusal = await _refused(connector_service.delete(connector_id, data.topics))
        if refusal is None:
            return Redirect(CONNECTORS_PAGE, status_code=303)
        connector = await connector_service.get(connector_id)
        return _delete_page(connector, data.topics, refusal)

    @post("/replay")
    async def replay(
        self,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        rejected_replayer: NamedDependency[RejectedReplayer],
        data: Annotated[ReplayForm, _FORM],
    ) -> Template:
        connector = await connector_service.get(connector_id)
        dry_run = data.dry_run == "true"
        context: dict[str, Any] = {"connector": connector, "dry_run": dry_run}
        try:
            context["result"] = await rejected_replayer.replay(
                connector.id, dry_run=dry_run, limit=DEFAULT_LIMIT
            )
        except InletError as exc:
            refusal = _refusal(exc)
            return Template(
                "connector/replay.html",
                context={**context, "result": None, "refusal": refusal},
                status_code=refusal.status,
            )
        return Template("connector/replay.html", context={**context, "refusal": None})


# --- The pages. ---


async def _page(
    connector: Connector,
    connector_service: ConnectorService,
    sample_service: SampleService,
    schema_registry: SchemaRegistry,
    *,
    token: str | None = None,
    refusal: Refusal | None = None,
) -> Template:
    state = await _live(connector, sample_service)
    url = connector_service.ingest_url(token)
    context = {
        "connector": connector,
        "live": state,
        "progress_text": progress_text(state.count, state.required),
        "ingest_url": url,
        "token_shown": token is not None,
        "curl_examples": curl_examples(connector.fields, url if token else URL_PLACEHOLDER),
        "grace_periods": GRACE_PERIODS,
        "versions": await _versions(schema_registry, connector),
        "refusal": refusal,
    }
    status = 200 if refusal is None else refusal.status
    return Template("connector/page.html", context=context, status_code=status)


def _delete_page(
    connector: Connector,
    topics: TopicPolicy | None = None,
    refusal: Refusal | None = None,
) -> Template:
    policy = topics or connector.on_delete
    context = {
        "connector": connector,
        "policy": policy,
        "deleted_with": {p: deleted_with(connector, p) for p in ("delete", "keep")},
        "refusal": refusal,
    }
    status = 200 if refusal is None else refusal.status
    return Template("connector/delete.html", context=context, status_code=status)


async def _live(connector: Connector, sample_service: SampleService) -> Live:
    samples = await sample_service.samples(connector.id)
    rejected = await sample_service.rejected(connector.id)
    return live(connector, sample_service.progress(connector.id), samples, rejected)


async def _versions(schema_registry: SchemaRegistry, connector: Connector) -> list[SchemaVersion]:
    """The subject's live versions, newest first; none when schemas live in another registry
    (then the page shows the connector's current version only)."""
    try:
        numbers = await schema_registry.versions(connector.subject)
    except SubjectNotFound:
        return []
    found = [await schema_registry.get_version(connector.subject, str(n)) for n in numbers]
    return found[::-1]


# --- Helpers. ---


async def _refused(call: Awaitable[object]) -> Refusal | None:
    """Await ``call``; the refusal of the domain error it raised, or None."""
    try:
        await call
    except InletError as exc:
        return _refusal(exc)
    return None


def _refusal(exc: InletError) -> Refusal:
    """``exc`` as the JSON API answers it (``registry/_http_errors.py``)."""
    status = status_of(exc)
    return Refusal(
        status, problem_body(status, exc.code, exc.message, exc.problems, **exc.details())
    )


def _page_path(connector_id: str) -> str:
    return f"/console/connectors/{connector_id}"
