"""The schema builder's pages: new connector, edit its schema, duplicate it.

Plain HTML forms that post back to their own page. A post is one of the form's buttons
(``action``): ``create`` / ``save``, ``infer`` ("start from an example"), ``add:<path>`` and
``delete:<path>`` (rows, when JavaScript does not do them in place). A refused create or save
renders the same form again with what was typed and the service's problems beside their inputs
(``builder_form.py``); a create that succeeds hands the new token to the connector's page through
the session (``issued_token.py``) and redirects there (303, so a reload does not post again).

Every write is the call the admin API makes (``ConnectorService.create``, ``update``,
``duplicate``), on the body the API would decode; "start from an example" is the API's
``infer_fields``. Nothing here validates a connector.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Literal, get_args

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from inlet.codec.field_inference import FieldNote, infer_fields
from inlet.errors import InletError
from inlet.model.connectors import Connector, Envelope
from inlet.model.dedup import PRESETS
from inlet.model.fields import FieldType, ItemType
from inlet.model.verify import Scheme
from registry._http_errors import status_of
from registry.connector_service import ConnectorService
from registry.console.builder_form import (
    Draft,
    Row,
    add_row,
    anchors_of,
    connector_changes,
    delete_row,
    draft_from_form,
    draft_of,
    example_media_type,
    new_connector,
    place_problems,
    rows_of,
)
from registry.console.issued_token import hand_over

Mode = Literal["new", "edit"]

_NOTICE_KEY: Final = "builder_notice"  # what the next render of an edit page says, once
_CONTEXT: Final = {
    "nav": "connectors",
    "field_types": get_args(FieldType),
    "item_types": get_args(ItemType),
    "envelopes": get_args(Envelope),
    "schemes": get_args(Scheme),
    "dedup_presets": PRESETS,
    "empty_row": Row(),
}
# Advanced opens by itself when a problem is shown in it (or a secret must be typed again).
_ADVANCED: Final = (
    "key_field",
    "rate_limit_per_s",
    "partitions",
    "replication_factor",
    "on_delete",
    "envelope",
    "atomic",
    "reject_unknown_fields",
    "verify",
    "dedup",
)


def connector_page(connector_id: str) -> str:
    return f"/console/connectors/{connector_id}"


class BuilderPages(Controller):
    path = "/console/connectors"
    include_in_schema = False

    @get("/new")
    async def new(self) -> Template:
        return _builder("new", Draft())

    @post("/new", status_code=200)
    async def create(
        self,
        request: Request[Any, Any, Any],
        connector_service: NamedDependency[ConnectorService],
    ) -> Template | Redirect:
        draft, action = await _posted(request)
        if action != "create":
            return await _row_action("new", draft, action)
        try:
            issued = await connector_service.create(new_connector(draft))
        except InletError as refused:
            return _builder("new", draft, refused=refused)
        hand_over(request.session, issued.connector.id, issued.token)
        return Redirect(connector_page(issued.connector.id), status_code=303)

    @get("/{connector_id:str}/edit")
    async def edit(
        self,
        request: Request[Any, Any, Any],
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
    ) -> Template:
        connector = await connector_service.get(connector_id)
        notice = _take_notice(request, connector_id)
        return _builder("edit", draft_of(connector), connector=connector, notice=notice)

    @post("/{connector_id:str}/edit", status_code=200)
    async def save(
        self,
        request: Request[Any, Any, Any],
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
    ) -> Template | Redirect:
        current = await connector_service.get(connector_id)
        draft, action = await _posted(request)
        if action != "save":
            return await _row_action("edit", draft, action, connector=current)
        try:
            saved = await connector_service.update(connector_id, connector_changes(draft))
        except InletError as refused:
            return _builder("edit", draft, connector=current, refused=refused)
        _keep_notice(request, connector_id, _saved_notice(current, saved))
        return Redirect(f"{connector_page(connector_id)}/edit", status_code=303)

    @get("/{connector_id:str}/duplicate")
    async def duplicate_form(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
    ) -> Template:
        source = await connector_service.get(connector_id)
        return _duplicate_page(source, f"{source.name} copy")

    @post("/{connector_id:str}/duplicate", status_code=200)
    async def duplicate(
        self,
        request: Request[Any, Any, Any],
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
    ) -> Template | Redirect:
        source = await connector_service.get(connector_id)
        form = await request.form()
        name = str(form.get("name", ""))
        try:
            issued = await connector_service.duplicate(connector_id, name)
        except InletError as refused:
            return _duplicate_page(source, name, refused=refused)
        copy = issued.connector
        hand_over(request.session, copy.id, issued.token)
        notice = (
            f"{copy.name!r} was created as a copy of {source.name!r}: change its schema here "
            "before data arrives. Its private URL is shown once, on its page."
        )
        _keep_notice(request, copy.id, notice)
        return Redirect(f"{connector_page(copy.id)}/edit", status_code=303)


async def _posted(request: Request[Any, Any, Any]) -> tuple[Draft, str]:
    form = await request.form()
    return draft_from_form(form.multi_items()), str(form.get("action", ""))


async def _row_action(
    mode: Mode, draft: Draft, action: str, *, connector: Connector | None = None
) -> Template:
    """The form again after a button other than create/save: rows added, deleted, proposed."""
    verb, _, path = action.partition(":")
    if verb == "add":
        add_row(draft.rows, path)
    elif verb == "delete":
        delete_row(draft.rows, path)
    elif verb == "infer":
        return await _inferred(mode, draft, connector)
    return _builder(mode, draft, connector=connector)


async def _inferred(mode: Mode, draft: Draft, connector: Connector | None) -> Template:
    media_type = example_media_type(draft.example, draft.example_format)
    try:
        # A worker thread, as the API's infer-fields: a large paste takes a while to read.
        inferred = await asyncio.to_thread(infer_fields, draft.example.encode(), media_type)
    except InletError as refused:
        return _builder(mode, draft, connector=connector, refused=refused, at="example")
    draft.rows = rows_of(inferred.fields)
    return _builder(mode, draft, connector=connector, notes=inferred.notes)


def _builder(
    mode: Mode,
    draft: Draft,
    *,
    connector: Connector | None = None,
    refused: InletError | None = None,
    at: str = "",
    notes: list[FieldNote] | None = None,
    notice: str | None = None,
) -> Template:
    """The builder page; ``refused``'s problems beside their inputs (without a field: ``at``)."""
    errors: dict[str, list[str]] = {}
    if refused is not None:
        problems = refused.problems
        errors = place_problems(problems, anchors_of(draft.rows))
        if not problems:
            errors[at] = [refused.message]
    return Template(
        template_name="builder/builder.html",
        context={
            **_CONTEXT,
            "mode": mode,
            "draft": draft,
            "connector": connector,
            "errors": errors,
            "refused": refused,
            "notes": notes or [],
            "notice": notice,
            "advanced_open": _advanced_open(draft, errors),
        },
        status_code=_status(refused),
    )


def _advanced_open(draft: Draft, errors: dict[str, list[str]]) -> bool:
    at_advanced = any(path.split(".", 1)[0] in _ADVANCED for path in errors)
    return at_advanced or bool(draft.verify.secret)


def _duplicate_page(source: Connector, name: str, *, refused: InletError | None = None) -> Template:
    errors = {} if refused is None else place_problems(refused.problems, {"name", ""})
    if refused is not None and not refused.problems:
        errors[""] = [refused.message]
    return Template(
        template_name="builder/duplicate.html",
        context={
            "nav": "connectors",
            "source": source,
            "name": name,
            "errors": errors,
            "refused": refused,
        },
        status_code=_status(refused),
    )


def _status(refused: InletError | None) -> int:
    """The API's status for the same refusal (a form shown again is still a refusal)."""
    if refused is None:
        return 200
    return status_of(refused)


def _saved_notice(before: Connector, after: Connector) -> str:
    if after.schema_version != before.schema_version:
        return (
            f"Saved: the new fields are schema version {after.schema_version} "
            f"(was {before.schema_version})."
        )
    return f"Saved. The fields are unchanged: schema version {after.schema_version}."


def _keep_notice(request: Request[Any, Any, Any], connector_id: str, text: str) -> None:
    request.session[_NOTICE_KEY] = {"connector_id": connector_id, "text": text}


def _take_notice(request: Request[Any, Any, Any], connector_id: str) -> str | None:
    notice = request.session.get(_NOTICE_KEY)
    if not isinstance(notice, dict) or notice.get("connector_id") != connector_id:
        return None
    del request.session[_NOTICE_KEY]
    return str(notice.get("text", ""))
