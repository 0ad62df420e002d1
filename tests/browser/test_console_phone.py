"""Every console page on a 390-px-wide phone, from the keyboard; and the error page a browser is
shown for a console URL that fails.

Each page opens in a new 390-px context (resizing an open page did not always apply the phone's
media queries), signed in through the form. On each: nothing wider than the screen (no sideways
scrolling), every control inside the screen's width (a control only a sideways scroll reaches is
not usable), and every control reached by Tab alone, in one pass from the top.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.browser.conftest import EXPECT_TIMEOUT_MS, Console, sign_in
from tests.served_stack import until

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.timeout(300)]

PHONE: ViewportSize = {"width": 390, "height": 844}
SAMPLE_WAIT_S = 120  # the sample worker on a loaded 2-core machine
FIELDS: list[dict[str, Any]] = [
    {"name": "order_id", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "placed", "type": "datetime"},
    {"name": "customer email address", "type": "string", "nullable": True},
]
VALID = [
    {
        "order_id": f"o-{i}",
        "total": f"{i}.50",
        "placed": "2026-11-26T10:00:00+01:00",
        "customer email address": f"someone.with.a.long.address-{i}@example.com",
    }
    for i in range(3)
]
INVALID = [{**VALID[0], "total": "oops"}, {**VALID[0], "placed": "yesterday"}]
Screenshot = Callable[[Page, str], Path]

# Marks every control Tab should reach (visible, enabled, not taken out of the tab order) with
# data-kb="<its number>", a radio group with one number (Tab enters a group once); returns each
# control's description, and the ones that lie outside the screen's width, outside any container
# that scrolls sideways on its own.
_MARK_CONTROLS = """
() => {
  const selector = "a[href], button, input, select, textarea, summary, [tabindex]";
  const controls = [...document.querySelectorAll(selector)].filter((el) =>
    el.tabIndex >= 0 && !el.disabled && el.type !== "hidden" && !el.closest("[inert]") &&
    el.checkVisibility({ visibilityProperty: true }) &&
    // The skip link is off-screen until focused, by design.
    !el.classList.contains("skip"));
  const describe = (el) => `${el.tagName.toLowerCase()} ${el.name || el.id || ""} "${
    (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 40)}"`;
  const keys = new Map();
  const described = [];
  const outside = [];
  for (const el of controls) {
    const key = el.type === "radio" ? `radio:${el.name}` : String(described.length);
    if (!keys.has(key)) {
      keys.set(key, described.length);
      described.push(describe(el));
    }
    el.dataset.kb = String(keys.get(key));
    let scroller = el.parentElement;
    while (scroller && !["auto", "scroll"].includes(getComputedStyle(scroller).overflowX)) {
      scroller = scroller.parentElement;
    }
    const box = el.getBoundingClientRect();
    if (!scroller && (box.left < 0 || box.right > window.innerWidth + 0.5)) {
      outside.push(`${describe(el)} at ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  return { described, outside };
}
"""


@pytest.fixture(scope="module")
def made(console: Console) -> dict[str, Any]:
    """A connector with samples and rejected records, and a pipeline reading it."""
    connector = console.create_connector(f"phone-{uuid.uuid4().hex[:8]}", FIELDS)
    sent = httpx.post(connector["ingest_url"], json=VALID + INVALID, timeout=30)
    assert sent.status_code == 200, sent.text

    def sampled() -> bool:
        found = console.admin.get(f"/v1/connectors/{connector['id']}/samples")
        return bool(found.status_code == 200 and found.json()["count"] == len(VALID))

    until(sampled, "the samples", SAMPLE_WAIT_S)
    pipeline = console.admin.post(
        "/v1/pipelines",
        json={
            "name": f"phone-files-{uuid.uuid4().hex[:6]}",
            "connector_id": connector["id"],
            "sink": {"type": "files", "directory": "phone", "format": "ndjson"},
        },
    )
    assert pipeline.status_code == 201, pipeline.text
    return connector


@pytest.fixture
def phone(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=console.url, viewport=PHONE, locale="en-GB")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    context.set_default_navigation_timeout(EXPECT_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


def _open_replay(page: Page, connector: dict[str, Any]) -> None:
    page.goto(f"/console/connectors/{connector['id']}")
    page.get_by_role("button", name="Replay rejected records").click()
    expect(page.locator("#replay-summary")).to_contain_text("would pass")


def _open_preview(page: Page, connector: dict[str, Any]) -> None:
    page.goto(f"/console/pipelines/new?connector={connector['id']}")
    page.get_by_label("Name", exact=True).fill("phone-preview")
    page.get_by_label("Files", exact=True).check()
    page.get_by_label("Directory (below the files root)").fill("phone/preview")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Preview on the sample")).to_be_visible()


def _goto(path: str) -> Callable[[Page, dict[str, Any]], None]:
    def open_page(page: Page, connector: dict[str, Any]) -> None:
        page.goto(path.format(id=connector["id"]))

    return open_page


PAGES: dict[str, Callable[[Page, dict[str, Any]], None]] = {
    "sign-in": _goto("/console/sign-in"),
    "connectors": _goto("/console/"),
    "builder": _goto("/console/connectors/new"),
    "connector": _goto("/console/connectors/{id}"),
    "edit": _goto("/console/connectors/{id}/edit"),
    "duplicate": _goto("/console/connectors/{id}/duplicate"),
    "delete-confirm": _goto("/console/connectors/{id}/delete"),
    "replay": _open_replay,
    "pipelines": _goto("/console/pipelines"),
    "pipeline-preview": _open_preview,
    "error": _goto("/console/connectors/con_missing"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_fits_a_phone_and_every_control_is_reached_by_tab(
    name: str, phone: BrowserContext, console: Console, made: dict[str, Any]
) -> None:
    page = phone.new_page()
    if name != "sign-in":
        sign_in(page, console.token)
    PAGES[name](page, made)
    # The stylesheet applies (its body is a flex column) before anything is measured.
    expect(page.locator("body")).to_have_css("display", "flex")
    expect(page.locator("main h1")).to_be_visible()

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: {width} px wide, wider than the phone"
    marked = page.evaluate(_MARK_CONTROLS)
    assert not marked["outside"], f"{name}: controls outside the screen: {marked['outside']}"

    # A table shown as cards (its head hidden) labels each value itself.
    unlabelled = page.evaluate(
        """[...document.querySelectorAll("table")]
             .filter((t) => t.tHead && getComputedStyle(t.tHead).position === "absolute")
             .flatMap((t) => [...t.querySelectorAll("tbody td:not(.actions):not([data-label])")])
             .map((td) => td.textContent.trim())"""
    )
    assert not unlabelled, f"{name}: card values without a label: {unlabelled}"

    # From the top of the page, Tab alone: each control once, in a pass or two at most.
    described: list[str] = marked["described"]
    assert described, f"{name}: no controls found"
    page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
    reached: set[int] = set()
    for _ in range(2 * len(described) + 10):
        page.keyboard.press("Tab")
        at = page.evaluate("document.activeElement?.dataset.kb ?? null")
        if at is not None:
            reached.add(int(at))
        if len(reached) == len(described):
            break
    missed = [d for i, d in enumerate(described) if i not in reached]
    assert not missed, f"{name}: not reached by Tab: {missed}"


def test_a_browser_opening_a_missing_connector_gets_a_page_and_its_scripts_json(
    page: Page, screenshot: Screenshot
) -> None:
    answer = page.goto("/console/connectors/con_missing")
    assert answer is not None
    assert answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="Connector not found")).to_be_visible()
    expect(page.locator("#problem-detail")).to_contain_text("con_missing")
    screenshot(page, "error")
    # A page's script asks for JSON, and keeps getting the problem.
    status, kind, code = page.evaluate(
        """fetch("/console/connectors/con_missing/live", {
             headers: { Accept: "application/json" },
           }).then(async (r) => [r.status, r.headers.get("content-type"), (await r.json()).code])"""
    )
    assert (status, code) == (404, "connector_not_found")
    assert kind.startswith("application/problem+json")
    page.get_by_role("link", name="Back to the connectors").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("heading", name="Connectors")).to_be_visible()
