"""What the gateway copies from a request's headers is bounded (issue #10, item 4).

A request id the client chose is kept only when short and plain; any other is replaced by one the
gateway makes, which the answer names and every record carries. The content type and encoding
(quoted by rejected records and 415 answers) are refused beyond a length no media type reaches.
Both ways in are driven: the fast path and plain Litestar (``tests/unit/test_fast_path.py``).
"""

from __future__ import annotations

import re

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from gateway.request_headers import MAX_COPIED_HEADER, MAX_REQUEST_ID, request_id_of
from inlet.records import HEADER_REQUEST_ID
from tests.unit.test_fast_path import BY_URL, CONNECTOR, GOOD, JSON, MIXED, gateway

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "presented",
    [
        "a",
        "order-42:retry.1",
        "0198f3c2-6f0e-7d42-9b1e-2c4d5e6f7a8b",
        "01J9ZQ3K4M5N6P7Q8R9S0T1V2W",
        "x_" * (MAX_REQUEST_ID // 2),
    ],
)
def test_a_short_plain_request_id_is_kept(presented: str) -> None:
    assert request_id_of(presented) == presented


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "a" * (MAX_REQUEST_ID + 1),
        "a" * 900_000,
        "with space",
        "tab\there",
        "new\nline",
        'quote"d',
        "é",
        "\x00\x01\xff",
        "a/b",
        "a\u2028b",
        "inlet_ingest_k3V0aWxsLWEtdG9rZW4tYmFzZTY0",  # a token sent as a request id by mistake
        "inlet_admin_k3V0aWxsLWEtdG9rZW4tYmFzZTY0",
    ],
)
def test_any_other_request_id_is_replaced_by_a_new_one(presented: str | None) -> None:
    made = request_id_of(presented)
    assert GENERATED.fullmatch(made), made
    assert request_id_of(presented) != made  # new each time, not a fixed stand-in


BAD_IDS = {
    "long": b"r" * 100_000,
    "binary": bytes(range(0x80, 0x100)) * 4,
    "just over": b"r" * (MAX_REQUEST_ID + 1),
    "unsafe characters": b"a;b=c, d",
}


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "litestar"])
@pytest.mark.parametrize("presented", BAD_IDS.values(), ids=BAD_IDS.keys())
async def test_a_bad_request_id_is_answered_and_written_as_a_new_one(
    fast_path: bool, presented: bytes
) -> None:
    built = gateway(fast_path=fast_path)
    async with AsyncTestClient(built.app) as client:
        response = await client.post(
            BY_URL + "?mode=partial",
            headers={b"content-type": b"application/json", b"x-request-id": presented},
            content=MIXED,
        )
    assert response.status_code == 200, response.text
    answered = response.headers["x-request-id"]
    assert GENERATED.fullmatch(answered), answered[:200]
    assert len(built.producer.produced) == 2  # the valid record and the rejected one
    for topic, value, _key, headers, _partition in built.producer.produced:
        if topic == CONNECTOR.rejected_topic:
            assert msgspec.json.decode(value or b"")["request_id"] == answered
        else:
            assert dict(headers or [])[HEADER_REQUEST_ID] == answered


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "litestar"])
async def test_a_plain_request_id_is_answered_and_written_as_sent(fast_path: bool) -> None:
    built = gateway(fast_path=fast_path)
    async with AsyncTestClient(built.app) as client:
        response = await client.post(
            BY_URL, headers={**JSON, "x-request-id": "trace-7:span.3"}, content=GOOD
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "trace-7:span.3"
    assert {dict(h or [])[HEADER_REQUEST_ID] for *_, h, _ in built.producer.produced} == {
        "trace-7:span.3"
    }


LONG_HEADERS = {
    "content-type": "application/" + "y" * 4000,
    "content-encoding": "gzip, " + "z" * 4000,
}


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "litestar"])
@pytest.mark.parametrize("name", LONG_HEADERS)
async def test_an_overlong_content_header_is_refused_without_being_quoted(
    fast_path: bool, name: str
) -> None:
    built = gateway(fast_path=fast_path)
    async with AsyncTestClient(built.app) as client:
        response = await client.post(
            BY_URL + "?mode=partial", headers={**JSON, name: LONG_HEADERS[name]}, content=MIXED
        )
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_media_type"
    assert len(response.content) < 1000
    assert built.producer.produced == []


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "litestar"])
async def test_a_content_type_at_the_cap_is_read(fast_path: bool) -> None:
    content_type = "application/json; x=" + "y" * (MAX_COPIED_HEADER - 20)
    assert len(content_type) == MAX_COPIED_HEADER
    built = gateway(fast_path=fast_path)
    async with AsyncTestClient(built.app) as client:
        response = await client.post(BY_URL, headers={"content-type": content_type}, content=GOOD)
    assert response.status_code == 200, response.text
