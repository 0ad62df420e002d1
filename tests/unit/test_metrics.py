"""Metrics without Kafka: registry route labels, the gateway's metric files, pipeline reports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from prometheus_client import generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from consumers.metrics import ConsumerMetrics, serve_metrics
from gateway._metrics_files import MetricFiles, _write_archive
from inlet.model.pipelines import PIPELINE_PARTITION, PartitionStatus
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from tests.registry_app import ADMIN_TOKEN, InMemoryRegistry


def _samples(text: str, metric: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in an exposition."""
    return {
        labels: float(value)
        for labels, value in re.findall(rf"^{metric}\{{(.*)\}} (\S+)$", text, re.MULTILINE)
    }


async def test_registry_requests_are_labelled_by_route_never_by_path(tmp_path: Path) -> None:
    registry = InMemoryRegistry(Settings(data_dir=str(tmp_path)), InMemoryStateLog)
    async with AsyncTestClient(registry.app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        created = await client.post(
            "/v1/connectors", json={"name": "orders", "fields": [{"name": "id", "type": "string"}]}
        )
        assert created.status_code == 201
        connector = created.json()["id"]
        assert (await client.get(f"/v1/connectors/{connector}")).status_code == 200
        assert (await client.get("/v1/connectors/con_nothere")).status_code == 404
        assert (await client.get("/no/such/path/con_secret")).status_code == 404
        del client.headers["Authorization"]
        scraped = await client.get("/metrics")  # no token needed
    assert scraped.status_code == 200
    requests = _samples(scraped.text, "inlet_registry_requests_total")
    assert requests == {
        'method="POST",route="/v1/connectors",status="201"': 1.0,
        'method="GET",route="/v1/connectors/{connector_id}",status="200"': 1.0,
        'method="GET",route="/v1/connectors/{connector_id}",status="404"': 1.0,
        'method="GET",route="unmatched",status="404"': 1.0,
    }
    assert connector not in scraped.text
    assert "con_secret" not in scraped.text
    assert "inlet_registry_request_duration_seconds_bucket" in scraped.text


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def _key(connector: str) -> str:
    return mmap_key(
        "inlet_records_accepted", "inlet_records_accepted_total", ["connector"], [connector], "h"
    )


def _write(path: Path, values: dict[str, float]) -> None:
    values_file = MmapedDict(str(path))  # type: ignore[no-untyped-call]
    for key, value in values.items():
        values_file.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
    values_file.close()  # type: ignore[no-untyped-call]


def _accepted(text: str) -> dict[str, float]:
    return {
        labels.removeprefix('connector="').removesuffix('"'): value
        for labels, value in _samples(text, "inlet_records_accepted_total").items()
    }


def test_dead_workers_files_are_merged_once_and_deleted_connectors_dropped(
    tmp_path: Path,
) -> None:
    dead, live = _dead_pid(), os.getpid()
    _write(tmp_path / f"counter_{dead}.db", {_key("con_a"): 5, _key("con_gone"): 3})
    _write(tmp_path / f"counter_{live}.db", {_key("con_a"): 2})
    (tmp_path / f"gauge_livesum_{dead}.db").touch()
    files = MetricFiles(tmp_path)

    first = files.render(keep=lambda c: c != "con_gone", archive=lambda c: c != "con_gone").decode()
    assert _accepted(first) == {"con_a": 7.0}
    names = {p.name for p in tmp_path.glob("*.db")}
    assert names == {"counter_dead.db", f"counter_{live}.db"}  # bounded: the dead one merged
    again = files.render(keep=lambda _: True, archive=lambda _: True).decode()
    assert _accepted(again) == {"con_a": 7.0}  # not merged twice
    assert "merged" not in first


def test_a_merge_interrupted_after_its_commit_counts_nothing_twice(tmp_path: Path) -> None:
    dead = _dead_pid()
    # As if the merging worker died between writing the archive and deleting the merged file.
    _write(tmp_path / f"counter_{dead}.db", {_key("con_a"): 5})
    _write_archive(tmp_path / "counter_dead.db", {_key("con_a"): 5}, [dead])
    files = MetricFiles(tmp_path)
    assert _accepted(files.render(keep=lambda _: True, archive=lambda _: True).decode()) == {
        "con_a": 5.0
    }
    assert {p.name for p in tmp_path.glob("*.db")} == {"counter_dead.db"}


def test_a_worker_claims_its_pid_from_an_earlier_process(tmp_path: Path) -> None:
    pid = os.getpid()  # reused: the files were left by an earlier process with this pid
    _write(tmp_path / f"counter_{pid}.db", {_key("con_a"): 4})
    files = MetricFiles(tmp_path)
    files.claim(pid)
    assert not (tmp_path / f"counter_{pid}.db").exists()
    assert _accepted(files.render(keep=lambda _: True, archive=lambda _: True).decode()) == {
        "con_a": 4.0
    }


def _report(pipeline: str, partition: int, **fields: Any) -> PartitionStatus:
    return PartitionStatus(
        pipeline_id=pipeline, partition=partition, updated_at=datetime.now(UTC), **fields
    )


def test_pipeline_metrics_follow_the_published_reports() -> None:
    metrics = ConsumerMetrics()
    now = datetime.now(UTC)
    metrics.pipelines.publish(
        [
            _report(
                "pip_a",
                0,
                next_offset=10,
                end_offset=15,
                delivered=9,
                dead_lettered=1,
                duplicates_skipped=4,
                last_error="bad",
                last_error_at=now,
            ),
            _report(
                "pip_b", 0, delivered=3, last_error="old", last_error_at=now - timedelta(hours=1)
            ),
            _report(
                "pip_c",
                PIPELINE_PARTITION,
                last_error="no connector",
                last_error_at=now - timedelta(hours=1),
                failure="permanent",  # failing while it lasts, however old
            ),
        ]
    )
    text = generate_latest(metrics.registry).decode()
    assert _samples(text, "inlet_pipeline_delivered_total")['partition="0",pipeline="pip_a"'] == 9
    assert (
        _samples(text, "inlet_pipeline_dead_lettered_total")['partition="0",pipeline="pip_a"'] == 1
    )
    skipped = _samples(text, "inlet_pipeline_duplicates_skipped_total")
    assert skipped['partition="0",pipeline="pip_a"'] == 4
    assert _samples(text, "inlet_pipeline_lag_records") == {'partition="0",pipeline="pip_a"': 5}
    assert _samples(text, "inlet_pipeline_failing") == {
        'pipeline="pip_a"': 1,
        'pipeline="pip_b"': 0,
        'pipeline="pip_c"': 1,
    }
    metrics.pipelines.publish([_report("pip_b", 0, delivered=4)])  # pip_a and pip_c deleted
    text = generate_latest(metrics.registry).decode()
    assert "pip_a" not in text
    assert "pip_c" not in text


def test_the_consumers_metrics_server_answers_and_a_taken_port_is_no_crash() -> None:
    metrics = ConsumerMetrics()
    server = serve_metrics(metrics, "127.0.0.1", 0)  # the system picks the port
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"inlet_samples_connectors_followed" in response.read()
        assert serve_metrics(metrics, "127.0.0.1", server.server_port) is None
    finally:
        server.shutdown()
        server.server_close()


def test_a_connector_not_folded_yet_loses_no_counts_to_a_merge(tmp_path: Path) -> None:
    _write(tmp_path / f"counter_{_dead_pid()}.db", {_key("con_new"): 5})
    files = MetricFiles(tmp_path)
    # The scraping worker has not folded con_new yet: hidden now, but kept in the archive.
    hidden = files.render(keep=lambda c: c != "con_new", archive=lambda _: True).decode()
    assert _accepted(hidden) == {}
    shown = files.render(keep=lambda _: True, archive=lambda _: True).decode()
    assert _accepted(shown) == {"con_new": 5.0}
