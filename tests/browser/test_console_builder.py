"""The schema builder in Chromium: a connector with every field type built row by row, a refusal
shown beside its field with the rows kept, "start from an example" (JSON and CSV), edit
(compatible: a new version; incompatible: the reasons, nothing changed) and duplicate.

What the builder made is checked through the admin API, as another client would see it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Console

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.timeout(300)]

TIMEOUT_MS = 30_000  # a loaded 2-core machine: generous, and each wait ends on its condition
Screenshot = Callable[[Page, str], Path]
# The stack is the session's: names made here are this run's.
RUN = uuid.uuid4().hex[:8]

EVERY_TYPE: list[dict[str, Any]] = [
    {"name": "id", "type": "string"},
    {"name": "count", "type": "integer"},
    {"name": "score", "type": "float", "nullable": True},
    {"name": "paid", "type": "boolean"},
    {"name": "day", "type": "date"},
    {"name": "placed", "type": "datetime"},
    {"name": "at", "type": "time", "nullable": True},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "ref", "type": "uuid"},
    {"name": "status", "type": "enum", "symbols": ["NEW", "PAID", "SHIPPED"]},
    {"name": "tags", "type": "array", "items": "string"},
    {
        "name": "address",
        "type": "object",
        "nullable": True,
        "fields": [
            {"name": "city", "type": "string"},
            {"name": "geo", "type": "object", "fields": [{"name": "lat", "type": "float"}]},
        ],
    },
]


def _input(page: Page, path: str) -> Locator:
    return page.locator(f'[name="{path}"]')


def _problems(page: Page, path: str) -> Locator:
    return page.locator(f'[id="e-{path}"]')


def _rows(container: Locator) -> Locator:
    return container.locator(":scope > .field-row")


def _fill_rows(page: Page, container: Locator, fields: list[dict[str, Any]], prefix: str) -> None:
    """Type ``fields`` into the builder as a person does: Add Field, then the row's inputs."""
    add = (
        page.get_by_role("button", name="Add Field", exact=True)
        if not prefix
        else page.locator(f'.field-row[data-path="{prefix}"] > .nested > .add-nested')
    )
    for index, spec in enumerate(fields):
        if _rows(container).count() <= index:
            add.click()
        at = f"{prefix}.fields[{index}]" if prefix else f"fields[{index}]"
        _input(page, f"{at}.name").fill(spec["name"])
        _input(page, f"{at}.type").select_option(spec["type"])
        if spec.get("nullable"):
            _input(page, f"{at}.nullable").check()
        if spec["type"] == "decimal":
            _input(page, f"{at}.precision").fill(str(spec["precision"]))
            _input(page, f"{at}.scale").fill(str(spec["scale"]))
        elif spec["type"] == "enum":
            _input(page, f"{at}.symbols").fill(", ".join(spec["symbols"]))
        elif spec["type"] == "array":
            _input(page, f"{at}.items").select_option(spec["items"])
        elif spec["type"] == "object":
            nested = page.locator(f'.field-row[data-path="{at}"] > .nested > .rows')
            _fill_rows(page, nested, spec["fields"], at)


def _connector_named(api: httpx.Client, name: str) -> dict[str, Any]:
    page = api.get("/v1/connectors", params={"limit": 200}).raise_for_status().json()
    [found] = [c for c in page["data"] if c["name"] == name]
    return api.get(f"/v1/connectors/{found['id']}").raise_for_status().json()  # type: ignore[no-any-return]


def _create(api: httpx.Client, name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"name": name, "fields": fields, "key_field": "id"}
    return api.post("/v1/connectors", json=body).raise_for_status().json()  # type: ignore[no-any-return]


def test_a_connector_with_every_field_type_is_built_row_by_row(
    console: Console, page: Page, screenshot: Screenshot
) -> None:
    page.goto("/console/connectors/new")
    page.get_by_label("Name", exact=True).fill(f"every-type-{RUN}")
    page.get_by_label("Description").fill("one field of each type")
    _fill_rows(page, page.locator(".rows.top"), EVERY_TYPE, "")
    page.get_by_text("Advanced").click()
    page.get_by_label("Key field").fill("id")
    page.get_by_label("Partitions").fill("2")
    page.get_by_role("heading", name="New connector").scroll_into_view_if_needed()
    screenshot(page, "builder-filled")

    page.get_by_role("button", name="Create Schema").click()

    expect(page).to_have_url(re.compile(r"/console/connectors/con_[^/?#]+$"), timeout=TIMEOUT_MS)
    assert "inlet_ingest_" not in page.url
    made = _connector_named(console.admin, f"every-type-{RUN}")
    assert made["fields"] == EVERY_TYPE
    assert (made["key_field"], made["partitions"], made["description"]) == (
        "id",
        2,
        "one field of each type",
    )
    assert page.url.endswith(f"/console/connectors/{made['id']}")


def test_rows_are_deleted_in_place_and_renumbered(console: Console, page: Page) -> None:
    page.goto("/console/connectors/new")
    page.get_by_label("Name", exact=True).fill(f"renumbered-{RUN}")
    fields = [{"name": n, "type": "string"} for n in ("a", "b", "c")]
    _fill_rows(page, page.locator(".rows.top"), fields, "")

    page.locator('.field-row[data-path="fields[0]"] .delete-row').click()

    expect(_input(page, "fields[0].name")).to_have_value("b")
    expect(_input(page, "fields[1].name")).to_have_value("c")
    expect(_input(page, "fields[2].name")).to_have_count(0)
    page.get_by_role("button", name="Create Schema").click()
    expect(page).to_have_url(re.compile(r"/console/connectors/con_"), timeout=TIMEOUT_MS)
    assert [f["name"] for f in _connector_named(console.admin, f"renumbered-{RUN}")["fields"]] == [
        "b",
        "c",
    ]


def test_a_refused_schema_shows_each_problem_beside_its_field_and_keeps_the_rows(
    console: Console, page: Page, screenshot: Screenshot
) -> None:
    page.goto("/console/connectors/new")
    page.get_by_label("Name", exact=True).fill(f"refused-{RUN}")
    fields: list[dict[str, Any]] = [
        {"name": "id", "type": "string"},
        {"name": "status", "type": "enum", "symbols": ["NEW", "not a symbol"]},
        {"name": "total", "type": "decimal", "precision": 50, "scale": 2},
    ]
    _fill_rows(page, page.locator(".rows.top"), fields, "")

    page.get_by_role("button", name="Create Schema").click()

    expect(_problems(page, "fields[2].precision")).to_contain_text(
        "between 1 and 38", timeout=TIMEOUT_MS
    )
    expect(_problems(page, "fields[1].symbols")).to_contain_text("not an Avro name")
    expect(_input(page, "fields[2].precision")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".refusal")).to_contain_text("invalid connector")
    # Nothing typed is lost.
    expect(page.get_by_label("Name", exact=True)).to_have_value(f"refused-{RUN}")
    expect(_rows(page.locator(".rows.top"))).to_have_count(3)
    expect(_input(page, "fields[1].symbols")).to_have_value("NEW, not a symbol")
    expect(_input(page, "fields[2].type")).to_have_value("decimal")
    expect(_input(page, "fields[2].scale")).to_have_value("2")
    page.get_by_role("heading", name="New connector").scroll_into_view_if_needed()
    screenshot(page, "builder-refused")
    listed = console.admin.get("/v1/connectors", params={"limit": 200}).json()["data"]
    assert f"refused-{RUN}" not in [c["name"] for c in listed]

    # Fixed where the problems said, the same form creates it.
    _input(page, "fields[2].precision").fill("12")
    _input(page, "fields[1].symbols").fill("NEW, PAID")
    page.get_by_role("button", name="Create Schema").click()
    expect(page).to_have_url(re.compile(r"/console/connectors/con_"), timeout=TIMEOUT_MS)
    made = _connector_named(console.admin, f"refused-{RUN}")
    assert made["fields"][2] == {"name": "total", "type": "decimal", "precision": 12, "scale": 2}


def test_a_taken_name_is_shown_beside_the_name(console: Console, page: Page) -> None:
    _create(console.admin, f"taken-name-{RUN}", [{"name": "id", "type": "string"}])
    page.goto("/console/connectors/new")
    page.get_by_label("Name", exact=True).fill(f"TAKEN-name-{RUN}")
    _input(page, "fields[0].name").fill("id")

    page.get_by_role("button", name="Create Schema").click()

    expect(_problems(page, "name")).to_contain_text("taken", timeout=TIMEOUT_MS)
    expect(_input(page, "fields[0].name")).to_have_value("id")


def _propose(page: Page, example: str) -> None:
    page.get_by_text("Start from an example").click()
    page.get_by_label("Example records").fill(example)
    page.get_by_role("button", name="Propose fields").click()


def _proposed(page: Page) -> list[tuple[str, str, bool]]:
    rows = _rows(page.locator(".rows.top"))
    expect(rows.first).to_be_visible(timeout=TIMEOUT_MS)
    return [
        (
            _input(page, f"fields[{i}].name").input_value(),
            _input(page, f"fields[{i}].type").input_value(),
            _input(page, f"fields[{i}].nullable").is_checked(),
        )
        for i in range(rows.count())
    ]


def test_an_example_json_object_proposes_the_fields(console: Console, page: Page) -> None:
    page.goto("/console/connectors/new")
    page.get_by_label("Name", exact=True).fill(f"from-json-{RUN}")

    _propose(
        page,
        '{"id": "o-1", "total": "19.90", "placed": "2026-11-26T10:00:00+01:00", "qty": 3,'
        ' "paid": true, "coupon": null, "tags": ["a"], "address": {"city": "Oslo"}}',
    )

    expect(page.locator(".inference-notes")).to_contain_text("coupon", timeout=TIMEOUT_MS)
    assert _proposed(page) == [
        ("id", "string", False),
        ("total", "decimal", False),
        ("placed", "datetime", False),
        ("qty", "integer", False),
        ("paid", "boolean", False),
        ("coupon", "string", True),
        ("tags", "array", False),
        ("address", "object", False),
    ]
    expect(_input(page, "fields[1].scale")).to_have_value("2")
    expect(_input(page, "fields[7].fields[0].name")).to_have_value("city")
    expect(page.get_by_label("Name", exact=True)).to_have_value(f"from-json-{RUN}")
    # The proposal is only rows: edited, then created like any other.
    _input(page, "fields[0].name").fill("order_id")
    page.get_by_role("button", name="Create Schema").click()
    expect(page).to_have_url(re.compile(r"/console/connectors/con_"), timeout=TIMEOUT_MS)
    made = _connector_named(console.admin, f"from-json-{RUN}")
    assert made["fields"][0] == {"name": "order_id", "type": "string"}
    assert made["fields"][1] == {"name": "total", "type": "decimal", "precision": 18, "scale": 2}


def test_an_example_csv_proposes_the_fields(console: Console, page: Page) -> None:
    page.goto("/console/connectors/new")

    _propose(page, "id,price,day,when\n1,2.50,2026-01-01,10:30:00\n2,,2026-01-02,11:00:00\n")

    expect(_input(page, "fields[1].type")).to_have_value("decimal", timeout=TIMEOUT_MS)
    assert _proposed(page) == [
        ("id", "integer", False),
        ("price", "decimal", True),
        ("day", "date", False),
        ("when", "time", False),
    ]


def test_an_example_that_cannot_be_read_says_why_beside_it(console: Console, page: Page) -> None:
    page.goto("/console/connectors/new")
    _input(page, "fields[0].name").fill("kept")

    _propose(page, '{"id": ')

    expect(_problems(page, "example")).to_be_visible(timeout=TIMEOUT_MS)
    expect(_input(page, "fields[0].name")).to_have_value("kept")


def test_a_compatible_edit_makes_a_new_version(console: Console, page: Page) -> None:
    made = _create(console.admin, f"edit-compatible-{RUN}", [{"name": "id", "type": "string"}])
    page.goto(f"/console/connectors/{made['id']}/edit")
    expect(page.get_by_test_id("schema-version")).to_have_text("1", timeout=TIMEOUT_MS)
    expect(_input(page, "fields[0].name")).to_have_value("id")

    page.get_by_role("button", name="Add Field", exact=True).click()
    _input(page, "fields[1].name").fill("coupon")
    _input(page, "fields[1].nullable").check()
    page.get_by_role("button", name="Save schema").click()

    expect(page.locator(".notice")).to_contain_text("schema version 2", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("schema-version")).to_have_text("2")
    after = console.admin.get(f"/v1/connectors/{made['id']}").json()
    assert after["schema_version"] == 2
    assert after["fields"][1] == {"name": "coupon", "type": "string", "nullable": True}


def test_an_incompatible_edit_shows_the_reasons_and_changes_nothing(
    console: Console, page: Page
) -> None:
    fields = [{"name": "id", "type": "string"}, {"name": "n", "type": "integer"}]
    made = _create(console.admin, f"edit-incompatible-{RUN}", fields)
    page.goto(f"/console/connectors/{made['id']}/edit")

    _input(page, "fields[1].type").select_option("boolean")
    page.get_by_role("button", name="Save schema").click()

    expect(_problems(page, "fields")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator(".refusal")).to_contain_text("incompatible")
    expect(_input(page, "fields[1].type")).to_have_value("boolean")  # as the user left it
    expect(page.get_by_test_id("schema-version")).to_have_text("1")
    after = console.admin.get(f"/v1/connectors/{made['id']}").json()
    assert (after["schema_version"], after["fields"]) == (1, fields)


def test_duplicate_creates_the_copy_and_opens_it_in_the_builder(
    console: Console, page: Page
) -> None:
    made = _create(console.admin, f"duplicated-{RUN}", [{"name": "id", "type": "string"}])
    page.goto(f"/console/connectors/{made['id']}/duplicate")
    expect(page.get_by_label("Name of the copy")).to_have_value(f"duplicated-{RUN} copy")

    page.get_by_label("Name of the copy").fill(f"the-copy-{RUN}")
    page.get_by_role("button", name="Duplicate").click()

    expect(page).to_have_url(re.compile(r"/console/connectors/con_[^/]+/edit$"), timeout=TIMEOUT_MS)
    copy = _connector_named(console.admin, f"the-copy-{RUN}")
    assert page.url.endswith(f"/console/connectors/{copy['id']}/edit")
    assert copy["id"] != made["id"]
    assert copy["fields"] == made["fields"]
    expect(page.locator(".notice")).to_contain_text(f"copy of 'duplicated-{RUN}'")
    expect(_input(page, "fields[0].name")).to_have_value("id")


def test_a_duplicate_with_a_taken_name_is_refused_beside_the_name(
    console: Console, page: Page
) -> None:
    made = _create(console.admin, f"dup-source-{RUN}", [{"name": "id", "type": "string"}])
    page.goto(f"/console/connectors/{made['id']}/duplicate")

    page.get_by_label("Name of the copy").fill(f"dup-source-{RUN}")
    page.get_by_role("button", name="Duplicate").click()

    expect(_problems(page, "name")).to_contain_text("taken", timeout=TIMEOUT_MS)
