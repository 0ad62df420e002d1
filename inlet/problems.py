"""Inlet's own API answers errors as RFC 9457 ``application/problem+json``, in one shape.

Both HTTP apps (the gateway and the registry's admin API) render through ``problem_response``::

    {"type": "https://inlet.dev/problems/<code in kebab-case>", "title": "<Code in words>",
     "status": 404, "code": "<code>", "detail": "<what happened>",
     "problems": [{"field", "reason"}, ...], ...extension members (``InletError.details()``)}

``code`` is the stable, machine-readable part: the snake_case name of the domain error
(``connector_not_found``, ``body_unparseable``). ``problems`` is always there (empty when the
``detail`` says it all). The Confluent-compatible registry API keeps Confluent's own
``{"error_code", "message"}`` instead (``registry/_http_errors.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Response

from inlet.errors import Problem

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://inlet.dev/problems/"


def problem_body(
    status: int, code: str, detail: str, problems: Sequence[Problem] = (), **extra: object
) -> dict[str, object]:
    return {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "code": code,
        "detail": detail,
        "problems": msgspec.to_builtins(list(problems)),
        **extra,
    }


def problem_response(
    status: int,
    code: str,
    detail: str,
    problems: Sequence[Problem] = (),
    *,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> Response[Any]:
    return Response(
        problem_body(status, code, detail, problems, **extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )
