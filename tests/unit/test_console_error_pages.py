"""The console's error pages, over HTTP on the in-memory app: a browser navigating to a console URL
that fails gets the problem as a small HTML page with the same status; the pages' scripts (JSON)
and the admin API keep getting problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from inlet.security_headers import CONSOLE_CSP
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from registry.console.error_page import back_link
from tests.registry_app import ADMIN_TOKEN, InMemoryRegistry, csrf_field, signed_in_console

# What Chromium sends when it navigates.
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SCRIPT = {"Accept": "application/json"}
Client = TestClient[Litestar]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with signed_in_console(tmp_path, BROWSER) as client:
        yield client


def _is_error_page(answer: httpx.Response, status: int, title: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    # Its own stylesheet may load, nothing else: the console's CSP, routed or not.
    assert answer.headers["content-security-policy"] == CONSOLE_CSP.decode()
    assert answer.headers["x-frame-options"] == "DENY"
    assert f"<h1>{title}</h1>" in answer.text
    assert f"Error {status}" in answer.text
    return answer.text


def test_a_missing_connector_is_an_html_page_for_a_browser(client: Client) -> None:
    page = client.get("/console/connectors/con_missing", headers=BROWSER)
    text = _is_error_page(page, 404, "Connector not found")
    assert 'data-code="connector_not_found"' in text
    assert "con_missing" in text  # the detail names it
    assert '<a href="/console/" id="back">Back to the connectors</a>' in text
    confirm = client.get("/console/connectors/con_missing/delete", headers=BROWSER)
    _is_error_page(confirm, 404, "Connector not found")


def test_the_pages_scripts_and_the_api_keep_getting_problem_json(client: Client) -> None:
    for answer in (
        client.get("/console/connectors/con_missing/live", headers=SCRIPT),
        client.get("/console/connectors/con_missing/live"),  # fetch's default */*
        client.get(
            "/v1/connectors/con_missing",
            headers={**BROWSER, "Authorization": f"Bearer {ADMIN_TOKEN}"},
        ),
    ):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "connector_not_found"


def test_an_unknown_console_path_and_a_pipeline_are_pages_too(client: Client) -> None:
    text = _is_error_page(client.get("/console/no-such-page", headers=BROWSER), 404, "Not found")
    assert "Back to the connectors" in text
    text = _is_error_page(
        client.get("/console/pipelines/pip_missing/nothing", headers=BROWSER), 404, "Not found"
    )
    assert '<a href="/console/pipelines" id="back">Back to the pipelines</a>' in text


def test_a_form_refused_by_the_csrf_check_is_a_page_and_a_script_gets_json(client: Client) -> None:
    forged = client.post("/console/sign-out", data={}, headers=BROWSER)
    _is_error_page(forged, 403, "Permission denied")
    scripted = client.post("/console/sign-out", data={}, headers=SCRIPT)
    assert scripted.status_code == 403
    assert scripted.headers["content-type"].startswith("application/problem+json")


def test_a_form_post_without_a_session_is_a_page_saying_so(tmp_path: Path) -> None:
    registry = InMemoryRegistry(Settings(data_dir=str(tmp_path)), InMemoryStateLog)
    with TestClient(registry.app) as client:
        csrf = csrf_field(client.get("/console/sign-in", headers=BROWSER).text)
        answer = client.post(
            "/console/connectors/con_x/save", data={"_csrf_token": csrf}, headers=BROWSER
        )
        text = _is_error_page(answer, 401, "Sign in required")
        assert "Sign in to the console first" in text


@pytest.mark.parametrize(
    ("path", "back"),
    [
        ("/console/connectors/con_1", "/console/"),
        ("/console/pipelines", "/console/pipelines"),
        ("/console/pipelines/pip_1/pause", "/console/pipelines"),
        ("/console/pipelinesx", "/console/"),
        ("/console/", "/console/"),
    ],
)
def test_the_way_back_is_the_areas_list(path: str, back: str) -> None:
    assert back_link(path)[0] == back
