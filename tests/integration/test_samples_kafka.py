"""Samples on real Kafka: the worker follows a connector's topics, the registry serves what it
wrote, saving waits for 50 valid records, and a restart keeps the first 50 and counts exactly."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from fastavro import parse_schema, schemaless_writer

from consumers.sample_worker import SampleWorker, SampleWorkerFenced
from inlet.kafka import AsyncProducer, OutgoingRecord, producer_config
from inlet.model.avro import avro_schema, schema_json
from inlet.model.fields import FieldSpec
from inlet.records import (
    HEADER_RECEIVED_AT,
    HEADER_REQUEST_ID,
    RecordError,
    RecordErrorCode,
    RejectedRecord,
    wire_frame,
)
from inlet.settings import Settings
from registry.app import create_app
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_samples-test"
FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "at", "type": "datetime"},
]
# Samples show soon after the gateway's acknowledgement; the deadline is for a loaded CI machine.
SAMPLES_DEADLINE_S = 30.0


@pytest.fixture
def sample_settings(settings: Settings, tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=str(tmp_path),
        admin_token=TOKEN,
        topic_partitions=2,
    )


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[SampleWorker]:
    worker = SampleWorker(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait([task, ready], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        await task  # it failed: show why
    assert worker.ready.is_set(), "the sample worker did not start"
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0, what: str = "condition"
) -> float:
    """Poll ``check`` until true; the seconds it took. Fails at the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    pytest.fail(f"{what} not reached within {timeout_s} s")


class Source:
    """Writes records to a connector's topics the way the gateway does."""

    def __init__(self, settings: Settings, connector: dict[str, Any]) -> None:
        self.connector = connector
        self._producer = AsyncProducer(producer_config(settings, client_id="samples-test"))
        self._parsed: dict[int, Any] = {}
        self.sent = 0

    def close(self) -> None:
        self._producer.close()

    def _schema(self, schema_id: int, fields: list[dict[str, Any]]) -> Any:
        if schema_id not in self._parsed:
            specs = msgspec.convert(fields, list[FieldSpec])
            text = schema_json(avro_schema(self.connector["record_name"], specs))
            self._parsed[schema_id] = parse_schema(json.loads(text))
        return self._parsed[schema_id]

    async def valid(
        self,
        count: int,
        *,
        schema_id: int | None = None,
        fields: list[dict[str, Any]] = FIELDS,
        extra: dict[str, Any] | None = None,
    ) -> list[str]:
        """``count`` valid records over the topic's partitions; their request ids."""
        schema_id = schema_id or self.connector["schema_id"]
        parsed = self._schema(schema_id, fields)
        records: list[OutgoingRecord] = []
        request_ids: list[str] = []
        for _ in range(count):
            n = self.sent
            self.sent += 1
            body = io.BytesIO()
            record = {"id": f"o-{n}", "total": Decimal(f"{n}.50"), "at": 1_767_225_600_000_000 + n}
            schemaless_writer(body, parsed, {**record, **(extra or {})})
            request_id = f"req-{uuid.uuid4().hex[:8]}"
            request_ids.append(request_id)
            headers: list[tuple[str, str | bytes | None]] = [
                (HEADER_REQUEST_ID, request_id),
                (HEADER_RECEIVED_AT, str(int(time.time() * 1000))),
            ]
            records.append(
                OutgoingRecord(
                    self.connector["topic"],
                    wire_frame(schema_id, body.getvalue()),
                    f"o-{n}".encode(),
                    headers=headers,
                    partition=n % self.connector["partitions"],
                )
            )
        await self._producer.produce_batch(records)
        return request_ids

    async def rejected(self, count: int) -> None:
        records: list[OutgoingRecord] = []
        for n in range(count):
            record = RejectedRecord(
                connector_id=self.connector["id"],
                request_id=f"bad-{n}",
                received_at_ms=int(time.time() * 1000),
                schema_id=self.connector["schema_id"],
                schema_version=self.connector["schema_version"],
                content_type="application/json",
                record={"id": n, "total": "lots"},
                errors=[
                    RecordError(
                        0, "/0/total", "total", RecordErrorCode.WRONG_TYPE, "must be a decimal"
                    )
                ],
            )
            records.append(
                OutgoingRecord(self.connector["rejected_topic"], msgspec.json.encode(record))
            )
        await self._producer.produce_batch(records)


@asynccontextmanager
async def registry(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with serve(create_app(settings)) as url:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            yield client


async def create_connector(api: httpx.AsyncClient, prefix: str) -> dict[str, Any]:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    created = await api.post("/v1/connectors", json={"name": name, "fields": FIELDS})
    assert created.status_code == 201, created.text
    connector: dict[str, Any] = created.json()
    return connector


async def json_of(api: httpx.AsyncClient, path: str) -> Any:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def test_samples_saving_rejected_and_an_exact_restart(sample_settings: Settings) -> None:
    async with registry(sample_settings) as api:
        connector = await create_connector(api, "orders")
        cid = connector["id"]
        source = Source(sample_settings, connector)
        try:
            async with running_worker(sample_settings) as worker:

                async def following() -> bool:
                    return connector["topic"] in worker.assigned

                # A new connector's topics are followed (soon; the deadline allows a busy machine).
                await eventually(following, timeout_s=30, what="the connector's topic assigned")
                first_ids = await source.valid(49)

                async def has_49() -> bool:
                    samples = await json_of(api, f"/v1/connectors/{cid}/samples")
                    return bool(samples["count"] == 49)

                await eventually(has_49, timeout_s=SAMPLES_DEADLINE_S, what="49 samples")

                refused = await api.post(f"/v1/connectors/{cid}/save")
                assert refused.status_code == 409, refused.text
                problem = refused.json()
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert problem["code"] == "not_enough_samples"
                assert "1 more" in problem["detail"]
                assert any("1 more" in p["reason"] for p in problem["problems"])

                await source.rejected(3)
                first_ids += await source.valid(1)

                async def counted(accepted: int, rejected: int) -> bool:
                    got = await json_of(api, f"/v1/connectors/{cid}")
                    return bool(got["counts"] == {"accepted": accepted, "rejected": rejected})

                await eventually(lambda: counted(50, 3), what="counts 50/3")
                saved = await api.post(f"/v1/connectors/{cid}/save")
                assert saved.status_code == 200, saved.text
                assert saved.json()["status"] == "saved"
                assert saved.json()["samples"] == {"count": 50, "required": 50}
                again = await api.post(f"/v1/connectors/{cid}/save")
                assert again.status_code == 200
                assert again.json()["updated_at"] == saved.json()["updated_at"]
                assert (await json_of(api, f"/v1/connectors/{cid}"))["status"] == "saved"

                rejected = await json_of(api, f"/v1/connectors/{cid}/rejected")
                assert rejected["count"] == 3
                assert [r["request_id"] for r in rejected["records"]] == ["bad-2", "bad-1", "bad-0"]
                assert rejected["records"][0]["errors"][0]["message"] == "must be a decimal"

                samples = await json_of(api, f"/v1/connectors/{cid}/samples")
                first = samples["records"][0]
                assert first["schema_id"] == connector["schema_id"]
                assert first["schema_version"] == 1
                assert first["value"]["total"].endswith(".50")
                assert first["value"]["at"].endswith("Z")
                assert {r["partition"] for r in samples["records"]} == {0, 1}

            # Stopped: what arrives now is read by the next worker, once.
            await source.valid(20)
            await source.rejected(2)
            async with running_worker(sample_settings) as worker:

                async def caught_up() -> bool:
                    state = worker.sampler.state(cid)
                    return state is not None and sum(state.positions.values()) == 70

                await eventually(caught_up, what="the restarted worker reading to the end")
                await eventually(lambda: counted(70, 5), what="counts 70/5")
                samples = await json_of(api, f"/v1/connectors/{cid}/samples")
                assert samples["count"] == 50
                assert sorted(r["request_id"] for r in samples["records"]) == sorted(first_ids)
        finally:
            await asyncio.to_thread(source.close)


async def test_each_sample_shows_its_own_schema_and_duplicates_start_empty(
    sample_settings: Settings,
) -> None:
    async with registry(sample_settings) as api:
        connector = await create_connector(api, "edits")
        cid = connector["id"]
        more_fields: list[dict[str, Any]] = [
            *FIELDS,
            {"name": "channel", "type": "string", "nullable": True},
        ]
        source = Source(sample_settings, connector)
        try:
            async with running_worker(sample_settings):
                await source.valid(1)
                edited = await api.patch(f"/v1/connectors/{cid}", json={"fields": more_fields})
                assert edited.status_code == 200, edited.text
                v2 = edited.json()
                await source.valid(
                    1, schema_id=v2["schema_id"], fields=more_fields, extra={"channel": "web"}
                )
                copy = await api.post(
                    f"/v1/connectors/{cid}/duplicate", json={"name": f"copy-{uuid.uuid4().hex[:6]}"}
                )
                assert copy.status_code == 201, copy.text

                async def both() -> bool:
                    samples = await json_of(api, f"/v1/connectors/{cid}/samples")
                    return bool(samples["count"] == 2)

                await eventually(both, what="2 samples")
                records = (await json_of(api, f"/v1/connectors/{cid}/samples"))["records"]
                by_version = {r["schema_version"]: r for r in records}
                assert by_version[1]["schema_id"] == connector["schema_id"]
                assert "channel" not in by_version[1]["value"]
                assert by_version[2]["schema_id"] == v2["schema_id"]
                assert by_version[2]["value"]["channel"] == "web"

                copy_id = copy.json()["id"]
                assert (await json_of(api, f"/v1/connectors/{copy_id}/samples"))["count"] == 0
                assert (await json_of(api, f"/v1/connectors/{copy_id}"))["counts"] == {
                    "accepted": 0,
                    "rejected": 0,
                }
        finally:
            await asyncio.to_thread(source.close)


async def test_a_second_worker_takes_over_and_the_first_cannot_write(
    sample_settings: Settings,
) -> None:
    async with registry(sample_settings) as api:
        connector = await create_connector(api, "takeover")
        cid = connector["id"]
        source = Source(sample_settings, connector)
        first = SampleWorker(sample_settings)
        stop_first = asyncio.Event()
        first_task = asyncio.create_task(first.run(stop_first))

        async def counted(accepted: int) -> bool:
            got = await json_of(api, f"/v1/connectors/{cid}")
            return bool(got["counts"]["accepted"] == accepted)

        try:
            await asyncio.wait_for(first.ready.wait(), 60)
            await source.valid(5)
            await eventually(lambda: counted(5), what="the first worker's count")
            # The first worker is never stopped: starting the second fences its writes. It stops
            # at its next write (if its share of partitions gets records), and what it read but
            # could not write, the second reads again from the written positions.
            async with running_worker(sample_settings) as second:
                await source.valid(7)

                async def caught_up() -> bool:
                    state = second.sampler.state(cid)
                    return state is not None and sum(state.positions.values()) == 12

                await eventually(caught_up, timeout_s=30, what="the second worker reading all")
                await eventually(lambda: counted(12), what="counts 12")
                if first_task.done():
                    with pytest.raises(SampleWorkerFenced):
                        first_task.result()
                stop_first.set()
                await asyncio.gather(first_task, return_exceptions=True)
                assert await counted(12)  # the first one's last write did not go through
        finally:
            stop_first.set()
            await asyncio.gather(first_task, return_exceptions=True)
            await asyncio.to_thread(source.close)
