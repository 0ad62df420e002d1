"""The schema builder's form: its rows of fields, to and from the admin API's JSON body.

Every input of the builder is named by the path the admin API's problems use (``name``,
``key_field``, ``fields[2].precision``, ``fields[0].fields[1].name``), so a refusal's problems are
placed beside the input they name with no table between the two, and the form posts the same
with or without JavaScript (``static/builder.js`` only adds and deletes rows in place and
renumbers their names).

A posted form becomes the very JSON body ``POST /v1/connectors`` (or ``PATCH``) takes, which is
then decoded by msgspec into ``NewConnector`` / ``ConnectorChanges`` as the API decodes it: the
types, literals and unknown keys are checked there, and everything else by ``ConnectorService``.
Nothing here validates a field; it only reads what was typed, keeping the text as typed so that a
refused form comes back as the user left it.

Except for one input: the signature secret (``verify.secrets[0]``, a password input). It goes into
the body, and never back into a page: a refused form comes back with that input empty and a note
to enter it again, so a secret never travels back to the browser (nor into its form cache). An
edit keeps ``verify`` as it is; its secrets are added and retired on the connector's page.

Pure: no I/O, no Litestar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec

from inlet.errors import InvalidConnector, Problem
from inlet.model.connectors import Connector
from inlet.model.dedup import Dedup
from inlet.model.fields import MAX_NESTING_DEPTH, FieldSpec
from registry.connector_service import ConnectorChanges, NewConnector

T = TypeVar("T")

# What a row's inputs are named after its path: ``fields[2].precision``.
ROW_INPUTS: Final = ("name", "type", "nullable", "precision", "scale", "symbols", "items")
# The connector's own inputs, named as the API's body names them.
SETTING_INPUTS: Final = (
    "name",
    "description",
    "key_field",
    "reject_unknown_fields",
    "atomic",
    "rate_limit_per_s",
    "partitions",
    "replication_factor",
    "on_delete",
    "envelope",
)
# The signature setting's inputs (create only), named by the API's problem paths.
VERIFY_INPUTS: Final = (
    "verify",
    "verify.scheme",
    "verify.secrets",
    "verify.secrets[0]",
    "verify.tolerance_s",
    "verify.header",
    "verify.algorithm",
    "verify.encoding",
    "verify.prefix",
    "verify.signed",
    "verify.timestamp_header",
)
DEDUP_INPUTS: Final = ("dedup", "dedup.header", "dedup.pointer", "dedup.envelope", "dedup.window_s")
_RECIPE: Final = ("header", "algorithm", "encoding", "prefix", "signed", "timestamp_header")
# Problems without an input of their own are shown where the builder's list of fields is.
FIELDS_ANCHOR: Final = "fields"
SUMMARY_ANCHOR: Final = ""  # the top of the form
EXAMPLE_ANCHOR: Final = "example"

_ROW_KEY = re.compile(r"((?:fields\[\d+\]\.)*fields\[\d+\])\.([a-z_]+)")
_INDEX = re.compile(r"\[(\d+)\]")
_MSGSPEC_AT = re.compile(r"(?s)(.*) - at `\$\.?(.*)`")
_LAST_STEP = re.compile(r"(?:\.[^.\[\]]+|\[\d+\])$")
# Deeper rows than the API could accept are not read: parsing stays bounded whatever is posted.
_MAX_ROW_DEPTH: Final = MAX_NESTING_DEPTH + 1


@dataclass
class Row:
    """One field as its inputs hold it: text as typed, nested rows for an object."""

    name: str = ""
    type: str = "string"
    nullable: bool = False
    precision: str = ""
    scale: str = ""
    symbols: str = ""
    items: str = "string"
    fields: list[Row] = field(default_factory=list)


@dataclass
class VerifyDraft:
    """The signature setting as typed; ``scheme`` empty: none."""

    scheme: str = ""
    # Sent to the service, never rendered: the page's input is always empty (see the module).
    secret: str = field(default="", repr=False)
    tolerance_s: str = ""
    # The ``hmac`` recipe (sent for that scheme only: the inputs are hidden for the others).
    header: str = ""
    algorithm: str = ""
    encoding: str = ""
    prefix: str = ""
    signed: str = ""
    timestamp_header: str = ""


@dataclass
class DedupDraft:
    """The idempotency-key setting as typed; ``on`` false: none."""

    on: bool = False
    header: str = ""
    pointer: str = ""
    envelope: bool = False
    window_s: str = ""


@dataclass
class Draft:
    """Everything the builder's form holds."""

    name: str = ""
    description: str = ""
    rows: list[Row] = field(default_factory=lambda: [Row()])
    key_field: str = ""
    reject_unknown_fields: bool = False
    atomic: bool = False
    rate_limit_per_s: str = ""
    partitions: str = ""
    replication_factor: str = ""
    on_delete: str = "delete"
    envelope: str = ""
    verify: VerifyDraft = field(default_factory=VerifyDraft)
    dedup: DedupDraft = field(default_factory=DedupDraft)
    # "Start from an example": the pasted records and how to read them.
    example: str = ""
    example_format: str = "auto"


# --- Form → draft ---------------------------------------------------------------------------


def draft_from_form(items: Iterable[tuple[str, str]]) -> Draft:
    """The draft a posted form holds; rows ordered by their indices, gaps closed."""
    values: dict[str, str] = {}
    cells: dict[tuple[int, ...], dict[str, str]] = {}
    for key, value in items:
        matched = _ROW_KEY.fullmatch(key)
        if matched is None:
            values.setdefault(key, value)
            continue
        path, attribute = matched.groups()
        indices = tuple(int(i) for i in _INDEX.findall(path))
        if attribute in ROW_INPUTS and len(indices) <= _MAX_ROW_DEPTH:
            cells.setdefault(indices, {}).setdefault(attribute, value)
    return Draft(
        name=values.get("name", ""),
        description=values.get("description", ""),
        rows=_tree(cells),
        key_field=values.get("key_field", ""),
        reject_unknown_fields="reject_unknown_fields" in values,
        atomic="atomic" in values,
        rate_limit_per_s=values.get("rate_limit_per_s", ""),
        partitions=values.get("partitions", ""),
        replication_factor=values.get("replication_factor", ""),
        on_delete=values.get("on_delete", "delete"),
        envelope=values.get("envelope", ""),
        verify=VerifyDraft(
            scheme=values.get("verify.scheme", ""),
            secret=values.get("verify.secrets[0]", ""),
            tolerance_s=values.get("verify.tolerance_s", ""),
            **{name: values.get(f"verify.{name}", "") for name in _RECIPE},
        ),
        dedup=DedupDraft(
            on="dedup" in values,
            header=values.get("dedup.header", ""),
            pointer=values.get("dedup.pointer", ""),
            envelope="dedup.envelope" in values,
            window_s=values.get("dedup.window_s", ""),
        ),
        example=values.get("example", ""),
        example_format=values.get("example_format", "auto"),
    )


def _tree(cells: dict[tuple[int, ...], dict[str, str]]) -> list[Row]:
    # A nested row whose object row posted nothing still gets that object row.
    keys = set(cells)
    keys.update(key[:depth] for key in cells for depth in range(1, len(key)))
    top: list[Row] = []
    rows: dict[tuple[int, ...], Row] = {}
    for key in sorted(keys):  # an object's row sorts before its nested rows, siblings in order
        row = _row(cells.get(key, {}))
        rows[key] = row
        (rows[key[:-1]].fields if len(key) > 1 else top).append(row)
    return top


def _row(cells: Mapping[str, str]) -> Row:
    return Row(
        name=cells.get("name", ""),
        type=cells.get("type", "string"),
        nullable="nullable" in cells,
        precision=cells.get("precision", ""),
        scale=cells.get("scale", ""),
        symbols=cells.get("symbols", ""),
        items=cells.get("items", "string"),
        fields=[],
    )


# --- Row edits without JavaScript: the form's Add and Delete buttons -------------------------


def row_path(indices: Iterable[int]) -> str:
    return ".".join(f"fields[{i}]" for i in indices)


def _indices(path: str) -> tuple[int, ...] | None:
    if path and re.fullmatch(r"(?:fields\[\d+\]\.)*fields\[\d+\]", path) is None:
        return None
    return tuple(int(i) for i in _INDEX.findall(path))


def add_row(rows: list[Row], into: str) -> None:
    """One more empty row: at the top (``into`` empty) or among the object row at ``into``."""
    target = _find(rows, into)
    if target is not None:
        target.append(Row())


def delete_row(rows: list[Row], path: str) -> None:
    """Remove the row at ``path``, nested rows and all; a path not there changes nothing."""
    indices = _indices(path)
    if not indices:
        return
    siblings = _find(rows, row_path(indices[:-1]))
    if siblings is not None and indices[-1] < len(siblings):
        del siblings[indices[-1]]


def _find(rows: list[Row], path: str) -> list[Row] | None:
    """The list of rows inside the object row at ``path`` (the top list for an empty path)."""
    indices = _indices(path)
    if indices is None:
        return None
    level = rows
    for index in indices:
        if index >= len(level):
            return None
        level = level[index].fields
    return level


# --- Draft → the API's body, decoded as the API decodes it -----------------------------------


def fields_body(rows: list[Row]) -> list[dict[str, Any]]:
    """The ``fields`` of the API's JSON body for ``rows``: each with what its type takes."""
    body = []
    for row in rows:
        spec: dict[str, Any] = {"name": row.name, "type": row.type}
        if row.nullable:
            spec["nullable"] = True
        if row.type == "decimal":
            spec["precision"] = _number(row.precision)
            if row.scale.strip():
                spec["scale"] = _number(row.scale)
        elif row.type == "enum":
            # Commas only: "PAID LATER" is one symbol, refused as such, not two.
            spec["symbols"] = [s.strip() for s in row.symbols.split(",") if s.strip()]
        elif row.type == "array":
            spec["items"] = row.items
        elif row.type == "object":
            spec["fields"] = fields_body(row.fields)
        body.append(spec)
    return body


def create_body(draft: Draft) -> dict[str, Any]:
    """The ``POST /v1/connectors`` body the draft holds (settings left empty are left out)."""
    body: dict[str, Any] = {
        "name": draft.name,
        "description": draft.description,
        "fields": fields_body(draft.rows),
        "reject_unknown_fields": draft.reject_unknown_fields,
        "atomic": draft.atomic,
        "on_delete": draft.on_delete,
        "key_field": draft.key_field.strip() or None,
        "envelope": draft.envelope or None,
    }
    for name, text in (
        ("rate_limit_per_s", draft.rate_limit_per_s),
        ("partitions", draft.partitions),
        ("replication_factor", draft.replication_factor),
    ):
        if text.strip():
            body[name] = _number(text)
    if draft.verify.scheme:
        body["verify"] = verify_body(draft.verify)
    body["dedup"] = dedup_body(draft.dedup)
    return body


def verify_body(verify: VerifyDraft) -> dict[str, Any]:
    """``verify`` with the one secret typed (an empty one too: the API names its place)."""
    body: dict[str, Any] = {"scheme": verify.scheme, "secrets": [verify.secret]}
    if verify.tolerance_s.strip():
        body["tolerance_s"] = _number(verify.tolerance_s)
    if verify.scheme == "hmac":
        for name in _RECIPE:
            # The prefix is the one recipe input whose blanks could matter: kept as typed.
            text = getattr(verify, name)
            if text.strip():
                body[name] = text if name == "prefix" else text.strip()
    return body


def dedup_body(dedup: DedupDraft) -> dict[str, Any] | None:
    """``dedup``, or None when off; inputs left empty are left out, so the presets apply."""
    if not dedup.on:
        return None
    body: dict[str, Any] = {}
    for name in ("header", "pointer"):
        if text := getattr(dedup, name).strip():
            body[name] = text
    if dedup.envelope:
        body["envelope"] = True
    if dedup.window_s.strip():
        body["window_s"] = _number(dedup.window_s)
    return body


def changes_body(draft: Draft) -> dict[str, Any]:
    """The ``PATCH`` body the edit form holds: what the builder shows, the topic's layout and
    the signature setting left as they are; an empty rate limit clears it, dedup off removes it."""
    body = create_body(draft)
    # Shown, not changeable (the topic exists); the edit form's inputs are disabled, so not posted.
    body.pop("partitions", None)
    body.pop("replication_factor", None)
    # Its secrets are the connector page's to add and retire; the edit form has no such inputs.
    body.pop("verify", None)
    body.setdefault("rate_limit_per_s", None)
    return body


def new_connector(draft: Draft) -> NewConnector:
    return _decoded(create_body(draft), NewConnector)


def connector_changes(draft: Draft) -> ConnectorChanges:
    return _decoded(changes_body(draft), ConnectorChanges)


def _decoded(body: dict[str, Any], into: type[T]) -> T:
    try:
        return msgspec.convert(body, into)
    except msgspec.ValidationError as exc:
        raise InvalidConnector("invalid connector", problems=[_msgspec_problem(exc)]) from exc


def _msgspec_problem(exc: msgspec.ValidationError) -> Problem:
    matched = _MSGSPEC_AT.fullmatch(str(exc))
    if matched is None:
        return Problem(field=SUMMARY_ANCHOR, reason=str(exc))
    reason, path = matched.groups()
    return Problem(field=path, reason=reason)


def _number(text: str) -> int | float | str:
    """A number as typed; text that is none is kept, for the decoder to name its place."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


# --- API shape → draft: edit, and the fields an example proposes ------------------------------


def rows_of(fields: Iterable[FieldSpec]) -> list[Row]:
    return [
        Row(
            name=spec.name,
            type=spec.type,
            nullable=spec.nullable,
            precision="" if spec.precision is None else str(spec.precision),
            scale="" if spec.scale is None else str(spec.scale),
            symbols=", ".join(spec.symbols or []),
            items=spec.items or "string",
            fields=rows_of(spec.fields or []),
        )
        for spec in fields
    ]


def draft_of(connector: Connector) -> Draft:
    """The edit form of ``connector``: its fields and the settings the builder shows."""
    rate = connector.rate_limit_per_s
    return Draft(
        name=connector.name,
        description=connector.description,
        rows=rows_of(connector.fields),
        key_field=connector.key_field or "",
        reject_unknown_fields=connector.reject_unknown_fields,
        atomic=connector.atomic,
        rate_limit_per_s="" if rate is None else f"{rate:g}",
        partitions=str(connector.partitions),
        replication_factor=str(connector.replication_factor),
        on_delete=connector.on_delete,
        envelope=connector.envelope or "",
        verify=VerifyDraft(scheme=connector.verify.scheme if connector.verify else ""),
        dedup=_dedup_draft(connector.dedup),
    )


def _dedup_draft(dedup: Dedup | None) -> DedupDraft:
    if dedup is None:
        return DedupDraft()
    return DedupDraft(
        on=True,
        header=dedup.header or "",
        pointer=dedup.pointer or "",
        envelope=dedup.envelope,
        window_s=str(dedup.window_s),
    )


# --- Problems beside their inputs ------------------------------------------------------------


def anchors_of(rows: list[Row]) -> set[str]:
    """Every path the builder shows a problem beside: the settings, the rows and their inputs."""
    anchors = {*SETTING_INPUTS, *VERIFY_INPUTS, *DEDUP_INPUTS}
    anchors.update((FIELDS_ANCHOR, EXAMPLE_ANCHOR, SUMMARY_ANCHOR))

    def visit(level: list[Row], prefix: tuple[int, ...]) -> None:
        for index, row in enumerate(level):
            path = row_path((*prefix, index))
            anchors.update((path, f"{path}.fields"), (f"{path}.{i}" for i in ROW_INPUTS))
            visit(row.fields, (*prefix, index))

    visit(rows, ())
    return anchors


def place_problems(problems: Iterable[Problem], anchors: set[str]) -> dict[str, list[str]]:
    """Each problem's reason under the nearest path the page shows it beside.

    ``fields[0].symbols[2]`` goes beside ``fields[0].symbols``; a path the page has no input for
    goes to the top of the form, with its path, so no reason is lost.
    """
    placed: dict[str, list[str]] = {}
    for problem in problems:
        path = problem.field
        while path not in anchors:
            shorter = _LAST_STEP.sub("", path)
            path = shorter if shorter != path else SUMMARY_ANCHOR
        reason = problem.reason
        if path == SUMMARY_ANCHOR and problem.field:
            reason = f"{problem.field}: {reason}"
        elif path != problem.field:
            reason = f"{problem.field.removeprefix(path).lstrip('.')}: {reason}"
        placed.setdefault(path, []).append(reason)
    return placed


# --- "Start from an example" ----------------------------------------------------------------

EXAMPLE_MEDIA_TYPES: Final = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
}


def example_media_type(example: str, chosen: str) -> str:
    """How to read a pasted example: as chosen, or by its look (``auto``): an array, or one
    object → JSON; lines each holding an object → NDJSON; anything else → CSV (a header line)."""
    if chosen in EXAMPLE_MEDIA_TYPES:
        return EXAMPLE_MEDIA_TYPES[chosen]
    text = example.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and all(line.startswith("{") and line.endswith("}") for line in lines):
        return EXAMPLE_MEDIA_TYPES["ndjson"]
    if text.startswith(("{", "[")):
        return EXAMPLE_MEDIA_TYPES["json"]
    return EXAMPLE_MEDIA_TYPES["csv"]
