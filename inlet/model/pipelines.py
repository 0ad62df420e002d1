"""Pipelines: a named subscription of one connector to one sink, and the folds of their topics.

Two compacted topics:

* ``_inlet_pipelines``: key = pipeline id, value = the definition as JSON; a tombstone deletes.
  Written by the registry's transactional writer, like connectors. A sink's DSN is sealed on the
  topic (``inlet/sealing.py``: it may hold a password) and open in memory.
* ``_inlet_pipeline_status``: key = ``<pipeline id>/<partition>``, value = what the feed worker that
  owns the partition last reported (``PartitionStatus``). Partition ``-1`` is the pipeline-level
  report of a worker that failed before it owned any partition (a sink it cannot reach). Written
  by feed workers with a plain idempotent producer: a status is a report, not a decision, so it
  needs no fencing. A deleted pipeline's keys are tombstoned with it.

The exactly-once state of a feed (how far it got) is *not* here: it lives with the data, in the
sink (see ``consumers/sinks``). The status topic only reports it.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from inlet.sealing import SealBroken, SecretBox
from inlet.statelog.fold import CorruptRecord, Record, text_key
from inlet.topics import PIPELINE_STATUS_TOPIC, PIPELINES_TOPIC

log = logging.getLogger(__name__)

FileFormat = Literal["parquet", "ndjson"]
# What a failing feed is going through: "transient" (the sink is down, a timeout: it will likely
# come back by itself) or "permanent" (a wrong password, a missing database, a path it cannot
# write, every record refused: someone must fix something). Either way the feed keeps retrying,
# so a fix outside Inlet resumes it.
FailureKind = Literal["transient", "permanent"]
# What GET /v1/pipelines says a pipeline is doing (``run_state``).
RunState = Literal["running", "paused", "retrying", "failing"]
PIPELINE_PARTITION = -1  # the status key of reports about the whole pipeline

DEFAULT_ROLL_BYTES = 128 * 1024 * 1024
DEFAULT_ROLL_SECONDS = 300.0
MIN_ROLL_BYTES = 1024
MAX_ROLL_BYTES = 4 * 1024 * 1024 * 1024
MIN_ROLL_SECONDS = 1.0
MAX_ROLL_SECONDS = 86_400.0


def new_pipeline_id() -> str:
    """URL-safe and a valid topic and group name part: ``pip_`` and 16 hex digits."""
    return "pip_" + secrets.token_hex(8)


class _SinkConfig(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"
):
    """What every sink's settings are: JSON objects told apart by ``type`` (each class's tag)."""


class PostgresSink(_SinkConfig, frozen=True, tag="postgres"):
    dsn: str
    # ``name`` or ``schema.name``, used as written (quoted); None: derived from the pipeline name
    # when the pipeline is made, and stored, so a rename never moves the data.
    table: str | None = None
    # For a connector with ``dedup``: the table gets a key column (``_inlet_dedup_key``, from
    # the records' ``inlet-dedup-key`` header) under a unique index, and a record whose key the
    # table already holds is skipped and counted. False: every record is written.
    dedup: bool = True


class FilesSink(_SinkConfig, frozen=True, tag="files"):
    directory: str
    format: FileFormat = "parquet"
    roll_bytes: Annotated[int, msgspec.Meta(ge=MIN_ROLL_BYTES, le=MAX_ROLL_BYTES)] = (
        DEFAULT_ROLL_BYTES
    )
    roll_seconds: Annotated[float, msgspec.Meta(ge=MIN_ROLL_SECONDS, le=MAX_ROLL_SECONDS)] = (
        DEFAULT_ROLL_SECONDS
    )


Sink = PostgresSink | FilesSink


class Pipeline(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    connector_id: str
    sink: Sink
    dlq_topic: str
    paused: bool = False
    created_at: datetime
    updated_at: datetime


class PartitionStatus(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One feed worker's report on one partition of a pipeline (or the pipeline, partition -1)."""

    pipeline_id: str
    partition: int
    # The sink's next offset: every record before it is delivered or dead-lettered.
    next_offset: int | None = None
    end_offset: int | None = None  # the partition's end when last measured
    delivered: int = 0
    dead_lettered: int = 0
    # Records not written because the table already held their idempotency key (exact: kept
    # with the sink's offsets, like ``delivered``).
    duplicates_skipped: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    # The failure going on now, if any (``last_error`` says what it is); None once the feed
    # delivers again. Only the pipeline-level report (partition -1) carries one.
    failure: FailureKind | None = None
    worker: str = ""
    updated_at: datetime

    @property
    def lag(self) -> int | None:
        if self.end_offset is None:
            return None
        return max(0, self.end_offset - (self.next_offset or 0))


def run_state(pipeline: Pipeline, reports: list[PartitionStatus]) -> RunState:
    """What the pipeline is doing, from its definition and its workers' latest reports.

    A permanent failure anywhere makes it ``failing``, a transient one ``retrying``: either is
    a feed not delivering now, which ``running`` must never hide.
    """
    if pipeline.paused:
        return "paused"
    failures = {r.failure for r in reports}
    if "permanent" in failures:
        return "failing"
    if "transient" in failures:
        return "retrying"
    return "running"


_encoder = msgspec.json.Encoder()
_pipeline_decoder = msgspec.json.Decoder(Pipeline)
_status_decoder = msgspec.json.Decoder(PartitionStatus)


def pipeline_record(pipeline: Pipeline, box: SecretBox) -> Record:
    """The pipeline as stored: its sink's DSN sealed."""
    stored = pipeline
    if isinstance(pipeline.sink, PostgresSink):
        sealed = box.seal(pipeline.sink.dsn, belongs_to=pipeline.id)
        stored = msgspec.structs.replace(
            pipeline, sink=msgspec.structs.replace(pipeline.sink, dsn=sealed)
        )
    return Record(PIPELINES_TOPIC, pipeline.id.encode(), _encoder.encode(stored))


def pipeline_tombstone(pipeline_id: str) -> Record:
    return Record(PIPELINES_TOPIC, pipeline_id.encode(), None)


def status_key(pipeline_id: str, partition: int) -> bytes:
    return f"{pipeline_id}/{partition}".encode()


def status_value(status: PartitionStatus) -> bytes:
    return _encoder.encode(status)


def status_tombstone(pipeline_id: str, partition: int) -> Record:
    return Record(PIPELINE_STATUS_TOPIC, status_key(pipeline_id, partition), None)


class PipelineState:
    """The current pipelines by id and by name (case-insensitive), DSNs opened with ``box``."""

    def __init__(self, box: SecretBox) -> None:
        self.box = box
        self.by_id: dict[str, Pipeline] = {}
        self._by_name: dict[str, str] = {}

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic != PIPELINES_TOPIC:
            return
        pipeline_id = text_key(topic, key)
        old = self.by_id.pop(pipeline_id, None)
        if old is not None:
            self._by_name.pop(old.name.casefold(), None)
        if value is None:
            return
        try:
            pipeline = _pipeline_decoder.decode(value)
        except msgspec.DecodeError as exc:
            # Like connectors: the pipeline is gone as far as this fold knows.
            raise CorruptRecord(f"pipeline {pipeline_id!r}: {exc}") from exc
        if isinstance(pipeline.sink, PostgresSink):
            try:
                dsn = self.box.open(pipeline.sink.dsn, belongs_to=pipeline_id)
            except SealBroken as exc:
                # Kept, sealed: listed (masked) by the API, refused with this reason by its sink.
                log.warning("cannot open a pipeline's DSN: %s", exc, extra={"key": pipeline_id})
            else:
                sink = msgspec.structs.replace(pipeline.sink, dsn=dsn)
                pipeline = msgspec.structs.replace(pipeline, sink=sink)
        self.by_id[pipeline_id] = pipeline
        self._by_name[pipeline.name.casefold()] = pipeline_id

    def get(self, pipeline_id: str) -> Pipeline | None:
        return self.by_id.get(pipeline_id)

    def by_name(self, name: str) -> Pipeline | None:
        pipeline_id = self._by_name.get(name.casefold())
        return None if pipeline_id is None else self.by_id.get(pipeline_id)

    def ids_of_connector(self, connector_id: str) -> list[str]:
        """The ids of the pipelines reading ``connector_id``, in creation order."""
        return [p.id for p in self.all() if p.connector_id == connector_id]

    def all(self) -> list[Pipeline]:
        """Pipelines in creation order (then id, so the order is total)."""
        return sorted(self.by_id.values(), key=lambda p: (p.created_at, p.id))


class PipelineStatusState:
    """The latest report per pipeline partition."""

    def __init__(self) -> None:
        self._reports: dict[str, dict[int, PartitionStatus]] = {}

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic != PIPELINE_STATUS_TOPIC:
            return
        pipeline_id, _, partition_text = text_key(topic, key).rpartition("/")
        try:
            partition = int(partition_text)
            status = None if value is None else _status_decoder.decode(value)
        except (ValueError, msgspec.DecodeError) as exc:
            raise CorruptRecord(f"pipeline status {key!r}: {exc}") from exc
        reports = self._reports.setdefault(pipeline_id, {})
        if status is None:
            reports.pop(partition, None)
            if not reports:
                del self._reports[pipeline_id]
        else:
            reports[partition] = status

    def reports(self, pipeline_id: str) -> list[PartitionStatus]:
        """Reports in partition order (the pipeline-level one, if any, first)."""
        reports = self._reports.get(pipeline_id, {})
        return [reports[p] for p in sorted(reports)]
