"""What the connector page shows, shaped from the services' answers
(``registry/console/connector_view.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from inlet.model.connectors import Connector, Status
from inlet.model.samples import RejectedSample, SampleRecord
from inlet.records import RecordError, RecordErrorCode
from registry.console.connector_view import cell, deleted_with, live, progress_text, sample_row
from registry.sample_service import Progress, RecordCounts, RejectedPage, SampleCount, SamplePage
from tests.unit.test_avro import f

AT = datetime(2026, 1, 1, tzinfo=UTC)


def connector(status: Status = "awaiting_samples") -> Connector:
    return Connector(
        id="con_1",
        name="orders",
        fields=[f("id"), f("total", "decimal", precision=10, scale=2), f("tags", "array")],
        status=status,
        topic="inlet.con_1",
        rejected_topic="inlet.con_1.rejected",
        subject="inlet.con_1-value",
        record_name="orders",
        schema_id=1,
        schema_version=1,
        token_hash="h",
        created_at=AT,
        updated_at=AT,
    )


def sample(offset: int, value: Any, *, truncated: bool = False) -> SampleRecord:
    return SampleRecord(
        partition=0,
        offset=offset,
        schema_id=1,
        schema_version=1,
        received_at=AT,
        value=value,
        truncated=truncated,
    )


def samples(count: int, required: int = 50) -> SamplePage:
    records = [sample(i, {"id": f"o-{i}", "total": "1.50", "tags": ["a"]}) for i in range(count)]
    return SamplePage(required, count, records)


def progress(accepted: int, rejected: int = 0) -> Progress:
    return Progress(RecordCounts(accepted, rejected), SampleCount(min(accepted, 50), 50))


NO_REJECTED = RejectedPage(0, [])


def test_save_is_possible_exactly_at_the_required_count() -> None:
    assert not live(connector(), progress(49), samples(49), NO_REJECTED).can_save
    assert live(connector(), progress(50), samples(50), NO_REJECTED).can_save
    assert not live(connector("saved"), progress(50), samples(50), NO_REJECTED).can_save


def test_rows_are_the_fields_in_order_under_the_users_names() -> None:
    shown = live(connector(), progress(2), samples(2), NO_REJECTED)
    assert shown.columns == ["id", "total", "tags"]
    assert shown.rows == [["o-0", "1.50", '["a"]'], ["o-1", "1.50", '["a"]']]
    assert progress_text(shown.count, shown.required) == "2 of 50 records received"


def test_a_missing_or_null_value_is_an_empty_cell_and_a_truncated_record_says_so() -> None:
    assert sample_row(["id", "x"], sample(0, {"id": None})) == ["", ""]
    assert sample_row(["id", "x"], sample(0, None, truncated=True)) == ["(too large to show)", ""]
    assert cell(True) == "true"
    assert cell({"a": 1}) == '{"a":1}'


def test_rejected_records_carry_index_field_and_message_newest_first() -> None:
    error = RecordError(3, "/3/total", "total", RecordErrorCode.INVALID_VALUE, "not a decimal")
    whole = RecordError(4, "/4", None, RecordErrorCode.WRONG_TYPE, "must be an object")
    page = RejectedPage(
        2,
        [
            RejectedSample(
                partition=0,
                offset=7,
                received_at=AT,
                request_id="r",
                schema_id=1,
                schema_version=1,
                content_type="application/json",
                record={"id": "o", "total": "x"},
                errors=[error],
            ),
            RejectedSample(
                partition=0,
                offset=6,
                received_at=AT,
                request_id="r",
                schema_id=1,
                schema_version=1,
                content_type="application/json",
                record=5,
                errors=[whole],
            ),
        ],
    )
    shown = live(connector(), progress(0, 2), samples(0), page)
    assert shown.rejected == 2
    first, second = msgspec.to_builtins(shown.rejected_rows)
    assert first["at"] == "0:7"
    assert first["record"] == '{"id":"o","total":"x"}'
    assert first["reasons"] == [{"index": 3, "field": "total", "message": "not a decimal"}]
    assert second["reasons"] == [{"index": 4, "field": "", "message": "must be an object"}]


def test_a_delete_names_the_topics_and_subject_unless_kept() -> None:
    named = deleted_with(connector(), "delete")
    assert [what.split(" ")[:2] for what in named] == [
        ["topic", "inlet.con_1"],
        ["topic", "inlet.con_1.rejected"],
        ["subject", "inlet.con_1-value"],
    ]
    assert deleted_with(connector(), "keep") == []
