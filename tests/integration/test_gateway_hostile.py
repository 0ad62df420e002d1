"""Hostile bodies against a served gateway on real Kafka (issue #10, items 2, 3 and 6): every
answer bounded and final, and counted (``/metrics``, the access log) with the status answered."""

from __future__ import annotations

import gzip
import logging
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from inlet.settings import Settings
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_hostile-test"
MAX_BODY = 256 * 1024
MAX_RECORDS = 1000


@dataclass
class Stack:
    gateway: str
    admin: httpx.Client
    client: httpx.Client

    def connector(self, **extra: Any) -> dict[str, Any]:
        fields = [
            {"name": "id", "type": "string"},
            {"name": "tags", "type": "array", "items": "string", "nullable": True},
        ]
        body = {"name": f"h-{uuid.uuid4().hex[:8]}", "fields": fields, **extra}
        response = self.admin.post("/v1/connectors", json=body)
        assert response.status_code == 201, response.text
        connector: dict[str, Any] = response.json()
        deadline = time.monotonic() + 30
        while self.client.post(connector["ingest_url"], json=[]).status_code == 404:
            assert time.monotonic() < deadline, "the gateway never learned of the connector"
            time.sleep(0.05)
        return connector

    def requests_counted(self, connector: dict[str, Any], status: int) -> float:
        metrics = self.client.get(f"{self.gateway}/metrics").text
        line = re.search(
            rf'^inlet_ingest_requests_total{{connector="{connector["id"]}",status="{status}"}} '
            r"(\S+)$",
            metrics,
            re.MULTILINE,
        )
        return 0.0 if line is None else float(line[1])

    def wait_counted(self, connector: dict[str, Any], status: int, count: float) -> None:
        deadline = time.monotonic() + 30
        while self.requests_counted(connector, status) < count:
            assert time.monotonic() < deadline, f"never counted {count} x {status}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("hostile")),
        admin_token=TOKEN,
        topic_partitions=1,
        max_body_bytes=MAX_BODY,
        max_records_per_request=MAX_RECORDS,
    )
    with serve_inlet(base) as (registry, gateway, _settings):
        admin = httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"})
        client = httpx.Client(timeout=60)
        yield Stack(gateway, admin, client)
        admin.close()
        client.close()


def test_a_gzip_bomb_of_tiny_records_is_refused_at_the_records_cap(stack: Stack) -> None:
    connector = stack.connector()
    bomb = gzip.compress(b'{"a":1}\n' * (MAX_BODY // 8), 9)  # 32,768 records in ~400 bytes
    answer = stack.client.post(
        connector["ingest_url"],
        content=bomb,
        headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == "too_many_records"
    assert problem["limit_records"] == MAX_RECORDS
    assert problem["line"] == MAX_RECORDS + 1
    assert f"more than {MAX_RECORDS} records" in problem["detail"]
    stack.wait_counted(connector, 413, 1)


def test_a_refused_batch_lists_the_capped_errors_and_counts_the_rest(stack: Stack) -> None:
    connector = stack.connector()
    answer = stack.client.post(connector["ingest_url"], json=[{"nope": i} for i in range(500)])
    assert answer.status_code == 422
    problem = answer.json()
    assert (problem["rejected"], len(problem["errors"])) == (500, 100)
    assert problem["errors_total"] + problem["unexamined"] * 1 >= 500
    assert problem["unexamined"] == 400
    assert "counted, not examined" in problem["detail"]


def test_a_batch_larger_than_the_burst_is_refused_and_n_records_take_n_tokens(
    stack: Stack,
) -> None:
    connector = stack.connector(rate_limit_per_s=5)
    url = connector["ingest_url"]
    for _ in range(3):  # never let through, however often it comes
        refused = stack.client.post(url, json=[{"id": str(i)} for i in range(6)])
        assert refused.status_code == 429
        assert refused.json()["code"] == "batch_exceeds_burst"
        assert "exceeds the connector's burst of 5" in refused.json()["detail"]
        assert "retry-after" not in refused.headers
    # The refusals took nothing: the whole burst is there, once.
    assert stack.client.post(url, json=[{"id": str(i)} for i in range(5)]).status_code == 200
    limited = stack.client.post(url, json={"id": "one more"})
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


def test_a_rate_limited_single_object_is_refused_before_its_body_is_read(stack: Stack) -> None:
    connector = stack.connector(rate_limit_per_s=1)
    url = connector["ingest_url"]
    assert stack.client.post(url, json={"id": "first"}).status_code == 200
    # Not even valid JSON: the count (one object) is known, and the 429 costs no decoding.
    limited = stack.client.post(
        url, content=b'{"id": "x", ' + b" " * 10_000, headers={"content-type": "application/json"}
    )
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"


def test_a_csv_cell_nested_too_deeply_is_a_400(stack: Stack) -> None:
    connector = stack.connector()
    deep = "[" * 10_000 + "]" * 10_000
    answer = stack.client.post(
        connector["ingest_url"],
        content=f'id,tags\na,"{deep}"\n'.encode(),
        headers={"content-type": "text/csv"},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "too_deeply_nested"
    assert (answer.json()["index"], answer.json()["field"], answer.json()["line"]) == (0, "tags", 2)
    stack.wait_counted(connector, 400, 1)
    assert stack.requests_counted(connector, 500) == 0


def _raw_request(
    gateway: str, connector: dict[str, Any], length: int, sent: bytes
) -> socket.socket:
    url = urlsplit(connector["ingest_url"])
    address = urlsplit(gateway)
    connection = socket.create_connection((address.hostname, address.port), timeout=30)
    head = (
        f"POST {url.path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    connection.sendall(head.encode() + sent)
    return connection


def _access_statuses(caplog: pytest.LogCaptureFixture, connector: dict[str, Any]) -> list[int]:
    return [
        r.status  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "inlet.gateway.access" and getattr(r, "connector", None) == connector["id"]
    ]


def test_413_disconnects_and_bodies_ending_early_are_counted_as_answered(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue #10, item 6: a 413 and a client disconnect were counted (and logged) as 500s."""
    caplog.set_level(logging.INFO, logger="inlet.gateway.access")
    connector = stack.connector()
    too_large = stack.client.post(
        connector["ingest_url"],
        content=b"[" + b" " * MAX_BODY + b"]",
        headers={"content-type": "application/json"},
    )
    assert too_large.status_code == 413
    assert too_large.json()["code"] == "body_too_large"
    stack.wait_counted(connector, 413, 1)

    # A client that sends part of the body, then goes away.
    _raw_request(stack.gateway, connector, 1000, b'[{"id": "a"}').close()
    stack.wait_counted(connector, 499, 1)
    # A body that ends early: the client says it has sent everything (half-close), short of
    # its Content-Length, and waits for an answer.
    connection = _raw_request(stack.gateway, connector, 1000, b'[{"id": "b"}')
    connection.shutdown(socket.SHUT_WR)
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    connection.close()
    stack.wait_counted(connector, 499, 2)

    assert stack.requests_counted(connector, 500) == 0
    deadline = time.monotonic() + 30
    while sorted(_access_statuses(caplog, connector)).count(499) < 2:
        assert time.monotonic() < deadline, _access_statuses(caplog, connector)
        time.sleep(0.05)
    statuses = _access_statuses(caplog, connector)
    assert 500 not in statuses
    assert 413 in statuses
    assert not answer.startswith(b"HTTP/1.1 200"), answer
