"""Replaying rejected records on real Kafka: after a schema fix, what now passes reaches the
connector topic exactly once, what still fails is kept again, and a dry run writes nothing."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from fastavro import parse_schema, schemaless_reader

from inlet.kafka import ConfigValue, client_config
from inlet.records import HEADER_REPLAY_OF, HEADER_REQUEST_ID, wire_schema_id
from inlet.settings import Settings
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_replay-test"
FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "string"},
    {"name": "e-mail", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 12, "scale": 2},
]


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, httpx.Client, Settings]]:
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("replay")),
        admin_token=TOKEN,
        topic_partitions=2,
    )
    with (
        serve_inlet(base) as (registry, _gateway, settings),
        httpx.Client(
            base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as admin,
        httpx.Client(timeout=30) as client,
    ):
        yield admin, client, settings


def _read_all(settings: Settings, topic: str) -> list[Message]:
    """Every committed record of ``topic``, from the beginning to the end."""
    reading: dict[str, ConfigValue] = {
        "group.id": f"replay-test-{uuid.uuid4().hex[:6]}",
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    }
    consumer = Consumer(client_config(settings, client_id="replay-test", **reading))
    try:
        found = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in found.partitions])
        messages: list[Message] = []
        unfinished = set(found.partitions)
        while unfinished:
            for message in consumer.consume(100, 0.2):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    unfinished.discard(message.partition())
                elif error is not None:
                    pytest.fail(f"reading {topic}: {error}")
                else:
                    messages.append(message)
        return messages
    finally:
        consumer.close()


def _post(client: httpx.Client, url: str, body: bytes, content_type: str) -> httpx.Response:
    """POST, once the gateway's fold knows the new connector (it reads the log asynchronously)."""
    deadline = time.monotonic() + 30
    while True:
        response = client.post(url, content=body, headers={"content-type": content_type})
        if response.status_code != 404 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def _headers(message: Message) -> dict[str, bytes]:
    found = message.headers() or []
    pairs = found.items() if isinstance(found, dict) else found
    return {name: value for name, value in pairs if isinstance(value, bytes)}


def _decode(admin: httpx.Client, message: Message) -> dict[str, Any]:
    value = message.value()
    assert value is not None
    text = admin.get(f"/schemas/ids/{wire_schema_id(value)}").json()["schema"]
    schema = parse_schema(json.loads(text))
    record = schemaless_reader(io.BytesIO(value[5:]), schema, schema)
    assert isinstance(record, dict)
    return record


def test_records_rejected_before_a_schema_fix_are_replayed_once(
    stack: tuple[httpx.Client, httpx.Client, Settings],
) -> None:
    admin, client, settings = stack
    created = admin.post("/v1/connectors", json={"name": "replayed", "fields": FIELDS})
    assert created.status_code == 201, created.text
    connector = created.json()
    url = f"/v1/connectors/{connector['id']}/rejected/replay"
    # JSON numbers stay exact through the rejected topic: 1234567890.12 is no float.
    body = (
        b'[{"id": "a", "e-mail": "a@x", "total": 1.50},'
        b' {"id": "b", "total": 1234567890.12},'
        b' {"id": "c", "total": "lots"}]'
    )
    posted = _post(client, connector["ingest_url"], body, "application/json")
    assert posted.status_code == 200, posted.text
    assert (posted.json()["accepted"], posted.json()["rejected"]) == (1, 2)

    # Before the fix: nothing passes, and a dry run moves nothing.
    nothing = admin.post(url, params={"dry_run": "true"})
    assert nothing.status_code == 200, nothing.text
    assert {k: nothing.json()[k] for k in ("read", "accepted", "rejected", "more")} == {
        "read": 2,
        "accepted": 0,
        "rejected": 2,
        "more": False,
    }

    fixed = [
        {**field, "nullable": True} if field["name"] == "e-mail" else field for field in FIELDS
    ]
    patched = admin.patch(f"/v1/connectors/{connector['id']}", json={"fields": fixed})
    assert patched.status_code == 200, patched.text

    dry = admin.post(url, params={"dry_run": "true"}).json()
    assert (dry["dry_run"], dry["read"], dry["accepted"], dry["rejected"]) == (True, 2, 1, 1)
    assert len(_read_all(settings, connector["topic"])) == 1  # a dry run writes nothing

    replayed = admin.post(url)
    assert replayed.status_code == 200, replayed.text
    result = replayed.json()
    assert (result["read"], result["accepted"], result["rejected"]) == (2, 1, 1)
    assert result["schema_version"] == 2
    [still] = result["still_rejected"]
    assert [(e["field"], e["pointer"]) for e in still["errors"]] == [("total", "/0/total")]

    records = _read_all(settings, connector["topic"])
    assert len(records) == 2
    [again] = [m for m in records if HEADER_REPLAY_OF in _headers(m)]
    assert _decode(admin, again) == {
        "id": "b",
        "e_mail": None,
        "total": Decimal("1234567890.12"),
    }
    assert again.key() is None
    assert _headers(again)[HEADER_REQUEST_ID] == posted.headers["x-request-id"].encode()
    assert wire_schema_id(again.value() or b"") == result["schema_id"]

    # The one still invalid is kept again, pointing at the record it was.
    kept = _read_all(settings, f"inlet.{connector['id']}.rejected")
    assert len(kept) == 3
    rekept = json.loads(kept[-1].value() or b"")
    assert rekept["replay_of"] == f"{still['partition']}:{still['offset']}"
    assert rekept["record"] == {"id": "c", "total": "lots"}
    assert rekept["schema_version"] == 2

    # The next replay starts after everything the last one read: b is never written twice.
    after = admin.post(url).json()
    assert (after["read"], after["accepted"], after["rejected"]) == (1, 0, 1)
    assert len(_read_all(settings, connector["topic"])) == 2


def test_replay_limits_and_unknown_connectors(
    stack: tuple[httpx.Client, httpx.Client, Settings],
) -> None:
    admin, client, _settings = stack
    connector = admin.post("/v1/connectors", json={"name": "limited", "fields": FIELDS}).json()
    valid = b'{"id": "ok", "e-mail": "a@x", "total": 1}'
    body = b"\n".join([valid, *(b'{"id": "%d"}' % n for n in range(5))])
    posted = _post(client, connector["ingest_url"], body, "application/x-ndjson")
    assert (posted.json()["accepted"], posted.json()["rejected"]) == (1, 5)
    url = f"/v1/connectors/{connector['id']}/rejected/replay"
    first = admin.post(url, params={"limit": 3}).json()
    assert (first["read"], first["rejected"], first["more"]) == (3, 3, True)
    # The last two of the five, then the first of the three the first call kept again.
    rest = admin.post(url, params={"limit": 3}).json()
    assert (rest["read"], rest["more"]) == (3, True)
    [first_kept_again] = [r for r in rest["still_rejected"] if r["offset"] >= 5]
    assert first_kept_again["errors"][0]["code"] == "missing_field"
    assert admin.post(url, params={"limit": 0}).status_code == 422
    missing = admin.post("/v1/connectors/con_missing/rejected/replay")
    assert missing.status_code == 404
