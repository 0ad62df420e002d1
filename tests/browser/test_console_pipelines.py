"""Pipelines in the console, in Chromium: a preview on a connector's 50 samples, the pipeline
created from it delivering them to a real PostgreSQL, what landed there equal to the preview, and
pause, resume and delete from the list."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from playwright.sync_api import Dialog, Locator, Page, expect
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.browser.conftest import Console
from tests.served_stack import until

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.timeout(600)]

SAMPLES = 50
PASSWORD = "s3cret-pw"  # in the DSN: the server trusts everyone, so any password will do
# Samples pass through the sample worker, rows through a pipeline worker that starts, joins its
# group and connects: on a loaded 2-core machine that takes a while.
ARRIVAL_TIMEOUT_MS = 120_000
FIELDS: list[dict[str, Any]] = [
    {"name": "order_id", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "placed", "type": "datetime"},
    {"name": "quantity", "type": "integer"},
    {"name": "gift", "type": "boolean", "nullable": True},
    {"name": "tags", "type": "array", "items": "string"},
]


def _order(i: int) -> dict[str, Any]:
    return {
        "order_id": f"o-{i}",
        "total": f"{i}.{i % 100:02d}",
        "placed": f"2026-03-01T10:{i % 60:02d}:00+01:00",
        "quantity": i,
        "gift": None if i % 3 == 0 else i % 2 == 0,
        "tags": [f"t{i % 4}"] * (i % 3),
    }


@pytest.fixture(scope="module")
def sampled(console: Console) -> dict[str, Any]:
    """A connector with its 50 samples, sent to its URL as a client would."""
    created = console.create_connector(f"orders-{uuid.uuid4().hex[:8]}", FIELDS)
    sent = httpx.post(created["ingest_url"], json=[_order(i) for i in range(SAMPLES)], timeout=30)
    assert sent.status_code == 200, sent.text
    assert sent.json()["accepted"] == SAMPLES

    def sampled() -> bool:
        found = console.admin.get(f"/v1/connectors/{created['id']}/samples")
        return bool(found.status_code == 200 and found.json()["count"] == SAMPLES)

    until(sampled, "50 samples", ARRIVAL_TIMEOUT_MS / 1000)
    return created


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(postgres_dsn, dbname=name, password=PASSWORD)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _shown(value: Any) -> str:
    """A value as the preview's cells show it (JSON; strings as they are; NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _cells(table: Locator) -> list[list[str]]:
    return [
        [cell.inner_text() for cell in row.locator("td").all()]
        for row in table.locator("tbody tr").all()
    ]


def _table_shape(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, bool]]:
    """(name, type as PostgreSQL spells it, nullable) per column, in order."""
    rows = conn.execute(
        "SELECT c.column_name, format_type(a.atttypid, a.atttypmod), c.is_nullable "
        "FROM information_schema.columns c JOIN pg_attribute a "
        "ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
        "AND a.attname = c.column_name "
        "WHERE c.table_name = %s ORDER BY c.ordinal_position",
        (table,),
    ).fetchall()
    return [(str(n), str(t), nullable == "YES") for n, t, nullable in rows]


def _row_count(database: str, table: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    with psycopg.connect(database) as conn:
        try:
            found = conn.execute(query).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return 0 if found is None else int(found[0])


def test_preview_create_watch_pause_resume_and_delete_a_postgres_pipeline(
    page: Page,
    console: Console,
    sampled: dict[str, Any],
    database: str,
    screenshot: Callable[[Page, str], Path],
) -> None:
    name = f"orders-to-pg-{uuid.uuid4().hex[:6]}"
    page.goto(f"/console/pipelines/new?connector={sampled['id']}")
    expect(page.get_by_role("heading", name="New pipeline")).to_be_visible()
    expect(page.get_by_label("Connector")).to_have_value(sampled["id"])
    page.get_by_label("Name", exact=True).fill(name)
    expect(page.get_by_label("PostgreSQL", exact=True)).to_be_checked()
    # Only the chosen sink's settings are shown.
    expect(page.get_by_label("Directory (below the files root)")).to_be_hidden()
    page.get_by_label("Connection string (DSN)").fill(database)
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_role("heading", name="Preview on the sample")).to_be_visible()
    expect(page.get_by_role("button", name="Create pipeline")).to_be_visible()
    table_name = page.locator("section.preview h3 code").first.inner_text()
    columns = _cells(page.locator("table.preview-columns"))
    header = [th.inner_text() for th in page.locator("table.preview-rows thead th").all()]
    assert header == [c[0] for c in columns]
    assert header[:3] == ["_inlet_partition", "_inlet_offset", "_inlet_received_at"]
    assert {"order_id", "total", "placed", "quantity", "gift", "tags"} <= set(header)
    shown_rows = _cells(page.locator("table.preview-rows"))
    assert len(shown_rows) == SAMPLES
    # The page is the API's preview (one service), cell for cell.
    api = console.admin.post(
        "/v1/pipelines/preview",
        json={
            "name": name,
            "connector_id": sampled["id"],
            "sink": {"type": "postgres", "dsn": database},
        },
    )
    assert api.status_code == 200, api.text
    assert [
        [c["name"], c["type"], "yes" if c["nullable"] else "NOT NULL"]
        for c in api.json()["table"]["columns"]
    ] == columns
    assert [[_shown(r.get(h)) for h in header] for r in api.json()["rows"]] == shown_rows
    # Nothing exists yet: the preview made no pipeline and no table.
    assert all(p["name"] != name for p in console.admin.get("/v1/pipelines").json()["data"])
    assert _row_count(database, table_name) == 0
    page.locator("section.preview").evaluate("section => section.scrollIntoView()")
    screenshot(page, "pipeline-preview")

    page.get_by_role("button", name="Create pipeline").click()
    expect(page).to_have_url(re.compile(r"/console/pipelines#pip_"))
    expect(page.get_by_role("heading", name="Pipelines")).to_be_visible()
    row = page.locator("tr[data-pipeline-id]", has_text=name)
    expect(row).to_have_count(1)
    pipeline_id = row.get_attribute("data-pipeline-id")
    assert pipeline_id is not None
    expect(row).to_contain_text(sampled["name"])
    expect(row).to_contain_text(f"PostgreSQL {table_name}")
    expect(row.locator('[data-field="status"]')).to_have_text("running")
    # The numbers move without a reload (the page polls its status once a second).
    expect(row.locator('[data-field="records_delivered"]')).to_have_text(
        str(SAMPLES), timeout=ARRIVAL_TIMEOUT_MS
    )
    expect(row.locator('[data-field="lag"]')).to_have_text("0", timeout=ARRIVAL_TIMEOUT_MS)
    expect(row.locator('[data-field="records_dead_lettered"]')).to_have_text("0")
    # The DSN is the user's secret: once the pipeline exists, no page shows its password.
    assert PASSWORD not in page.content()
    screenshot(page, "pipelines")

    # What landed in PostgreSQL is what the preview showed: the table's columns and the rows.
    until(lambda: _row_count(database, table_name) >= SAMPLES, "the sink's rows")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")  # timestamptz values come back in UTC, as shown
        made = _table_shape(conn, table_name)
        # The preview's types as the sink declares them, read back in PostgreSQL's spelling.
        probe = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c[0]), sql.SQL(c[1])) for c in columns
        )
        conn.execute(sql.SQL("CREATE TEMP TABLE preview_probe ({})").format(probe))
        declared = [(n, t) for n, t, _ in _table_shape(conn, "preview_probe")]
        assert [(n, t) for n, t, _ in made] == declared
        assert [(n, nullable) for n, _, nullable in made] == [
            (c[0], c[2] == "yes") for c in columns
        ]
        written = conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(table_name))
        )
        names = [d.name for d in written.description or []]
        landed = [dict(zip(names, r, strict=True)) for r in written.fetchall()]
    assert names == header
    expected = [[_shown(v) for v in msgspec.to_builtins(r).values()] for r in landed]
    assert sorted(shown_rows, key=lambda r: (int(r[0]), int(r[1]))) == expected

    # Pause, resume, delete: plain forms (with the CSRF token), back to the list each time.
    # Without the token, the session's cookie alone changes nothing.
    forged = page.request.post(f"/console/pipelines/{pipeline_id}/pause", max_redirects=0)
    assert forged.status == 403
    assert console.admin.get(f"/v1/pipelines/{pipeline_id}").json()["status"] == "running"
    row.get_by_role("button", name=f"Pause {name}").click()
    expect(row.locator('[data-field="status"]')).to_have_text("paused")
    assert console.admin.get(f"/v1/pipelines/{pipeline_id}").json()["status"] == "paused"
    row.get_by_role("button", name=f"Resume {name}").click()
    expect(row.locator('[data-field="status"]')).to_have_text("running")
    expect(row.get_by_role("button", name=f"Pause {name}")).to_be_visible()

    dlq_topic = console.admin.get(f"/v1/pipelines/{pipeline_id}").json()["dlq_topic"]
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    row.get_by_role("button", name=f"Delete {name}").click()
    expect(page.locator(f"tr[data-pipeline-id='{pipeline_id}']")).to_have_count(0)
    # The confirm names what goes: the pipeline, and its dead-letter topic.
    assert len(asked) == 1
    assert name in asked[0]
    assert dlq_topic in asked[0]
    assert console.admin.get(f"/v1/pipelines/{pipeline_id}").status_code == 404
    # Inlet never drops the user's data: the table stays.
    assert _row_count(database, table_name) == SAMPLES


def test_a_refused_pipeline_shows_the_apis_problems_beside_the_fields(
    page: Page, sampled: dict[str, Any]
) -> None:
    page.goto(f"/console/pipelines/new?connector={sampled['id']}")
    # No name, a DSN libpq cannot parse, a table name PostgreSQL would need quoted.
    page.get_by_label("Connection string (DSN)").fill("host=127.0.0.1 =x")
    page.get_by_label("Table (optional", exact=False).fill("no such-table")
    page.get_by_role("button", name="Preview").click()
    dsn = page.get_by_label("Connection string (DSN)")
    expect(dsn).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#dsn-error")).to_have_text("not a PostgreSQL connection string")
    expect(page.locator("#table-error")).to_contain_text("must be a name or schema.name")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name-error")).to_be_visible()
    # Nothing the user typed is lost, and no preview or Create is offered.
    expect(page.get_by_label("Table (optional", exact=False)).to_have_value("no such-table")
    expect(page.get_by_role("button", name="Create pipeline")).to_have_count(0)


def test_a_files_preview_shows_the_layout_and_the_lines(
    page: Page, console: Console, sampled: dict[str, Any]
) -> None:
    page.goto(f"/console/pipelines/new?connector={sampled['id']}")
    page.get_by_label("Name", exact=True).fill(f"lake-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Files", exact=True).check()
    expect(page.get_by_label("Connection string (DSN)")).to_be_hidden()
    page.get_by_label("Directory (below the files root)").fill("lake/orders")
    page.get_by_label("Format").select_option("ndjson")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Preview on the sample")).to_be_visible()
    # The directory as stored: relative to the files root.
    expect(page.get_by_role("heading", name="Files in lake/orders (ndjson)")).to_be_visible()
    expect(page.locator("section.preview")).to_contain_text(re.compile(r"dt=2026-\d\d-\d\d/"))
    lines = page.locator("pre.preview-lines").inner_text().splitlines()
    assert len(lines) == SAMPLES
    assert json.loads(lines[0])["order_id"] == "o-0"
    expect(page.get_by_role("button", name="Create pipeline")).to_be_visible()


def test_the_pull_feed_needs_no_pipeline_and_shows_the_samples_as_it_returns_them(
    page: Page, sampled: dict[str, Any]
) -> None:
    page.goto(f"/console/pipelines/new?connector={sampled['id']}")
    page.get_by_label("Pull feed (read them over HTTP)").check()
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="The pull feed")).to_be_visible()
    feed = page.locator("section.preview pre").first
    expect(feed).to_contain_text(f"/v1/connectors/{sampled['id']}/records?limit=500")
    lines = page.locator("pre.preview-lines").inner_text().splitlines()
    assert len(lines) == SAMPLES
    # As the feed returns them: datetimes in UTC, the rest as sent.
    assert json.loads(lines[1]) == {**_order(1), "placed": "2026-03-01T09:01:00Z"}
    expect(page.get_by_role("button", name="Create pipeline")).to_have_count(0)


def test_the_live_status_needs_a_session(signed_out_page: Page) -> None:
    answer = signed_out_page.request.get("/console/pipelines/status", max_redirects=0)
    assert answer.status == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
