"""The files sink on a local directory (no Kafka): rolling, atomic files, resuming from names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from consumers.sinks import Batch, DeadLetter, FeedRecord, Position
from consumers.sinks.files import FilesSink
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec
from inlet.model.pipelines import FileFormat
from inlet.model.pipelines import FilesSink as FilesSinkConfig
from inlet.sink_layout.columns import record_columns

V1 = avro_schema(
    "Rec",
    [
        FieldSpec(name="id", type="string"),
        FieldSpec(name="amount", type="decimal", precision=6, scale=2),
    ],
)
V2 = avro_schema(
    "Rec",
    [
        FieldSpec(name="id", type="string"),
        FieldSpec(name="amount", type="decimal", precision=6, scale=2),
        FieldSpec(name="note", type="string", nullable=True),
    ],
)
SCHEMAS = {1: V1, 2: V2}
DAY1 = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1000)
DAY2 = int(datetime(2026, 3, 2, 12, tzinfo=UTC).timestamp() * 1000)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(
    partition: int, offset: int, *, at: int = DAY1, schema_id: int = 1, **value: Any
) -> FeedRecord:
    body = {"id": f"p{partition}o{offset}", "amount": Decimal("1.50"), **value}
    return FeedRecord(partition, offset, None, [], b"raw", at, None, schema_id, body)


def _batch(*records: FeedRecord) -> Batch:
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = record.offset + 1
    return Batch(list(records), [], ends)


def _sink(directory: Path, fmt: FileFormat = "parquet", **config: Any) -> tuple[FilesSink, Clock]:
    clock = Clock()
    settings = FilesSinkConfig(directory=str(directory), format=fmt, **config)
    sink = FilesSink(settings, SCHEMAS.__getitem__, clock=clock, lock_timeout_s=0.3)
    sink.start(record_columns(V1))
    return sink, clock


def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.glob("dt=*/*"))


def _no_letters(letters: list[DeadLetter]) -> None:
    raise AssertionError(f"unexpected dead letters: {letters}")


def test_files_appear_whole_on_roll_and_resume_from_their_names(tmp_path: Path) -> None:
    sink, clock = _sink(tmp_path, roll_seconds=10)
    assert sink.positions([0, 1]) == {0: Position(None, 0), 1: Position(None, 0)}
    assert sink.write(_batch(*(_record(0, o) for o in range(5)), _record(1, 7)), _no_letters) == {}
    assert _files(tmp_path) == []  # nothing is visible before it is complete
    clock.now = 11
    assert sink.tick() == {0: Position(5, 5), 1: Position(8, 1)}
    assert _files(tmp_path) == [
        "dt=2026-03-01/p0-000000000000-000000000004.parquet",
        "dt=2026-03-01/p1-000000000007-000000000007.parquet",
    ]
    table = pq.read_table(tmp_path / _files(tmp_path)[0])
    assert table.column("_inlet_offset").to_pylist() == [0, 1, 2, 3, 4]
    assert table.column("amount").to_pylist()[0] == Decimal("1.50")

    # Records written but not in a completed file are not delivered: a crash forgets them.
    sink.write(_batch(_record(0, 5), _record(0, 6)), _no_letters)
    sink.close()
    again, _ = _sink(tmp_path)
    assert again.positions([0, 1, 2]) == {
        0: Position(5, 5),
        1: Position(8, 1),
        2: Position(None, 0),
    }
    assert list((tmp_path / ".inlet" / "tmp").iterdir()) == []  # the crash's temp file is gone


def test_a_new_day_or_schema_starts_a_new_file(tmp_path: Path) -> None:
    sink, _ = _sink(tmp_path)
    sink.positions([0])
    records = [
        _record(0, 0),
        _record(0, 1, at=DAY2),
        _record(0, 2, at=DAY2, schema_id=2, note="hi"),
        _record(0, 3, at=DAY2, schema_id=2),
    ]
    committed = sink.write(_batch(*records), _no_letters)
    assert committed == {
        0: Position(2, 2)
    }  # two files finished within the write: day 1, then v1 of day 2
    assert sink.release([0]) == {0: Position(4, 4)}
    assert _files(tmp_path) == [
        "dt=2026-03-01/p0-000000000000-000000000000.parquet",
        "dt=2026-03-02/p0-000000000001-000000000001.parquet",
        "dt=2026-03-02/p0-000000000002-000000000003.parquet",
    ]
    last = pq.read_table(tmp_path / _files(tmp_path)[-1])
    assert last.column("note").to_pylist() == ["hi", None]


def test_size_roll_and_ndjson(tmp_path: Path) -> None:
    sink, _ = _sink(tmp_path, "ndjson", roll_bytes=1024)
    sink.positions([0])
    for start in range(0, 60, 10):
        sink.write(_batch(*(_record(0, o) for o in range(start, start + 10))), _no_letters)
    sink.release([0])
    files = _files(tmp_path)
    assert len(files) > 1
    lines = [json.loads(line) for f in files for line in (tmp_path / f).read_text().splitlines()]
    assert [line["_inlet_offset"] for line in lines] == list(range(60))
    assert lines[0]["amount"] == "1.50"
    assert lines[0]["_inlet_received_at"] == "2026-03-01T12:00:00Z"
    again, _ = _sink(tmp_path, "ndjson")
    assert again.positions([0]) == {0: Position(60, 60)}


def test_a_value_parquet_cannot_hold_is_dead_lettered(tmp_path: Path) -> None:
    sink, _ = _sink(tmp_path)
    sink.positions([0])
    letters: list[DeadLetter] = []
    records = [_record(0, 0), _record(0, 1, amount=Decimal("123456789.5")), _record(0, 2)]
    sink.write(_batch(*records), letters.extend)
    assert [(d.offset, d.value) for d in letters] == [(1, b"raw")]
    assert "precision" in letters[0].reason.lower()
    sink.release([0])
    table = pq.read_table(tmp_path / _files(tmp_path)[0])
    assert table.column("_inlet_offset").to_pylist() == [0, 2]


def test_one_owner_per_partition(tmp_path: Path) -> None:
    first, _ = _sink(tmp_path)
    first.positions([0])
    second, _ = _sink(tmp_path)
    with pytest.raises(TimeoutError):
        second.positions([0])  # the first still owns it
    assert second.positions([1]) == {1: Position(None, 0)}
    first.write(_batch(_record(0, 0)), _no_letters)
    first.release([0])  # finishes its file, then lets go
    assert second.positions([0]) == {0: Position(1, 1)}
