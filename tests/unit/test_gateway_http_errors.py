"""The gateway's error table never quotes the request's path (it holds the token) nor the values
a client put in its query (issue #10, item 7; on the whole stack: ``tests/e2e/``'s
``test_token_never_echoed.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.testing import AsyncTestClient

from gateway._http_errors import handler_for
from tests.unit.test_fast_path import BY_URL, GOOD, JSON, TOKEN, gateway


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "litestar"])
@pytest.mark.parametrize("mode", ["bogus", "x" * 5000, TOKEN, "%ff"])
async def test_a_bad_mode_is_named_without_the_path_or_the_value(
    fast_path: bool, mode: str
) -> None:
    async with AsyncTestClient(gateway(fast_path=fast_path).app) as client:
        response = await client.post(f"{BY_URL}?mode={mode}", headers=JSON, content=GOOD)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["detail"] == "invalid query parameter: mode"
    assert [p["field"] for p in body["problems"]] == ["mode"]
    assert TOKEN not in response.text
    assert len(response.content) < 400


def _request(path: str) -> Request[Any, Any, Any]:
    scope: Any = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [],
        "query_string": b"",
    }
    return Request(scope)


def test_a_litestar_detail_that_names_the_path_is_answered_with_the_status_phrase() -> None:
    path = f"/v1/ingest/{TOKEN}"
    exc = HTTPException(status_code=400, detail=f"something about POST {path}")
    response = handler_for(exc)(_request(path), exc)
    assert response.status_code == 400
    assert response.content["detail"] == "Bad Request"

    plain = HTTPException(status_code=400, detail="Bad host header")
    assert handler_for(plain)(_request(path), plain).content["detail"] == "Bad host header"
