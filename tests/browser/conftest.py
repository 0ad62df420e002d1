"""Browser tests: the console in real headless Chromium (Debian's ``chromium``, installed by
``scripts/ensure-chromium``), driven by Playwright for Python's sync API (fixtures below), on a
stack served on the session's Kafka.

What a test gets:

- ``console``: the registry (admin API + console), the gateway and the consumers' workers (the
  sample worker and the pipeline worker, so samples really arrive), one stack for the browser tests;
  ``console.admin`` is an httpx client of the admin API with the admin token. ``browser`` and
  ``context`` (a fresh profile per test) are Playwright's.
- ``page``: a Playwright page at 1280x800 whose ``base_url`` is the registry (``page.goto
  ("/console/")``), signed in to the console; ``signed_out_page``: one that is not.
- ``screenshot(page, name)``: ``name``.png of the viewport, 1280x800, into
  ``$INLET_SCREENSHOTS_DIR`` (``make screenshots`` sets ``docs/console``), else the session's
  temporary directory.

Modules mark themselves ``pytestmark = [pytest.mark.browser, pytest.mark.kafka]``. Wait with
Playwright's ``expect(...)`` (it retries until its timeout), never with sleeps. Under ``CI=true`` a
missing Chromium fails the tests; elsewhere it skips them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from consumers.main import run_consumers
from inlet.settings import Settings
from tests.conftest import IN_CI
from tests.servers import serve_inlet

ADMIN_TOKEN = "inlet_admin_browser-tests"
CHROMIUM = os.environ.get("INLET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# Playwright's waits, for a loaded 2-core CI machine (its default is 5 s).
EXPECT_TIMEOUT_MS = 30_000
CONSUMERS_STOP_S = 30.0

expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@dataclass(frozen=True)
class Console:
    url: str  # the registry's base URL; the console is at url + "/console/"
    gateway: str
    token: str
    settings: Settings
    admin: httpx.Client

    def create_connector(self, name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
        """A connector made through the API, as a script would: its view with token and URL."""
        answer = self.admin.post("/v1/connectors", json={"name": name, "fields": fields})
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created


@contextmanager
def running_consumers(settings: Settings) -> Iterator[None]:
    """The consumers process's workers (``run_consumers``) on a thread of their own."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(run_consumers(settings, stop))
        except BaseException as exc:  # shown at the end: the tests' waits say what was missing
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="browser-tests-consumers", daemon=True)
    thread.start()
    try:
        yield
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(CONSUMERS_STOP_S)
    if failure:
        raise RuntimeError("the consumers' workers failed") from failure[0]


@pytest.fixture(scope="package")
def console(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    # For this package only: its sample worker would otherwise fence the ones other tests start.
    data_dir = tmp_path_factory.mktemp("console-stack")
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(data_dir),
        admin_token=ADMIN_TOKEN,
        topic_partitions=1,
    )
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with (
        serve_inlet(base) as (registry, gateway, settings),
        running_consumers(settings),
        httpx.Client(base_url=registry, headers=headers, timeout=30) as admin,
    ):
        yield Console(registry, gateway, ADMIN_TOKEN, settings, admin)


# --- Playwright's sync API in fixtures of our own, for this package only. pytest-playwright's
# session-scoped fixtures keep Playwright's event loop alive for the rest of the session, and
# pytest-asyncio then cannot run the async tests that follow ("Cannot run the event loop while
# another loop is running"), so its plugin is off (``-p no:playwright`` in pyproject.toml) and
# these stop Playwright when the browser tests end. ---


def _chromium_usable() -> None:
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return
    message = f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium (or set INLET_CHROMIUM)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    _chromium_usable()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    """A new browser profile per test (no cookies), its ``base_url`` the registry."""
    context = browser.new_context(base_url=console.url, viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    context.set_default_navigation_timeout(EXPECT_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


def sign_in(page: Page, token: str) -> None:
    """Sign ``page`` in through the sign-in form, as a person does."""
    page.goto("/console/sign-in")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Connectors")).to_be_visible()


@pytest.fixture
def signed_out_page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def page(signed_out_page: Page, console: Console) -> Page:
    """A page signed in to the console, through its form."""
    sign_in(signed_out_page, console.token)
    return signed_out_page


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("INLET_SCREENSHOTS_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def screenshot(screenshots_dir: Path) -> Callable[[Page, str], Path]:
    def take(page: Page, name: str) -> Path:
        page.set_viewport_size(VIEWPORT)
        path = screenshots_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=False, animations="disabled")
        return path

    return take
