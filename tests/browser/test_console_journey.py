"""The issue's whole journey, as a person does it in a browser (issue #12, "Done when"): from the
console's URL, signed out, sign in with the admin token; New connector; build the schema row by
row (Add Field, a type per row, Nullable); Create Schema; copy the URL and the NDJSON ``curl``
example from the page with its Copy buttons and run that very command in a shell, then edited as a
person edits it, until 49 valid records and three invalid ones arrived; watch "49 of 50", the rows
and the rejected reasons arrive without a reload, Save disabled; one more record; Save enabled,
clicked, saved; the list then shows the connector saved, with its counts.

Nothing here calls the admin API: what the person needs is on the pages (the token is the one
``inlet up`` prints). The commands run through ``bash -c`` with the real ``curl``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import uuid
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Console
from tests.conftest import IN_CI

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.timeout(300)]

CURL_TIMEOUT_S = 60  # one request to the local gateway; generous for a loaded machine
# The schema a person builds: several types, one optional field.
FIELDS: list[dict[str, Any]] = [
    {"name": "order_id", "type": "string"},
    {"name": "quantity", "type": "integer"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "placed", "type": "datetime"},
    {"name": "gift", "type": "boolean", "nullable": True},
    {"name": "status", "type": "enum", "symbols": ["NEW", "PAID"]},
]
# What a person gets wrong in the records they send, and the field the page then names.
MISTAKES: list[tuple[str, Any]] = [
    ("quantity", "many"),
    ("placed", "yesterday"),
    ("status", "LOST"),
]


def _curl() -> str:
    curl = shutil.which("curl")
    if curl is None:
        message = "no curl on PATH: the journey runs the page's curl examples"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return curl


def build_schema(page: Page, fields: list[dict[str, Any]]) -> None:
    """Type ``fields`` into the builder's rows: the first row is there; Add Field for the rest."""
    rows = page.locator(".rows.top > .field-row")
    for index, spec in enumerate(fields):
        if index > 0:
            page.get_by_role("button", name="Add Field", exact=True).click()
        row = rows.nth(index)
        # Add Field puts the cursor in the new row's name, so a person just types.
        row.get_by_label("Field Name").fill(spec["name"])
        row.get_by_label("Type").select_option(spec["type"])
        if spec.get("nullable"):
            row.get_by_label("Nullable").check()
        if spec["type"] == "decimal":
            row.get_by_label("Precision").fill(str(spec["precision"]))
            row.get_by_label("Scale").fill(str(spec["scale"]))
        elif spec["type"] == "enum":
            row.get_by_label("Symbols").fill(", ".join(spec["symbols"]))
    expect(rows).to_have_count(len(fields))


def copied(page: Page, button: Locator) -> str:
    """Click a Copy button, then paste: what the clipboard holds, which is its target's text."""
    target = button.get_attribute("data-copy")
    # By its target: once clicked, the button's name is "Copied" and ``button`` no longer finds it.
    clicked = page.locator(f'button[data-copy="{target}"]')
    clicked.click()
    expect(clicked).to_have_text("Copied")
    text: str = page.evaluate("navigator.clipboard.readText()")
    assert text == page.locator(f"#{target}").inner_text()
    return text


def run(command: str) -> dict[str, Any]:
    """``command`` pasted into a shell; the gateway's answer it prints."""
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def edited(command: str, lines: list[dict[str, Any]]) -> str:
    """The example ``command`` with its body replaced by ``lines``, as a person edits it in place:
    the URL and headers as copied, only the data changed."""
    body = shlex.split(command)[-1]
    assert command.endswith(shlex.quote(body)), command
    new_body = "".join(json.dumps(line) + "\n" for line in lines)
    return command.removesuffix(shlex.quote(body)) + shlex.quote(new_body)


def test_a_person_builds_a_connector_sends_50_records_with_the_curl_example_and_saves_it(
    signed_out_page: Page, console: Console
) -> None:
    _curl()
    page = signed_out_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.url)
    name = f"journey-{uuid.uuid4().hex[:8]}"

    # 1. The URL `inlet up` printed: signed out, so the sign-in page; the token it printed.
    page.goto("/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Admin token").fill(console.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Connectors")).to_be_visible()

    # 2. New connector: a name and the fields, row by row; Create Schema.
    page.get_by_role("link", name="New connector").click()
    expect(page.get_by_role("heading", name="New connector")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Description").fill("orders from the shop's webhook")
    build_schema(page, FIELDS)
    page.get_by_role("button", name="Create Schema").click()

    # 3. The connector's page: the URL, shown this once, and the examples to send records with.
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator("#token-notice")).to_contain_text("will not be shown again")
    url = copied(page, page.get_by_role("button", name="Copy URL"))
    assert re.fullmatch(re.escape(console.gateway) + r"/v1/ingest/inlet_ingest_\S+", url), url
    assert "inlet_ingest_" not in page.url
    ndjson = page.locator(".example").filter(has=page.get_by_role("heading", name="NDJSON"))
    command = copied(page, ndjson.get_by_role("button", name="Copy"))
    assert url in command
    page.evaluate("window.stillTheSamePage = true")  # gone if anything below reloads the page

    # As copied, it is accepted as it is.
    example = [json.loads(line) for line in shlex.split(command)[-1].splitlines()]
    first = run(command)
    assert first["accepted"] == len(example), first
    # Then edited, as a person makes it theirs: more orders, and three with a mistake each.
    sent = len(example)
    more = [
        {**example[i % len(example)], "order_id": f"o-{i}", "quantity": i} for i in range(sent, 49)
    ]
    wrong = [{**example[0], "order_id": f"bad-{f}", f: v} for f, v in MISTAKES]
    second = run(edited(command, more + wrong))
    assert (second["accepted"], second["rejected"]) == (len(more), len(wrong)), second

    # 4. The page follows without a reload: 49 of 50, the rows, the reasons; Save disabled.
    expect(page.locator("#progress-text")).to_have_text("49 of 50 records received")
    expect(page.locator("#progress")).to_have_attribute("value", "49")
    samples = page.locator("#samples")
    expect(samples.locator("thead th")).to_have_text([f["name"] for f in FIELDS])
    expect(samples.locator("tbody tr")).to_have_count(49)
    expect(samples.locator("tbody tr").last).to_contain_text("o-48")
    rejected = page.locator("#rejected tbody tr")
    expect(rejected).to_have_count(len(MISTAKES))
    # Newest first: the field each mistake was in, and why.
    expect(rejected.locator("td:nth-child(2)")).to_have_text([f for f, _ in reversed(MISTAKES)])
    expect(rejected.filter(has_text="LOST")).to_have_count(1)
    expect(page.locator("#accepted")).to_have_text("49")
    expect(page.locator("#rejected-count")).to_have_text("3")
    save = page.get_by_role("button", name="Save")
    expect(save).to_be_disabled()

    # 5. One more order; Save is enabled the moment it arrived.
    one_more = run(edited(command, [{**example[0], "order_id": "o-49", "quantity": 49}]))
    assert one_more["accepted"] == 1, one_more
    expect(page.locator("#progress-text")).to_have_text("50 of 50 records received")
    expect(save).to_be_enabled()
    assert page.evaluate("window.stillTheSamePage") is True
    save.click()
    expect(page.locator("#status")).to_have_text("saved")
    expect(page.locator("#saved-note")).to_be_visible()

    # 6. The list: the connector saved, with its counts.
    page.get_by_role("link", name="Connectors", exact=True).click()
    expect(page.get_by_role("heading", name="Connectors")).to_be_visible()
    row = page.locator("tr").filter(has=page.get_by_role("link", name=name, exact=True))
    expect(row.locator("td[data-label='Status']")).to_have_text("saved")
    expect(row.locator("td[data-label='Accepted']")).to_have_text("50")
    expect(row.locator("td[data-label='Rejected']")).to_have_text("3")
    expect(row.locator("td[data-label='Schema version']")).to_have_text("1")
