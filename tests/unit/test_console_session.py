"""The console's sign-in, session, CSRF check and headers, over HTTP on the in-memory app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from registry.console.session import CSRF_COOKIE, SESSION_COOKIE, local_next, sign_in_location
from tests.registry_app import ADMIN_TOKEN, InMemoryRegistry, csrf_field

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
Client = TestClient[Litestar]


def _registry(tmp_path: Path, **settings: object) -> InMemoryRegistry[InMemoryStateLog]:
    return InMemoryRegistry(
        msgspec.structs.replace(Settings(data_dir=str(tmp_path)), **settings),
        InMemoryStateLog,
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with TestClient(_registry(tmp_path).app) as client:
        yield client


def _csrf(client: Client, path: str = "/console/sign-in") -> str:
    """The CSRF field of the form on ``path`` (the GET also sets the CSRF cookie)."""
    page = client.get(path, headers=HTML)
    assert page.status_code == 200, page.text
    return csrf_field(page.text)


def _sign_in(client: Client, token: str = ADMIN_TOKEN, next_path: str = "") -> httpx.Response:
    csrf = _csrf(client)
    return client.post(
        "/console/sign-in",
        data={"token": token, "next": next_path, "_csrf_token": csrf},
        headers=HTML,
        follow_redirects=False,
    )


def test_a_console_page_without_a_session_sends_a_browser_to_sign_in(
    client: Client,
) -> None:
    answer = client.get("/console/connectors?cursor=abc", headers=HTML, follow_redirects=False)
    assert answer.status_code == 303
    assert (
        answer.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fconnectors%3Fcursor%3Dabc"
    )
    start = client.get("/console/", headers=HTML, follow_redirects=False)
    assert start.headers["location"] == "/console/sign-in"


def test_a_console_request_without_a_session_that_is_not_a_page_is_401(
    client: Client,
) -> None:
    for answer in (
        client.get("/console/connectors", headers={"Accept": "application/json"}),
        client.get("/console/connectors"),
    ):
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "sign_in_required"
    # The API's Bearer token is not a console session.
    bearer = client.get("/console/connectors", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert bearer.status_code == 401


def test_sign_in_with_the_admin_token_opens_a_session(client: Client) -> None:
    answer = _sign_in(client)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "max-age=43200" in cookie.lower()  # 12 h, INLET_CONSOLE_SESSION_HOURS
    assert "secure" not in attributes  # served over http here
    assert ADMIN_TOKEN not in cookie
    page = client.get("/console/", headers=HTML)
    assert page.status_code == 200
    assert "Connectors" in page.text


def test_a_wrong_token_opens_no_session(client: Client) -> None:
    answer = _sign_in(client, token="inlet_admin_not-it")
    assert answer.status_code == 401
    assert "not the admin token" in answer.text
    assert "inlet_admin_not-it" not in answer.text
    assert not any(
        c.startswith(SESSION_COOKIE + "=") for c in answer.headers.get_list("set-cookie")
    )
    assert client.get("/console/", headers=HTML, follow_redirects=False).status_code == 303


def test_sign_in_comes_back_to_the_page_asked_for(client: Client) -> None:
    answer = _sign_in(client, next_path="/console/connectors?cursor=x")
    assert answer.headers["location"] == "/console/connectors?cursor=x"


@pytest.mark.parametrize(
    "wanted",
    [
        "https://evil.example/console/",
        "//evil.example/console/",
        "/\\evil.example",
        "/console/../v1/connectors",
        "/v1/connectors",
        "/console//evil.example",
        "/console/\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        "/console/sign-in?next=https://evil.example",
    ],
)
def test_sign_in_never_sends_a_browser_off_the_console(client: Client, wanted: str) -> None:
    assert local_next(wanted) == "/console/"
    assert sign_in_location(wanted) == "/console/sign-in"
    answer = _sign_in(client, next_path=wanted)
    assert answer.headers["location"] == "/console/"


def test_sign_out_ends_the_session(client: Client) -> None:
    _sign_in(client)
    csrf = _csrf(client, "/console/")
    answer = client.post(
        "/console/sign-out", data={"_csrf_token": csrf}, headers=HTML, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"
    assert client.get("/console/", headers=HTML, follow_redirects=False).status_code == 303


def test_a_post_without_the_csrf_token_is_refused(client: Client) -> None:
    _sign_in(client)
    # A cross-site form post: the browser would send no CSRF field (and, SameSite=Strict, no
    # cookies either); even with the session cookie present it is refused.
    answer = client.post("/console/sign-out", data={}, headers=HTML, follow_redirects=False)
    assert answer.status_code == 403
    wrong = client.post(
        "/console/sign-out", data={"_csrf_token": "0" * 128}, headers=HTML, follow_redirects=False
    )
    assert wrong.status_code == 403
    assert client.get("/console/", headers=HTML, follow_redirects=False).status_code == 200
    # Sign-in itself is protected too (a forged sign-in into someone else's session).
    client.cookies.clear()
    forged = client.post(
        "/console/sign-in", data={"token": ADMIN_TOKEN}, headers=HTML, follow_redirects=False
    )
    assert forged.status_code == 403


def test_the_csrf_header_is_accepted_for_scripts(client: Client) -> None:
    _sign_in(client)
    csrf = _csrf(client, "/console/")
    answer = client.post(
        "/console/sign-out", headers={**HTML, "X-CSRF-Token": csrf}, follow_redirects=False
    )
    assert answer.status_code == 303


def test_the_session_survives_a_restart_and_another_process(tmp_path: Path) -> None:
    with TestClient(_registry(tmp_path).app) as first:
        _sign_in(first)
        cookies = dict(first.cookies)
    # Another registry on the same data dir (its secret key) and admin token: a restart, or the
    # other worker process.
    with TestClient(_registry(tmp_path).app, cookies=cookies) as second:
        assert second.get("/console/", headers=HTML, follow_redirects=False).status_code == 200
    # Another secret key: the cookie opens nowhere else.
    with TestClient(_registry(tmp_path / "other").app, cookies=cookies) as third:
        assert third.get("/console/", headers=HTML, follow_redirects=False).status_code == 303


def test_a_session_ends_after_its_hours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(_registry(tmp_path, console_session_hours=1).app) as client:
        _sign_in(client)
        assert client.get("/console/", headers=HTML, follow_redirects=False).status_code == 200
        import time as real_time

        later = real_time.time() + 3601
        monkeypatch.setattr("registry.console.session.time.time", lambda: later)
        assert client.get("/console/", headers=HTML, follow_redirects=False).status_code == 303


def test_console_pages_carry_the_console_headers(client: Client) -> None:
    for answer in (
        client.get("/console/sign-in", headers=HTML),
        client.get("/console/static/console.css"),
    ):
        assert answer.status_code == 200
        assert answer.headers["content-security-policy"] == CONSOLE_CSP
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-content-type-options"] == "nosniff"
    _sign_in(client)
    page = client.get("/console/", headers=HTML)
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["content-security-policy"] == CONSOLE_CSP
    assert page.headers["content-type"].startswith("text/html")
    # No inline script: every <script> names a file of the console's own.
    assert "<script>" not in page.text


def test_cookies_are_secure_over_https(tmp_path: Path) -> None:
    app = _registry(tmp_path).app
    with TestClient(app, base_url="https://registry.example") as client:
        page = client.get("/console/sign-in", headers=HTML)
        assert all("secure" in c.lower() for c in page.headers.get_list("set-cookie"))
        assert any(c.startswith(CSRF_COOKIE + "=") for c in page.headers.get_list("set-cookie"))


def test_a_browser_asking_for_the_root_is_sent_to_the_console(
    client: Client,
) -> None:
    answer = client.get("/", headers=HTML, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/"
    # API clients keep Confluent's {} (with the admin token, as every API path wants).
    api = client.get("/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert api.status_code == 200
    assert api.json() == {}
    assert client.get("/", headers={"Accept": "*/*"}).status_code == 401
