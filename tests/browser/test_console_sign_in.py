"""Signing in to the console, the connectors list, signing out: as a person does, in Chromium."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Console

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.timeout(300)]

FIELDS: list[dict[str, Any]] = [
    {"name": "order_id", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
]


def test_sign_in_see_the_connectors_and_sign_out(
    signed_out_page: Page, console: Console, screenshot: Callable[[Page, str], Path]
) -> None:
    page = signed_out_page
    name = f"orders-{uuid.uuid4().hex[:8]}"
    created = console.create_connector(name, FIELDS)

    # A console page without a session goes to the sign-in page, and comes back after it.
    page.goto("/console/connectors")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=%2Fconsole%2Fconnectors$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")

    page.get_by_label("Admin token").fill("inlet_admin_not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")

    page.get_by_label("Admin token").fill(console.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/connectors$"))
    expect(page.get_by_role("heading", name="Connectors")).to_be_visible()

    row = page.locator(f"tr[data-connector-id='{created['id']}']")
    expect(row.get_by_role("link", name=name, exact=True)).to_have_attribute(
        "href", f"/console/connectors/{created['id']}"
    )
    expect(row).to_contain_text("awaiting samples 0 / 50")
    expect(page.get_by_role("link", name="New connector")).to_have_attribute(
        "href", "/console/connectors/new"
    )
    screenshot(page, "connectors")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    expect(page.get_by_label("Admin token")).to_be_visible()


def test_a_browser_at_the_root_lands_on_the_console(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/console/?$"))
    expect(page.get_by_role("heading", name="Connectors")).to_be_visible()


def test_the_pages_fit_a_phone_and_work_from_the_keyboard(
    browser: Browser, console: Console
) -> None:
    console.create_connector(f"phone-{uuid.uuid4().hex[:8]}", FIELDS)
    phone = browser.new_context(base_url=console.url, viewport={"width": 390, "height": 844})
    page = phone.new_page()
    page.goto("/console/sign-in")
    # Keyboard only: the token field has the focus; before it, the home link and the skip link.
    expect(page.get_by_label("Admin token")).to_be_focused()
    page.get_by_label("Admin token").focus()  # the keys below start from it, whatever came first
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name="Inlet", exact=True)).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Admin token")).to_be_focused()
    page.keyboard.type(console.token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Connectors")).to_be_visible()
    # Nothing wider than the screen: no sideways scrolling at 390 px.
    wider = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 390.5)"
        ".map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wider
    phone.close()
