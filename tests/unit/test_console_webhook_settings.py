"""The console's webhook settings over HTTP on the in-memory app: the builder's verify and dedup
inputs, the connector page's section (fingerprints, never secrets), adding and retiring a secret,
and a secret never sent back in a page, whatever was refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from inlet.model.verify import fingerprint
from tests.registry_app import ADMIN_TOKEN, csrf_field, signed_in_console

HTML = {"Accept": "text/html"}
API = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
Client = TestClient[Litestar]
SECRET = "whsec_console-unit-secret"
OTHER = "whsec_console-unit-other"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with signed_in_console(tmp_path) as client:
        yield client


def _stripe_connector(client: Client) -> dict[str, Any]:
    body = {
        "name": "hooks",
        "fields": [{"name": "id", "type": "string"}],
        "verify": {"scheme": "stripe", "secrets": [SECRET]},
        "dedup": {},
    }
    made = client.post("/v1/connectors", json=body, headers=API)
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


def _post(client: Client, path: str, data: dict[str, str], page: str | None = None) -> Any:
    csrf = csrf_field(client.get(page or path, headers=HTML).text)
    return client.post(
        path, data={**data, "_csrf_token": csrf}, headers=HTML, follow_redirects=False
    )


def test_the_builder_creates_a_verified_connector_with_dedup(client: Client) -> None:
    made = _post(
        client,
        "/console/connectors/new",
        {
            "action": "create",
            "name": "built",
            "fields[0].name": "id",
            "fields[0].type": "string",
            "verify.scheme": "stripe",
            "verify.secrets[0]": SECRET,
            "dedup": "on",
            "dedup.window_s": "3600",
        },
    )
    assert made.status_code == 303, made.text
    connector_id = made.headers["location"].rsplit("/", 1)[1]
    view = client.get(f"/v1/connectors/{connector_id}", headers=API).json()
    assert view["verify"]["scheme"] == "stripe"
    assert [s["fingerprint"] for s in view["verify"]["secrets"]] == [fingerprint(SECRET)]
    assert view["dedup"] == {"header": None, "pointer": "/id", "envelope": False, "window_s": 3600}


def test_a_refused_create_never_sends_the_secret_back(client: Client) -> None:
    refused = _post(
        client,
        "/console/connectors/new",
        {
            "action": "create",
            "name": "bad",
            "fields[0].name": "id",
            "verify.scheme": "stripe",
            "verify.secrets[0]": "not-a-stripe-secret",
            "dedup": "on",
            "dedup.pointer": "id",
        },
    )
    assert refused.status_code == 422
    assert "not-a-stripe-secret" not in refused.text
    assert 'id="secret-again"' in refused.text
    assert 'id="e-verify.secrets[0]"' in refused.text  # beside its input
    assert 'id="e-dedup.pointer"' in refused.text
    assert 'value="id"' in refused.text  # everything else kept
    # A row added without JavaScript shows the form again, without the secret, too.
    added = _post(
        client,
        "/console/connectors/new",
        {"action": "add:", "name": "x", "verify.scheme": "github", "verify.secrets[0]": "gh-s"},
    )
    assert added.status_code == 200
    assert "gh-s" not in added.text


def test_the_page_shows_fingerprints_and_the_signed_example_never_a_secret(
    client: Client,
) -> None:
    connector = _stripe_connector(client)
    page = client.get(f"/console/connectors/{connector['id']}", headers=HTML)
    assert page.status_code == 200
    assert SECRET not in page.text
    assert fingerprint(SECRET) in page.text
    assert 'id="verify-scheme">stripe, timestamps within 300 s (5 minutes)' in page.text
    assert "keyed by each record&#39;s /id, remembered 86400 s (1 day)" in page.text
    assert 'id="curl-signed"' in page.text
    assert "Stripe-Signature: t=$TS,v1=$SIG" in page.text


def test_adding_and_retiring_a_secret(client: Client) -> None:
    connector = _stripe_connector(client)
    path = f"/console/connectors/{connector['id']}"

    added = _post(client, f"{path}/verify/secrets", {"secret": OTHER}, page=path)
    assert added.status_code == 303
    assert added.headers["location"].startswith(f"{path}?secret_added={fingerprint(OTHER)}")
    shown = client.get(added.headers["location"], headers=HTML).text
    assert f"Secret {fingerprint(OTHER)} added" in shown
    assert OTHER not in shown

    again = _post(client, f"{path}/verify/secrets", {"secret": OTHER}, page=path)
    assert again.status_code == 422
    assert "the connector has it already" in again.text
    assert OTHER not in again.text
    empty = _post(client, f"{path}/verify/secrets", {"secret": ""}, page=path)
    assert empty.status_code == 422

    retire = f"{path}/verify/secrets/{fingerprint(SECRET)}/retire"
    retired = _post(client, retire, {}, page=path)
    assert retired.status_code == 303
    view = client.get(f"/v1/connectors/{connector['id']}", headers=API).json()
    assert [s["fingerprint"] for s in view["verify"]["secrets"]] == [fingerprint(OTHER)]

    last = _post(client, f"{path}/verify/secrets/{fingerprint(OTHER)}/retire", {}, page=path)
    assert last.status_code == 422
    assert "the last secret" in last.text
    unknown = _post(client, f"{path}/verify/secrets/{'0' * 16}/retire", {}, page=path)
    assert unknown.status_code == 404
    assert 'data-code="verify_secret_not_found"' in unknown.text


def test_a_connector_without_verify_gets_the_scheme_form(client: Client) -> None:
    body = {"name": "plain", "fields": [{"name": "id", "type": "string"}]}
    connector = client.post("/v1/connectors", json=body, headers=API).json()
    path = f"/console/connectors/{connector['id']}"
    assert 'id="set-verify"' in client.get(path, headers=HTML).text

    refused = _post(
        client,
        f"{path}/verify",
        {"verify.scheme": "stripe", "verify.secrets[0]": "nope"},
        page=path,
    )
    assert refused.status_code == 422
    assert "nope" not in refused.text
    assert 'id="e-verify.secrets[0]"' in refused.text

    turned_on = _post(
        client, f"{path}/verify", {"verify.scheme": "github", "verify.secrets[0]": "s"}, page=path
    )
    assert turned_on.status_code == 303
    view = client.get(f"/v1/connectors/{connector['id']}", headers=API).json()
    assert view["verify"]["scheme"] == "github"


def test_a_crafted_notice_says_nothing_the_connector_does_not_show(client: Client) -> None:
    connector = _stripe_connector(client)
    page = client.get(
        f"/console/connectors/{connector['id']}?secret_added=0000000000000000", headers=HTML
    )
    assert 'id="webhook-notice"' not in page.text
