"""The console's webhook settings in Chromium (issue #13's "Also"): a Stripe-verified connector
with dedup made through the builder; its page shows the secret's fingerprint, never the secret; a
secret added and another retired there; a POST signed as Stripe signs is accepted and the same
event again is answered duplicate. And the token's one-page guarantee with a second tab polling
while the first rotates (``registry/console/session.py``: only answers that change the session set
its cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from inlet.model.verify import fingerprint
from tests.browser.conftest import Console

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

MASK = "\u2022"
SECRET = "whsec_browser-first-" + uuid.uuid4().hex
NEXT_SECRET = "whsec_browser-next-" + uuid.uuid4().hex
# The gateway takes a new secret within its poll interval (well under a second): generous here.
SECRET_TAKEN_S = 60.0


def stripe_signed(body: bytes, secret: str) -> dict[str, str]:
    """The headers Stripe sends: ``t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">``."""
    ts = int(time.time())
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "stripe-signature": f"t={ts},v1={digest}"}


def post_signed(url: str, body: bytes, secret: str) -> httpx.Response:
    """POST ``body`` signed with ``secret``, again while the gateway has not taken the secret
    yet (401) until a deadline."""
    deadline = time.monotonic() + SECRET_TAKEN_S
    with httpx.Client(timeout=30) as client:
        while True:
            answer = client.post(url, content=body, headers=stripe_signed(body, secret))
            if answer.status_code != 401 or time.monotonic() > deadline:
                return answer


def test_a_stripe_connector_with_dedup_from_the_builder_to_a_duplicate(
    page: Page, console: Console
) -> None:
    name = f"stripe-{uuid.uuid4().hex[:8]}"
    page.goto("/console/connectors/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.locator('input[name="fields[0].name"]').fill("id")
    page.get_by_text("Advanced").click()
    page.get_by_label("Scheme").select_option("stripe")
    page.get_by_label("Signing secret").fill("not-a-stripe-secret")
    page.get_by_label("Write a retried delivery once").check()
    expect(page.locator("#dedup-presets")).to_contain_text("stripe → pointer /id")
    page.get_by_role("button", name="Create Schema").last.click()

    # Refused beside the secret's input; the secret is not in the page, the rest is kept.
    expect(page.locator('[id="e-verify.secrets[0]"]')).to_contain_text("signing secret")
    expect(page.locator("#secret-again")).to_be_visible()
    assert "not-a-stripe-secret" not in page.content()
    expect(page.get_by_label("Signing secret")).to_have_value("")
    expect(page.get_by_label("Name", exact=True)).to_have_value(name)
    page.get_by_label("Signing secret").fill(SECRET)
    page.get_by_role("button", name="Create Schema").last.click()

    expect(page.get_by_role("heading", name=name)).to_be_visible()
    url = page.locator("#ingest-url").inner_text()
    assert MASK not in url
    settings = page.locator("#webhook-settings")
    expect(settings.locator("#verify-scheme")).to_contain_text("stripe")
    expect(settings.locator("#dedup-setting")).to_contain_text("each record's /id")
    expect(settings.locator("#secrets tbody tr")).to_have_count(1)
    expect(settings.locator("#secrets")).to_contain_text(fingerprint(SECRET))
    assert SECRET not in page.content()
    expect(page.locator("#signed-note")).to_contain_text("Requests must be signed (stripe)")
    expect(page.locator("#curl-signed")).to_contain_text("Stripe-Signature: t=$TS,v1=$SIG")

    # Rotation of the signing secret: add the next one, retire the first.
    page.get_by_label("New signing secret").fill(NEXT_SECRET)
    page.get_by_role("button", name="Add secret").click()
    notice = page.locator("#webhook-notice")
    expect(notice).to_contain_text(f"Secret {fingerprint(NEXT_SECRET)} added")
    expect(page.get_by_label("New signing secret")).to_have_value("")
    assert NEXT_SECRET not in page.content()
    expect(settings.locator("#secrets tbody tr")).to_have_count(2)
    page.get_by_role("button", name=f"Retire secret {fingerprint(SECRET)}").click()
    expect(notice).to_contain_text(f"Secret {fingerprint(SECRET)} retired")
    expect(settings.locator("#secrets tbody tr")).to_have_count(1)
    expect(settings.locator("#secrets")).to_contain_text(fingerprint(NEXT_SECRET))
    # The last one cannot be retired: the API's refusal, on the page.
    page.get_by_role("button", name=f"Retire secret {fingerprint(NEXT_SECRET)}").click()
    expect(page.locator("#refusal")).to_contain_text("the last secret")

    # A Stripe event, signed as Stripe signs it: accepted once, then answered duplicate.
    event = json.dumps({"id": f"evt_{uuid.uuid4().hex}"}).encode()
    first = post_signed(url, event, NEXT_SECRET)
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 1
    again = post_signed(url, event, NEXT_SECRET)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    retired = httpx.post(url, content=event, headers=stripe_signed(event, SECRET), timeout=30)
    assert retired.status_code == 401  # the retired secret verifies nothing
    # The page's live count: the one record, written once.
    expect(page.locator("#accepted")).to_have_text("1")
    expect(page.locator("#samples tbody tr")).to_have_count(1)


def test_a_second_tab_polling_while_the_first_rotates_never_shows_the_token_again(
    context: BrowserContext, page: Page, console: Console
) -> None:
    connector = console.create_connector(
        f"race-{uuid.uuid4().hex[:8]}", [{"name": "id", "type": "string"}]
    )
    path = f"/console/connectors/{connector['id']}"
    second = context.new_page()  # the same browser profile: the same session cookie
    second.goto(path)
    page.goto(path)
    for _ in range(5):  # each rotation races the second tab's polls (every 750 ms)
        # The second tab is polling (its live numbers answered at least once).
        expect(second.locator("#progress-text")).to_have_text("0 of 50 records received")
        page.get_by_role("button", name="Rotate token").click()
        expect(page.locator("#token-notice")).to_contain_text("will not be shown again")
        token_url = page.locator("#ingest-url").inner_text()
        assert MASK not in token_url
        # Let the second tab's polls that were in flight land (it polls on; wait on its answers).
        with second.expect_response(lambda r: r.url.endswith("/live")):
            pass
        with second.expect_response(lambda r: r.url.endswith("/live")):
            pass
        for tab in (page, second):
            tab.reload()
            expect(tab.locator("#ingest-url")).to_contain_text(MASK)
            assert token_url not in tab.content()


def test_a_poll_answered_after_the_page_took_the_token_cannot_put_it_back(
    context: BrowserContext, page: Page, console: Console
) -> None:
    """The race made certain: a poll sent with the cookie that holds the new token (between
    Rotate's answer and the page's render), its answer landing after the render."""
    connector = console.create_connector(
        f"late-{uuid.uuid4().hex[:8]}", [{"name": "id", "type": "string"}]
    )
    path = f"/console/connectors/{connector['id']}"
    page.goto(path)
    csrf = page.locator('input[name="_csrf_token"]').first.input_value()
    rotated = page.request.post(
        f"{path}/rotate-token", form={"grace_period_s": "0", "_csrf_token": csrf}, max_redirects=0
    )
    assert rotated.status == 303
    holding = {cookie["name"]: cookie["value"] for cookie in context.cookies()}
    with httpx.Client(base_url=console.url, cookies=holding, timeout=30) as poller:
        late = poller.get(f"{path}/live", headers={"Accept": "application/json"})  # sent now…
    assert late.status_code == 200, late.text

    page.goto(path)  # the page takes the token out of the session
    token_url = page.locator("#ingest-url").inner_text()
    assert MASK not in token_url
    # … answered last: whatever cookie its answer set lands now.
    context.add_cookies(
        [
            {"name": name, "value": value, "url": f"{console.url}/console"}
            for name, value in late.cookies.items()
        ]
    )
    page.reload()
    expect(page.locator("#ingest-url")).to_contain_text(MASK)
    assert token_url not in page.content()
