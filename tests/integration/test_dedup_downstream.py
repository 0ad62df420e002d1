"""Idempotency keys downstream, on real Kafka and real PostgreSQL: keyed records delivered through
two gateways' worth of retries land once in a pipeline's table, with the copies Kafka may hold
anyway skipped and counted, and the pull feed shows each record's key."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from inlet.records import HEADER_DEDUP_KEY
from inlet.settings import Settings
from tests.integration._dedup_helpers import (
    DEADLINE_S,
    Served,
    deduplicates,
    fresh_database,
    has_key_column,
    new_connector,
    new_pipeline,
    served_on,
    table_rows,
    wait_reported,
)
from tests.integration._pipelines_helpers import FeedWorker
from tests.served_stack import committed_records, until

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def served(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_on(kafka_bootstrap, tmp_path_factory.mktemp("dedup-downstream"), 2) as found:
        yield found


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    with fresh_database(postgres_dsn) as dsn:
        yield dsn


def _retried(urls: list[str], body: Any, key: str) -> list[httpx.Response]:
    """Each attempt of one delivery sent at once to every URL (a sender's retries racing over
    two gateways), every 409 ``in_progress`` sent again after its ``Retry-After``."""

    async def attempt(client: httpx.AsyncClient, url: str) -> httpx.Response:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            answer = await client.post(url, json=body, headers={"webhook-id": key})
            if answer.status_code != 409 or time.monotonic() > deadline:
                return answer
            assert answer.json()["code"] == "in_progress"
            await asyncio.sleep(float(answer.headers["retry-after"]))

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return list(await asyncio.gather(*(attempt(client, u) for u in urls)))

    return asyncio.run(send_all())


def _copy_to_other_partition(settings: Settings, topic: str, records: list[Any]) -> None:
    """Write ``records`` again, value and headers as they are, on the other partition: what the
    gateway's known gaps leave (an attempt answered 503 that Kafka wrote after all)."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for message in records:
        partition = 1 - (message.partition() or 0)
        producer.produce(
            topic, message.value(), message.key(), partition, headers=message.headers()
        )
    assert producer.flush(30) == 0


def test_keyed_records_through_two_gateways_retries_land_once_in_the_table(
    served: Served, database: str
) -> None:
    # A pipeline made before the connector had dedup: its table has no key column yet.
    connector, urls = new_connector(served)
    pipeline = new_pipeline(served, connector, database)
    assert httpx.post(urls[0], json={"id": "before", "amount": 0}).status_code == 200
    wait_reported(served, pipeline, 1, 0)
    assert not has_key_column(database)

    patched = served.admin.patch(
        f"/v1/connectors/{connector['id']}", json={"dedup": {"header": "webhook-id"}}
    )
    assert patched.status_code == 200, patched.text
    # The feed starts again keyed: the table gains the column and its unique index.
    until(lambda: has_key_column(database), "the table to gain the key column", DEADLINE_S)
    for url in urls:  # each gateway has the new setting
        until(deduplicates(url), "the gateway to deduplicate")

    # Every delivery sent twice to each gateway at once: one writes, the others are duplicates.
    keys = [f"evt_{i}_{uuid.uuid4().hex[:6]}" for i in range(24)]
    for i, key in enumerate(keys):
        body: Any = {"id": f"single-{i}", "amount": i}
        if i % 6 == 0:  # a request key on three records: each keyed "<key>#<n>"
            body = [{"id": f"batch-{i}-{n}", "amount": n} for n in range(3)]
        answers = _retried([*urls, *urls], body, key)
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        assert sum("duplicate" not in a.json() for a in answers) == 1, [a.text for a in answers]

    written = committed_records(served.settings, connector["topic"])
    keyed = [m for m in written if HEADER_DEDUP_KEY in dict(m.headers() or [])]
    # Records written before a gateway had the new setting have no key ("probe" ones).
    unkeyed = len(written) - len(keyed)
    expected_keys = {*keys[1:6], *keys[7:12], *keys[13:18], *keys[19:24], "probe"}
    expected_keys |= {f"{keys[i]}#{n}" for i in (0, 6, 12, 18) for n in range(3)}
    got = [_text(dict(m.headers() or [])[HEADER_DEDUP_KEY]) for m in keyed]
    assert sorted(got) == sorted(expected_keys)  # the gateways wrote each key once
    # Copies Kafka may hold anyway (the gateway's documented gaps), on the other partition.
    copies = keyed[::5]
    _copy_to_other_partition(served.settings, connector["topic"], copies)

    wait_reported(served, pipeline, unkeyed + len(expected_keys), len(copies))
    rows = table_rows(database)
    assert sorted(k for k, _ in rows if k is not None) == sorted(expected_keys)
    assert {i for k, i in rows if k is None} <= {"before", "probe"}

    # The pull feed shows each record's key: the copies beside their originals.
    pulled = _pull_all(served, connector)
    assert len(pulled) == len(written) + len(copies)
    by_key: dict[str | None, int] = {}
    for record in pulled:
        by_key[record["dedup_key"]] = by_key.get(record["dedup_key"], 0) + 1
    assert by_key.pop(None, 0) == unkeyed
    assert set(by_key) == expected_keys
    assert sum(by_key.values()) == len(expected_keys) + len(copies)
    assert {r["dedup_key"] for r in pulled if r["value"]["id"] == "batch-6-2"} == {f"{keys[6]}#2"}

    # The consumers' /metrics count the skips too (the worker publishes what the API shows).
    metrics = httpx.get(f"http://127.0.0.1:{_metrics_port(served.worker)}/metrics")
    skipped = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("inlet_pipeline_duplicates_skipped_total{")
        and f'pipeline="{pipeline["id"]}"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in skipped) == len(copies)


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def _pull_all(served: Served, connector: dict[str, Any]) -> list[dict[str, Any]]:
    """Every record of the connector through the pull feed, paged until a page is empty."""
    records: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = served.admin.get(f"/v1/connectors/{connector['id']}/records", params=params)
        assert page.status_code == 200, page.text
        found = page.json()
        if not found["records"]:
            return records
        records += found["records"]
        params["cursor"] = found["next_cursor"]


def _metrics_port(worker: FeedWorker) -> int:
    """The port the worker's metrics server took (``INLET_CONSUMERS_METRICS_PORT=0``)."""
    found: list[int] = []

    def logged() -> bool:
        for line in worker.log_tail_all().splitlines():
            if "metrics served" in line:
                found.append(int(re.findall(r'"port": ?(\d+)', line)[0]))
                return True
        return False

    until(logged, "the consumers' metrics server", DEADLINE_S)
    return found[0]
