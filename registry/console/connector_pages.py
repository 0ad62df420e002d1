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

**Webhook settings** (issue #13): the page shows the signature scheme, its secrets by fingerprint
(never a secret: the service keeps none but sealed), the tolerance, the dedup key and window, and
the envelope. Adding a secret (``…/verify/secrets``, a password input) and retiring one
(``…/verify/secrets/{fingerprint}/retire``; a form cannot send DELETE) are the API's
``add_secret`` / ``retire_secret``; a connector without ``verify`` gets the builder's scheme form
(``…/verify``, the API's PATCH of ``verify``). A secret typed here is never rendered back: after a
refusal its input is empty, as in the builder. After a change the page says which fingerprint was
added or retired (a query parameter, shown only when it names one of the connector's secrets, or
was one: it names a fingerprint, never a secret).

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

import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, get_args
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from inlet.errors import InletError, InvalidConnector, Problem, SubjectNotFound
from inlet.model.connectors import Connector, TopicPolicy
from inlet.model.schemas import SchemaVersion
from inlet.model.verify import Scheme, fingerprint
from inlet.problems import problem_body

# As a module: the error table imports the console's session, whose package lists this module.
from registry._http_errors import status_of
from registry.connector_api import SecretRequest
from registry.connector_service import MAX_GRACE_PERIOD_S, ConnectorChanges, ConnectorService
from registry.console.builder_form import (
    VERIFY_INPUTS,
    Draft,
    draft_from_form,
    place_problems,
    verify_body,
)
from registry.console.connector_view import (
    Live,
    deleted_with,
    live,
    progress_text,
    webhook_settings,
)
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
_T = TypeVar("_T")
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


class RotateForm(msgspec.Struct, frozen=True):
    grace_period_s: int = 0


class DeleteForm(msgspec.Struct, frozen=True):
    topics: TopicPolicy | None = None


class ReplayForm(msgspec.Struct, frozen=True):
    dry_run: Literal["true", "false"] = "true"


@dataclass(frozen=True)
class Webhook:
    """What the webhook settings section says after one of its forms: a notice, or a refusal
    with its problems beside the inputs (``verify.scheme``, ``secret``)."""

    notice: str | None = None
    refusal: Refusal | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    draft: Draft = field(default_factory=Draft)  # the scheme form as posted (its secret unshown)


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
        *,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService],
        schema_registry: NamedDependency[SchemaRegistry],
        secret_added: FromQuery[str | None] = None,
        secret_retired: FromQuery[str | None] = None,
    ) -> Template:
        connector = await connector_service.get(connector_id)
        token = take_over(request.session, connector.id)
        webhook = Webhook(notice=_secret_notice(connector, secret_added, secret_retired))
        return await _page(
            connector,
            connector_service,
            sample_service,
            schema_registry,
            token=token,
            webhook=webhook,
        )

    @post("/verify/secrets")
    async def add_secret(
        self,
        request: _AnyRequest,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService],
        schema_registry: NamedDependency[SchemaRegistry],
    ) -> Redirect | Template:
        form = await request.form()
        secret = str(form.get("secret", ""))
        try:
            # Decoded as the API decodes its body (an empty secret is refused there, too).
            request_body = _decoded({"secret": secret}, SecretRequest)
            await connector_service.add_secret(connector_id, request_body.secret)
        except InletError as exc:
            connector = await connector_service.get(connector_id)
            return await _page(
                connector,
                connector_service,
                sample_service,
                schema_registry,
                webhook=_webhook_refusal(exc),
            )
        return _to_webhook_settings(connector_id, secret_added=fingerprint(secret))

    @post("/verify/secrets/{fingerprint:str}/retire")
    async def retire_secret(
        self,
        connector_id: FromPath[str],
        fingerprint: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService],
        schema_registry: NamedDependency[SchemaRegistry],
    ) -> Redirect | Template:
        try:
            await connector_service.retire_secret(connector_id, fingerprint)
        except InletError as exc:
            connector = await connector_service.get(connector_id)
            return await _page(
                connector,
                connector_service,
                sample_service,
                schema_registry,
                webhook=_webhook_refusal(exc),
            )
        return _to_webhook_settings(connector_id, secret_retired=fingerprint)

    @post("/verify")
    async def set_verify(
        self,
        request: _AnyRequest,
        connector_id: FromPath[str],
        connector_service: NamedDependency[ConnectorService],
        sample_service: NamedDependency[SampleService],
        schema_registry: NamedDependency[SchemaRegistry],
    ) -> Redirect | Template:
        """Signature verification for a connector without it: the builder's inputs, the API's
        ``PATCH`` of ``verify``."""
        form = await request.form()
        posted = draft_from_form(form.multi_items())
        verify = posted.verify
        try:
            if not verify.scheme:
                reason = "choose the scheme the sender signs with"
                problems = [Problem(field="verify.scheme", reason=reason)]
                raise InvalidConnector("invalid verify setting", problems=problems)
            changes = _decoded({"verify": verify_body(verify)}, ConnectorChanges)
            await connector_service.update(connector_id, changes)
        except InletError as exc:
            connector = await connector_service.get(connector_id)
            return await _page(
                connector,
                connector_service,
                sample_service,
                schema_registry,
                webhook=_webhook_refusal(exc, draft=posted),
            )
        return _to_webhook_settings(connector_id, secret_added=fingerprint(verify.secret))

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
    webhook: Webhook | None = None,
) -> Template:
    state = await _live(connector, sample_service)
    url = connector_service.ingest_url(token)
    webhook = webhook or Webhook()
    examples = curl_examples(
        connector.fields,
        url if token else URL_PLACEHOLDER,
        verify=connector.verify,
        dedup=connector.dedup,
    )
    context = {
        "connector": connector,
        "live": state,
        "progress_text": progress_text(state.count, state.required),
        "ingest_url": url,
        "token_shown": token is not None,
        "curl_examples": examples,
        "webhook_settings": webhook_settings(connector),
        "webhook": webhook,
        "webhook_draft": webhook.draft,
        "schemes": get_args(Scheme),
        "grace_periods": GRACE_PERIODS,
        "versions": await _versions(schema_registry, connector),
        "refusal": refusal,
    }
    refused = refusal or webhook.refusal
    status = 200 if refused is None else refused.status
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


def _to_webhook_settings(connector_id: str, **query: str) -> Redirect:
    """Back to the page's webhook settings (303: a reload does not post again)."""
    return Redirect(
        f"{_page_path(connector_id)}?{urlencode(query)}#webhook-heading", status_code=303
    )


def _secret_notice(connector: Connector, added: str | None, retired: str | None) -> str | None:
    """What the last change did; only for fingerprints it can have been (a crafted link says
    nothing the connector does not show)."""
    held = {s.fingerprint for s in connector.verify.secrets} if connector.verify else set()
    if added is not None and added in held:
        return f"Secret {added} added: requests signed with it verify now."
    if retired is not None and retired not in held and _FINGERPRINT.fullmatch(retired):
        return f"Secret {retired} retired: requests signed with it are refused."
    return None


def _webhook_refusal(exc: InletError, *, draft: Draft | None = None) -> Webhook:
    """The section after a refusal: ``draft`` (the scheme form) comes back as typed, its secret
    input empty; the add-secret form's input is always empty."""
    anchors = {*VERIFY_INPUTS, "secret", "fingerprint", ""}
    errors = place_problems(exc.problems, anchors)
    errors["secret_again"] = ["Enter the secret again: a secret is never sent back."]
    return Webhook(refusal=_refusal(exc), errors=errors, draft=draft or Draft())


def _decoded(body: dict[str, Any], into: type[_T]) -> _T:
    """``body`` decoded as the API decodes it; its refusal names the field."""
    try:
        return msgspec.convert(body, into)
    except msgspec.ValidationError as exc:
        problem = Problem(field=_problem_path(str(exc)), reason=str(exc).split(" - at ")[0])
        raise InvalidConnector("invalid connector", problems=[problem]) from exc


def _problem_path(message: str) -> str:
    _, _, at = message.partition(" - at `$")
    return at.rstrip("`").lstrip(".")
