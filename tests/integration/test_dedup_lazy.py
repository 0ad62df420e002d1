"""The dedup reader runs only where it is needed: a gateway worker whose connectors have no
``dedup`` reads nothing of ``_inlet_dedup``; the first connector with it starts the reader in
every worker, and dedup then works on each; a lease after the last one went, it stops, and a
connector set again starts it again on what the topic holds.

On a broker of their own: the session's holds other tests' dedup connectors.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from confluent_kafka.admin import AdminClient

from deploy.broker import LocalKafka, env_cache_dir
from gateway.app import create_app as create_gateway
from inlet.process import listening_socket
from inlet.settings import Settings
from inlet.topics import DEDUP_TOPIC
from registry.app import create_app as create_registry
from tests.gateway_processes import TOKEN, gateway_instance, server_workers, worker_of
from tests.servers import serve

pytestmark = pytest.mark.kafka

FIELDS = [{"name": "id", "type": "string"}]
# Generous: the suite runs on a loaded 2-core machine (a reader's start reads the whole topic).
DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def fresh_kafka() -> Iterator[str]:
    broker = LocalKafka(data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True)
    try:
        yield broker.start()
    finally:
        broker.stop()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S:g} s: {what}")
        time.sleep(0.1)


def _settings(bootstrap: str, data: Path, **more: Any) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        data_dir=str(data),
        admin_token=TOKEN,
        topic_partitions=1,
        **more,
    )


def _create(admin: httpx.Client, **settings: Any) -> dict[str, Any]:
    name = f"lazy-{uuid.uuid4().hex[:8]}"
    created = admin.post("/v1/connectors", json={"name": name, "fields": FIELDS, **settings})
    assert created.status_code == 201, created.text
    connector: dict[str, Any] = created.json()
    return connector


def _dedup_topic_exists(bootstrap: str) -> bool:
    listed = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30)
    return DEDUP_TOPIC in listed.topics


class _Worker:
    """Requests to one worker process of a gateway: each on a new connection that a probe
    showed this worker took (the kernel hands connections to the workers as it likes)."""

    def __init__(self, port: int, workers: list[int], pid: int) -> None:
        self._port, self._workers, self.pid = port, workers, pid

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert time.monotonic() < deadline, f"no connection reached worker {self.pid}"
            connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
            try:
                connection.request("GET", "/health/live")
                connection.getresponse().read()
                assert connection.sock is not None
                client_port = connection.sock.getsockname()[1]
                if worker_of(self._workers, self._port, client_port) != self.pid:
                    continue
                sent = None if body is None else json.dumps(body)
                heads = {"content-type": "application/json", **(headers or {})}
                connection.request(method, path, body=sent, headers=heads)
                answer = connection.getresponse()
                return answer.status, json.loads(answer.read() or b"{}")
            finally:
                connection.close()

    def readers(self) -> dict[str, Any]:
        """The state readers ``/health/ready`` reports, by name."""
        _status, body = self.request("GET", "/health/ready")
        readers: dict[str, Any] = body["state"]
        return readers

    def dedup_caught_up(self) -> bool:
        return self.readers().get("dedup", {}).get("caught_up") is True

    def ingest(self, path: str, record: dict[str, Any], key: str) -> dict[str, Any]:
        """POST one record under dedup key ``key``; the 200's body (a 503 while the reader
        starts, or a 404 before the worker knows the connector, is tried again)."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            status, body = self.request("POST", path, record, {"webhook-id": key})
            if status == 200:
                return body
            assert status in (404, 503), (status, body)
            if status == 503:
                assert body["code"] == "state_unavailable", body
            assert time.monotonic() < deadline, f"worker {self.pid}: {status} {body}"
            time.sleep(0.2)


def test_the_dedup_reader_starts_in_each_worker_with_the_first_dedup_connector(
    fresh_kafka: str, tmp_path: Path
) -> None:
    listening = listening_socket()
    settings = _settings(fresh_kafka, tmp_path / "data", gateway_port=listening.getsockname()[1])
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        serve(create_registry(settings)) as registry,
        httpx.Client(base_url=registry, headers=headers, timeout=60) as admin,
        gateway_instance(settings, listening, stderr=tmp_path / "gateway.log") as gateway,
    ):
        pids = server_workers(gateway.pid)
        assert len(pids) == 2, pids
        workers = [_Worker(gateway.port, pids, pid) for pid in pids]
        plain = _create(admin)
        plain_path = urlsplit(plain["ingest_url"]).path
        for worker in workers:
            # Served, ready, and no dedup reader: the topic is not even made.
            assert worker.ingest(plain_path, {"id": "p"}, key="x")["accepted"] == 1
            assert set(worker.readers()) == {"gateway"}, worker.readers()
        assert not _dedup_topic_exists(fresh_kafka)

        connector = _create(admin, dedup={"header": "webhook-id"})
        path = urlsplit(connector["ingest_url"]).path
        first, second = workers
        for one, other in ((first, second), (second, first)):
            key = uuid.uuid4().hex
            answer = one.ingest(path, {"id": key}, key)
            assert answer["accepted"] == 1, answer
            assert "duplicate" not in answer, answer
            again = other.ingest(path, {"id": key}, key)
            assert again.get("duplicate") is True, again
            assert one.ingest(path, {"id": key}, key).get("duplicate") is True
        for worker in workers:
            _until(worker.dedup_caught_up, f"worker {worker.pid}'s dedup reader is caught up")
            status, _body = worker.request("GET", "/health/ready")
            assert status == 200
        assert _dedup_topic_exists(fresh_kafka)


def test_the_dedup_reader_stops_a_lease_after_the_last_dedup_connector_went(
    fresh_kafka: str, tmp_path: Path
) -> None:
    # A lease of 3 x 1 s + 10 s: the reader stops 13 s after the last dedup connector went.
    settings = _settings(fresh_kafka, tmp_path / "data", produce_timeout_s=1.0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        serve(create_gateway(settings)) as gateway,
        serve(
            create_registry(msgspec.structs.replace(settings, public_gateway_url=gateway))
        ) as registry,
        httpx.Client(base_url=registry, headers=headers, timeout=60) as admin,
        httpx.Client(base_url=gateway, timeout=60) as client,
    ):

        def readers() -> dict[str, Any]:
            found: dict[str, Any] = client.get("/health/ready").json()["state"]
            return found

        def ingest(connector: dict[str, Any], key: str) -> dict[str, Any]:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                answer = client.post(
                    connector["ingest_url"], json={"id": key}, headers={"webhook-id": key}
                )
                if answer.status_code == 200:
                    body: dict[str, Any] = answer.json()
                    return body
                assert answer.status_code in (404, 503), answer.text
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.2)

        # Whatever dedup connectors the broker holds (the other test's) go first.
        listed = admin.get("/v1/connectors", params={"limit": 100}).json()["data"]
        for found in listed:
            if found.get("dedup") is not None:
                deleted = admin.delete(f"/v1/connectors/{found['id']}")
                assert deleted.status_code in (200, 204), deleted.text
        kept = _create(admin, dedup={"header": "webhook-id"})
        key = uuid.uuid4().hex
        assert "duplicate" not in ingest(kept, key)
        assert ingest(kept, key).get("duplicate") is True
        _until(lambda: "dedup" in readers(), "the dedup reader has caught up")

        turned_off = admin.patch(f"/v1/connectors/{kept['id']}", json={"dedup": None})
        assert turned_off.status_code == 200, turned_off.text
        assert turned_off.json()["dedup"] is None
        _until(lambda: "dedup" not in readers(), "the dedup reader stops")
        assert client.get("/health/ready").status_code == 200

        # Set again: the reader starts again, and reads what the topic holds from the start.
        again = admin.patch(
            f"/v1/connectors/{kept['id']}", json={"dedup": {"header": "webhook-id"}}
        )
        assert again.status_code == 200, again.text
        _until(lambda: "dedup" in readers(), "the dedup reader starts again")
        assert ingest(kept, key).get("duplicate") is True
