"""The connector page in Chromium (issue #12, steps 4 and 5): the URL shown once, records sent
with a real HTTP client arriving on the page without a reload, Save enabled exactly at 50, Rotate,
Delete refused while a pipeline reads the connector, and Replay with its dry run first.

Connectors are made through the API, so these tests do not depend on the builder. The token's
handover to the page is the one Rotate makes, through the session (``issued_token.hand_over``),
which is also how the builder's create hands it over.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

FIELDS: list[dict[str, Any]] = [
    {"name": "order id", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "placed", "type": "datetime"},
    {"name": "note", "type": "string"},
]
MASK = "\u2022"
Screenshot = Callable[[Page, str], Path]


def valid(i: int) -> dict[str, Any]:
    return {
        "order id": f"o-{i}",
        "total": f"{i}.50",
        "placed": "2026-11-26T10:00:00+01:00",
        "note": f"n{i}",
    }


def post(url: str, records: list[dict[str, Any]]) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        answer = client.post(url, json=records)
    assert answer.status_code in {200, 422}, answer.text
    return answer


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def open_connector(page: Page, connector: dict[str, Any]) -> None:
    page.goto(f"/console/connectors/{connector['id']}")
    expect(page.get_by_role("heading", name=connector["name"])).to_be_visible()


def rotate(page: Page) -> str:
    """Rotate the token through the page; the URL it then shows, once."""
    page.get_by_role("button", name="Rotate token").click()
    expect(page.locator("#token-notice")).to_contain_text("will not be shown again")
    url = page.locator("#ingest-url").inner_text()
    assert MASK not in url
    return url


def test_the_url_the_wait_for_50_and_save(
    page: Page, console: Console, screenshot: Screenshot
) -> None:
    connector = console.create_connector(name("wait"), FIELDS)
    open_connector(page, connector)
    expect(page.locator("#ingest-url")).to_contain_text(MASK)  # made by the API: shown there

    url = rotate(page)
    assert url.startswith(console.gateway + "/v1/ingest/inlet_ingest_")
    assert url not in page.url  # the token is in no console URL
    # The curl examples carry the URL and the connector's own fields, copy-pasteable.
    json_example = page.locator("#curl-json").inner_text()
    assert url in json_example
    assert '"order id":"order id-1"' in json_example
    expect(page.locator("#curl-csv")).to_contain_text("order id,total,placed,note")
    page.reload()  # shown once: the session gave it to the one render
    expect(page.locator("#ingest-url")).to_contain_text(MASK)
    expect(page.locator("#curl-json")).to_contain_text('"$INGEST_URL"')

    bad = [
        {"order id": "bad-1", "total": "oops", "placed": "2026-11-26T10:00:00Z", "note": "x"},
        {"order id": "bad-2", "total": "1.00", "placed": "yesterday", "note": "x"},
        {"order id": "bad-3", "total": "1.00", "placed": "2026-11-26T10:00:00Z"},
    ]
    answer = post(url, [valid(i) for i in range(49)] + bad)
    assert answer.json()["accepted"] == 49

    # Live, without a reload.
    expect(page.locator("#progress-text")).to_have_text("49 of 50 records received")
    expect(page.locator("#progress")).to_have_attribute("value", "49")
    expect(page.locator("#samples tbody tr")).to_have_count(49)
    expect(page.locator("#samples tbody tr").first).to_contain_text("o-0")
    expect(page.locator("#samples thead")).to_contain_text("order id")
    rejected = page.locator("#rejected tbody")
    expect(rejected.locator("tr")).to_have_count(3)
    # Newest first: index (in the request), field, reason, the record as sent.
    expect(rejected.locator("td:nth-child(1)")).to_have_text(["51", "50", "49"])
    expect(rejected.locator("td:nth-child(2)")).to_have_text(["note", "placed", "total"])
    expect(rejected.locator("td:nth-child(3)").first).to_contain_text("required")
    expect(rejected.locator("td:nth-child(4)").last).to_contain_text('"total":"oops"')
    save = page.get_by_role("button", name="Save")
    expect(save).to_be_disabled()
    page.locator("#samples-heading").evaluate("heading => heading.scrollIntoView()")
    screenshot(page, "connector-waiting")

    # The form sent anyway, past the disabled button: refused by the service itself.
    page.locator("#save-form").evaluate("form => form.requestSubmit()")
    expect(page.locator("#refusal")).to_contain_text("1 more valid record is needed")
    expect(page.locator("#refusal")).to_have_attribute("data-code", "not_enough_samples")
    expect(save).to_be_disabled()

    post(url, [valid(49)])
    expect(page.locator("#progress-text")).to_have_text("50 of 50 records received")
    expect(save).to_be_enabled()
    save.click()
    expect(page.locator("#status")).to_have_text("saved")
    expect(page.locator("#saved-note")).to_be_visible()
    expect(save).to_be_hidden()
    assert console.admin.get(f"/v1/connectors/{connector['id']}").json()["status"] == "saved"
    page.locator("#samples-heading").evaluate("heading => heading.scrollIntoView()")
    screenshot(page, "connector-saved")


def test_rotate_shows_a_new_url_once_and_the_old_one_keeps_its_grace(
    page: Page, console: Console
) -> None:
    connector = console.create_connector(name("rotate"), FIELDS)
    open_connector(page, connector)
    page.get_by_label("Old URL keeps working for").select_option("3600")
    url = rotate(page)
    assert url != connector["ingest_url"]
    expect(page.get_by_text("The previous token works until")).to_be_visible()
    for sent_to in (url, connector["ingest_url"]):  # the old one for its grace period
        assert post(sent_to, [valid(1)]).json()["accepted"] == 1
    page.goto("/console/connectors")
    page.go_back()
    expect(page.locator("#ingest-url")).to_contain_text(MASK)


def test_delete_is_refused_while_a_pipeline_reads_the_connector(
    page: Page, console: Console, screenshot: Screenshot
) -> None:
    connector = console.create_connector(name("delete"), FIELDS)
    directory = Path(console.settings.files_root_dir) / name("out")
    made = console.admin.post(
        "/v1/pipelines",
        json={
            "name": name("pipe"),
            "connector_id": connector["id"],
            "sink": {"type": "files", "directory": str(directory), "format": "ndjson"},
        },
    )
    assert made.status_code == 201, made.text
    pipeline = made.json()

    open_connector(page, connector)
    page.get_by_role("link", name="Delete").click()
    listed = page.locator("#deleted-with")
    for what in (connector["topic"], connector["rejected_topic"], connector["subject"]):
        expect(listed).to_contain_text(what)
    screenshot(page, "delete-confirm")
    page.get_by_role("button", name="Delete connector").click()
    refusal = page.locator("#refusal")
    expect(refusal).to_have_attribute("data-code", "connector_in_use")
    expect(refusal).to_contain_text(pipeline["id"])
    assert console.admin.get(f"/v1/connectors/{connector['id']}").status_code == 200

    assert console.admin.delete(f"/v1/pipelines/{pipeline['id']}").status_code == 204
    page.get_by_role("button", name="Delete connector").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    assert console.admin.get(f"/v1/connectors/{connector['id']}").status_code == 404


def test_replay_shows_a_dry_run_then_replays(
    page: Page, console: Console, screenshot: Screenshot
) -> None:
    connector = console.create_connector(name("replay"), FIELDS)
    without_note = {"order id": "r", "total": "1.00", "placed": "2026-11-26T10:00:00Z"}
    bad_total = {**valid(1), "total": "oops"}
    # With one valid record: a request whose every record is invalid keeps nothing (422).
    answer = post(connector["ingest_url"], [valid(0), without_note, without_note, bad_total])
    assert answer.json()["rejected"] == 3
    open_connector(page, connector)
    expect(page.locator("#rejected tbody tr")).to_have_count(3)

    # The fix: "note" becomes nullable (a compatible change, a new schema version).
    fields = [*FIELDS[:3], {**FIELDS[3], "nullable": True}]
    changed = console.admin.patch(f"/v1/connectors/{connector['id']}", json={"fields": fields})
    assert changed.status_code == 200, changed.text

    page.get_by_role("button", name="Replay rejected records").click()
    summary = page.locator("#replay-summary")
    expect(summary).to_contain_text("2 would pass, 1 still fail")
    expect(summary).to_contain_text("Nothing was written")
    expect(page.locator("#still-rejected")).to_contain_text("total")
    screenshot(page, "replay")
    page.get_by_role("button", name="Replay now").click()
    expect(summary).to_contain_text("2 written to the topic, 1 still fail")

    page.get_by_role("link", name=f"Back to {connector['name']}").click()
    expect(page.locator("#progress-text")).to_have_text("3 of 50 records received")
    expect(page.locator("#versions li")).to_have_count(2)
