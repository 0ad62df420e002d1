"""The connector page over HTTP on the in-memory app: the token shown once, the live JSON, a save
before 50 refused with the API's problem, and the token in no console URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from registry.console.session import SESSION_COOKIE
from tests.registry_app import ADMIN_TOKEN, csrf_field, signed_in_console

HTML = {"Accept": "text/html"}
API = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
Client = TestClient[Litestar]
_URL = re.compile(r'id="ingest-url">([^<]*)<')


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with signed_in_console(tmp_path) as client:
        yield client


def _connector(client: Client) -> dict[str, Any]:
    body = {"name": "orders", "fields": [{"name": "id", "type": "string"}]}
    made = client.post("/v1/connectors", json=body, headers=API)
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


def _shown_url(client: Client, connector_id: str) -> str:
    page = client.get(f"/console/connectors/{connector_id}", headers=HTML)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    found = _URL.search(page.text)
    assert found, page.text
    return found.group(1)


def test_a_rotated_token_is_shown_once_and_in_no_url(client: Client) -> None:
    connector = _connector(client)
    path = f"/console/connectors/{connector['id']}"
    assert "\u2022" in _shown_url(client, connector["id"])  # made by the API: shown there
    csrf = csrf_field(client.get(path, headers=HTML).text)
    rotated = client.post(
        f"{path}/rotate-token",
        data={"grace_period_s": "0", "_csrf_token": csrf},
        headers=HTML,
        follow_redirects=False,
    )
    assert rotated.status_code == 303
    assert rotated.headers["location"] == path  # the token is not in it
    url = _shown_url(client, connector["id"])
    assert "\u2022" not in url
    assert url != connector["ingest_url"]
    assert "\u2022" in _shown_url(client, connector["id"])  # taken out of the session


def test_the_live_part_is_json_from_the_sample_service(client: Client) -> None:
    connector = _connector(client)
    live = client.get(f"/console/connectors/{connector['id']}/live")
    assert live.status_code == 200, live.text
    assert live.json() == {
        "status": "awaiting_samples",
        "count": 0,
        "required": 50,
        "accepted": 0,
        "rejected": 0,
        "can_save": False,
        "columns": ["id"],
        "rows": [],
        "rejected_rows": [],
    }


def test_a_save_before_50_is_the_services_409_shown_on_the_page(client: Client) -> None:
    connector = _connector(client)
    path = f"/console/connectors/{connector['id']}"
    csrf = csrf_field(client.get(path, headers=HTML).text)
    refused = client.post(f"{path}/save", data={"_csrf_token": csrf}, headers=HTML)
    assert refused.status_code == 409
    assert 'data-code="not_enough_samples"' in refused.text
    assert "50 more valid records are needed" in refused.text
    assert client.get(f"/v1/connectors/{connector['id']}", headers=API).json()["status"] == (
        "awaiting_samples"
    )


def test_a_form_without_the_csrf_token_is_refused(client: Client) -> None:
    connector = _connector(client)
    forged = client.post(f"/console/connectors/{connector['id']}/save", headers=HTML)
    assert forged.status_code == 403


def _session_cookies_set(answer: httpx.Response) -> list[str]:
    return [c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]


def test_a_poll_in_flight_during_rotate_cannot_put_the_token_back(client: Client) -> None:
    """Every answer used to re-seal the session: a poll sent with the cookie that still held the
    new token, answered after the page took it out, put it back for the next reload."""
    connector = _connector(client)
    path = f"/console/connectors/{connector['id']}"
    csrf = csrf_field(client.get(path, headers=HTML).text)
    rotated = client.post(
        f"{path}/rotate-token",
        data={"grace_period_s": "0", "_csrf_token": csrf},
        headers=HTML,
        follow_redirects=False,
    )
    assert _session_cookies_set(rotated)  # the token handed to the page
    holding_token = client.cookies[SESSION_COOKIE]

    shown = _shown_url(client, connector["id"])  # the page takes it: a new cookie without it
    assert "\u2022" not in shown
    taken = client.cookies[SESSION_COOKIE]
    assert taken != holding_token

    # The polls that were sent with the old cookie are answered now, last.
    client.cookies.set(SESSION_COOKIE, holding_token, path="/console")
    for late in (f"{path}/live", "/console/pipelines/status"):
        answer = client.get(late, headers={"Accept": "application/json"})
        assert answer.status_code == 200, answer.text
        assert _session_cookies_set(answer) == []  # only an answer that changed it sets it
    client.cookies.set(SESSION_COOKIE, taken, path="/console")

    assert "\u2022" in _shown_url(client, connector["id"])


def test_an_answer_that_only_reads_the_session_sets_no_cookie(client: Client) -> None:
    connector = _connector(client)
    for path in ("/console/", f"/console/connectors/{connector['id']}", "/console/pipelines"):
        answer = client.get(path, headers=HTML)
        assert answer.status_code == 200, answer.text
        assert _session_cookies_set(answer) == []
