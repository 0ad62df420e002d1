"""The OpenAPI documents' shared part: error answers described from the apps' error tables.

Litestar describes each route's success from its signature; what else a route answers (401, 404,
409, 422, 503...) it cannot know, because the errors are domain errors raised in the services.
Each app says that in one table (``gateway/_openapi.py``, ``registry/_openapi.py``): which errors
each operation may raise. ``document_errors`` adds them to the document with the status the app's
own error table gives them and the body and media type the app answers them with, so a status
documented here is a status the app answers, and the other way round.

The document is served by ``CompletedDocument`` at ``/schema/openapi.json`` (and ``/schema``):
Litestar's document, completed once, on first request, by the app's ``complete`` function. No
pages: Litestar's documentation pages (Swagger UI, ReDoc, Stoplight Elements, RapiDoc, Scalar)
load their scripts from CDNs, without integrity checks, and do not work offline; Inlet serves none
of them. The document is all a tool needs (Swagger UI or Redoc run locally, Postman, Insomnia, an
editor's OpenAPI viewer, a client generator).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from inlet.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

Document = dict[str, Any]
Operation = dict[str, Any]

OPENAPI_PATH = "/schema"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem (inlet/problems.py); some codes add members.",
    "required": ["type", "title", "status", "code", "detail", "problems"],
    "properties": {
        "type": {"type": "string", "description": PROBLEM_TYPE_BASE + "<code in kebab-case>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "stable, snake_case"},
        "detail": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "retry_after_s": {"type": "number"},
    },
}
RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 1},
}


@dataclass(frozen=True)
class ErrorAnswer:
    """One error an operation may answer: its status, its name and how its body looks."""

    status: int
    name: str  # Inlet's ``code``, or Confluent's ``error_code`` as text
    media_type: str = PROBLEM_MEDIA_TYPE
    schema: str = "Problem"  # a component of ``#/components/schemas``
    retry_after: bool = False  # answered with a ``Retry-After`` header


def operations(document: Document) -> Iterable[tuple[str, str, Operation]]:
    """Every operation of ``document``: (METHOD, path, operation)."""
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def document_errors(operation: Operation, answers: Iterable[ErrorAnswer]) -> None:
    """Describe ``answers`` in ``operation``'s responses, one response per status.

    Replaces what Litestar put under those statuses (its generic 400 ``ValidationException``).
    """
    by_status: dict[int, list[ErrorAnswer]] = {}
    for answer in answers:
        by_status.setdefault(answer.status, []).append(answer)
    responses = operation.setdefault("responses", {})
    for status, found in sorted(by_status.items()):
        names = list(dict.fromkeys(answer.name for answer in found))
        response: dict[str, Any] = {
            "description": ", ".join(names),
            "content": {
                answer.media_type: {"schema": {"$ref": f"#/components/schemas/{answer.schema}"}}
                for answer in found
            },
        }
        if any(answer.retry_after for answer in found):
            response["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
        responses[str(status)] = response


def add_schemas(document: Document, schemas: Mapping[str, Any]) -> None:
    document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)


class CompletedDocument(JsonRenderPlugin):
    """Serves ``/schema/openapi.json``: Litestar's document as ``complete`` completes it."""

    def __init__(self, complete: Callable[[Document], None]) -> None:
        super().__init__()
        self.complete = complete
        self._rendered: bytes | None = None

    def document(self, generated: Document) -> Document:
        completed = copy.deepcopy(generated)
        self.complete(completed)
        return completed

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = self.render_json(request, self.document(openapi_schema))
        return self._rendered


def openapi_config(title: str, version: str, complete: Callable[[Document], None]) -> OpenAPIConfig:
    """``title``'s document as ``complete`` completes it, as JSON at ``/schema/openapi.json`` (and
    at ``/schema``), and no pages."""
    return OpenAPIConfig(
        title=title,
        version=version,
        path=OPENAPI_PATH,
        render_plugins=[CompletedDocument(complete)],
    )


def openapi_document(app: Litestar) -> Document:
    """The document ``app`` serves at ``/schema/openapi.json``, without serving it."""
    generated = app.openapi_schema.to_schema()
    config = app.openapi_config
    plugins = [] if config is None else config.render_plugins
    completing = next((p for p in plugins if isinstance(p, CompletedDocument)), None)
    return generated if completing is None else completing.document(generated)


def _structs_by_name() -> dict[str, list[type[msgspec.Struct]]]:
    found: dict[str, list[type[msgspec.Struct]]] = {}
    pending: list[type[msgspec.Struct]] = [msgspec.Struct]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, []).append(cls)
        pending.extend(cls.__subclasses__())
    return found


def forbid_unknown_properties(document: Document) -> None:
    """``additionalProperties: false`` on the components whose Struct refuses unknown fields.

    Litestar leaves it out, so a client reading the document would send what the app refuses.
    """
    structs = _structs_by_name()
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        candidates = structs.get(name, [])
        if candidates and all(c.__struct_config__.forbid_unknown_fields for c in candidates):
            schema["additionalProperties"] = False


def constrain(document: Document, constraints: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
    """Add JSON Schema keywords to properties of components: ``(component, property)`` → keywords.

    For the rules the domain checks itself (with messages naming the field) that Litestar cannot
    read from a type. On a nullable property they go to its non-null branch.
    """
    schemas = document.get("components", {}).get("schemas", {})
    for (component, prop), keywords in constraints.items():
        target = schemas[component]["properties"][prop]
        branches = [b for b in target.get("oneOf", []) if b.get("type") != "null"]
        (branches[0] if len(branches) == 1 else target).update(keywords)
