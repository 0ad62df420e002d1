"""Every state fold refuses a record it cannot read (``CorruptRecord``) and goes on folding.

The reader counts and skips such records (``inlet/statelog/kafka.py``); here the folds are
driven without Kafka: bad keys (not UTF-8), bad JSON, the wrong shape.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from consumers.sample_worker import _Deletions
from inlet.model.connectors import Connector, ConnectorState, connector_record_value
from inlet.model.fields import FieldSpec
from inlet.model.pipelines import (
    FilesSink,
    PartitionStatus,
    Pipeline,
    PipelineState,
    PipelineStatusState,
    status_key,
    status_value,
)
from inlet.model.samples import SampleState
from inlet.sealing import SecretBox
from inlet.statelog.fold import CorruptRecord, StateFold
from inlet.topics import CONNECTORS_TOPIC, PIPELINE_STATUS_TOPIC, PIPELINES_TOPIC, SAMPLES_TOPIC

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOT_UTF8 = b"\xff\xfecon_1"
BAD_VALUES = [b"not json", b'{"id": "con_x"}', b"[1, 2]", b'{"name": 3}']


def _connector(connector_id: str, token_hash: str) -> Connector:
    return Connector(
        id=connector_id,
        name=connector_id,
        fields=[FieldSpec(name="id", type="string")],
        topic=f"inlet.{connector_id}",
        rejected_topic=f"inlet.{connector_id}.rejected",
        subject=f"inlet.{connector_id}-value",
        record_name="r",
        schema_id=1,
        schema_version=1,
        token_hash=token_hash,
        created_at=NOW,
        updated_at=NOW,
    )


def _pipeline(pipeline_id: str) -> Pipeline:
    return Pipeline(
        id=pipeline_id,
        name=pipeline_id,
        connector_id="con_1",
        sink=FilesSink(directory="/tmp/x"),
        dlq_topic="dlq",
        created_at=NOW,
        updated_at=NOW,
    )


def _connectors_with_one() -> ConnectorState:
    state = ConnectorState()
    state.apply(CONNECTORS_TOPIC, b"con_1", connector_record_value(_connector("con_1", "h1")))
    return state


def test_a_connector_key_that_is_not_utf8_changes_nothing() -> None:
    state = _connectors_with_one()
    with pytest.raises(CorruptRecord):
        state.apply(CONNECTORS_TOPIC, NOT_UTF8, connector_record_value(_connector("x", "h2")))
    assert [c.id for c in state.all()] == ["con_1"]
    assert state.by_token_hash("h2") is None
    # The fold goes on: the next connector and the next delete are folded.
    state.apply(CONNECTORS_TOPIC, b"con_2", connector_record_value(_connector("con_2", "h2")))
    state.apply(CONNECTORS_TOPIC, b"con_1", None)
    assert state.by_token_hash("h2") is not None
    assert state.by_token_hash("h1") is None


@pytest.mark.parametrize("value", BAD_VALUES)
def test_an_unreadable_connector_value_retires_that_connector_only(value: bytes) -> None:
    state = _connectors_with_one()
    state.apply(CONNECTORS_TOPIC, b"con_2", connector_record_value(_connector("con_2", "h2")))
    with pytest.raises(CorruptRecord):
        state.apply(CONNECTORS_TOPIC, b"con_1", value)
    # Its latest definition is unreadable: its token stops working, on every instance alike.
    assert state.by_token_hash("h1") is None
    assert state.by_name("con_1") is None
    assert state.by_token_hash("h2") is not None


def test_pipeline_fold_refuses_bad_keys_and_values() -> None:
    state = PipelineState(SecretBox(b"k" * 32))
    good = msgspec.json.encode(_pipeline("pip_1"))
    state.apply(PIPELINES_TOPIC, b"pip_1", good)
    with pytest.raises(CorruptRecord):
        state.apply(PIPELINES_TOPIC, NOT_UTF8, good)
    for value in BAD_VALUES:
        with pytest.raises(CorruptRecord):
            state.apply(PIPELINES_TOPIC, b"pip_2", value)
    assert [p.id for p in state.all()] == ["pip_1"]
    state.apply(PIPELINES_TOPIC, b"pip_3", msgspec.json.encode(_pipeline("pip_3")))
    assert [p.id for p in state.all()] == ["pip_1", "pip_3"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (NOT_UTF8 + b"/0", b"{}"),
        (b"pip_1/zero", b"{}"),
        (b"pip_1/0", b"not json"),
        (b"pip_1/0", b'{"partition": "x"}'),
    ],
)
def test_pipeline_status_fold_refuses_bad_keys_and_values(key: bytes, value: bytes) -> None:
    state = PipelineStatusState()
    report = PartitionStatus(pipeline_id="pip_1", partition=1, updated_at=NOW)
    state.apply(PIPELINE_STATUS_TOPIC, status_key("pip_1", 1), status_value(report))
    with pytest.raises(CorruptRecord):
        state.apply(PIPELINE_STATUS_TOPIC, key, value)
    assert state.reports("pip_1") == [report]


def test_sample_fold_refuses_a_key_that_is_not_utf8() -> None:
    state = SampleState()
    with pytest.raises(CorruptRecord):
        state.apply(SAMPLES_TOPIC, NOT_UTF8, b"{}")
    assert state.connector_ids() == []
    state.apply(SAMPLES_TOPIC, b"con_1", b"{}")
    assert state.connector_ids() == ["con_1"]


def test_the_sample_workers_deletion_fold_refuses_a_key_that_is_not_utf8() -> None:
    deletions = _Deletions()
    with pytest.raises(CorruptRecord):
        deletions.apply(CONNECTORS_TOPIC, NOT_UTF8, None)
    deletions.apply(CONNECTORS_TOPIC, b"con_1", None)
    assert deletions.take() == ["con_1"]


def test_state_fold_shows_a_corrupt_record_to_every_part_then_says_so() -> None:
    connectors = ConnectorState()
    seen: list[bytes] = []

    class Recorder:
        def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
            seen.append(key)

    fold = StateFold(connectors, Recorder())
    with pytest.raises(CorruptRecord):
        fold.apply(CONNECTORS_TOPIC, NOT_UTF8, b"{}")
    assert seen == [NOT_UTF8]
