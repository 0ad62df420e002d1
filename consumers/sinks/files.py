"""The files sink: Parquet or NDJSON files in a directory, by received-at day, rolled by size/time.

Exactly once: a file is written under ``.inlet/tmp/``, fsynced, then renamed into
``dt=YYYY-MM-DD/p<partition>-<first>-<last>.<ext>`` (atomic) and the directory fsynced. What is
renamed is complete; what is not is deleted when the partition is taken again. A feed resumes each
partition at the largest last offset in the names + 1, so a crash repeats only records that were
in no file, into new files. One partition has one open file at a time (a new day, a new schema for
Parquet, the size limit or the age limit closes it first), so a partition's files never overlap.

One writer per partition: a worker takes an exclusive ``flock`` on ``.inlet/p<partition>.lock``
before it reads the names, and holds it while it owns the partition. A worker that lost the
partition in a rebalance but has not noticed yet keeps its lock until it has finished its file,
and the new owner waits for it, then reads the names. (flock works between processes of one
host, or over a file system that supports it.)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from consumers.sinks import Batch, DeadLetter, DeadLetterFn, FeedRecord, Position
from consumers.sinks._file_writers import (
    FileWriter,
    NdjsonWriter,
    ParquetFileWriter,
    fsync_directory,
)
from inlet.model.pipelines import FilesSink as FilesSinkConfig
from inlet.sink_layout.columns import Column, record_columns
from inlet.sink_layout.file_names import (
    date_directory,
    file_name,
    parse_file_name,
    partition_glob,
    received_day,
)
from inlet.sink_layout.file_rows import (
    arrow_schema,
    dictionary_columns,
    file_columns,
    file_row,
    runs,
)

log = logging.getLogger("inlet.consumers.files")

STATE_DIRECTORY = ".inlet"  # locks and temporary files; readers skip dot-directories
LOCK_TIMEOUT_S = 90.0  # longer than a consumer session: a lost owner notices within one
# What pyarrow raises for a value its column cannot hold (a decimal beyond its precision...).
_VALUE_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError, TypeError)


class _OpenFile(NamedTuple):
    partition: int
    first: int
    day: date
    schema_id: int
    opened_at: float
    writer: FileWriter
    path: Path


class FilesSink:
    def __init__(
        self,
        config: FilesSinkConfig,
        schema_of: Callable[[int], dict[str, Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> None:
        self._root = Path(config.directory)
        self._extension = config.format
        self._roll_bytes = config.roll_bytes
        self._roll_seconds = config.roll_seconds
        self._schema_of = schema_of
        self._clock = clock
        self._lock_timeout_s = lock_timeout_s
        self._state = self._root / STATE_DIRECTORY
        self._tmp = self._state / "tmp"
        self._locks: dict[int, int] = {}  # partition -> the locked file's descriptor
        self._open: dict[int, _OpenFile] = {}
        self._last: dict[int, int] = {}  # partition -> the last offset in the open file
        self._positions: dict[int, Position] = {}
        self._columns: dict[int, list[Column]] = {}  # schema id -> columns
        self._schemas: dict[int, pa.Schema] = {}

    # --- Lifecycle and ownership. ---

    def start(self, columns: list[Column]) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)

    def positions(self, partitions: list[int]) -> dict[int, Position]:
        found: dict[int, Position] = {}
        for partition in partitions:
            self._lock(partition)
            for stale in self._tmp.glob(f"p{partition}-*"):
                stale.unlink(missing_ok=True)  # a file that was never renamed: not delivered
            found[partition] = self._scan(partition)
        self._positions.update(found)
        return found

    def release(self, partitions: list[int]) -> dict[int, Position]:
        committed: dict[int, Position] = {}
        for partition in partitions:
            if partition in self._open:
                committed[partition] = self._commit(partition)
            self._positions.pop(partition, None)
            self._unlock(partition)
        return committed

    def close(self) -> None:
        # Whatever is still open was not released: not delivered, so not kept.
        for partition in list(self._open):
            with contextlib.suppress(OSError):
                self._open.pop(partition).writer.abort()
        for partition in list(self._locks):
            self._unlock(partition)

    def _lock(self, partition: int) -> None:
        if partition in self._locks:
            return
        fd = os.open(self._state / f"p{partition}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self._lock_timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise TimeoutError(f"partition {partition}'s files stay locked") from None
                time.sleep(0.1)
                continue
            self._locks[partition] = fd
            return

    def _unlock(self, partition: int) -> None:
        fd = self._locks.pop(partition, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def _scan(self, partition: int) -> Position:
        next_offset: int | None = None
        delivered = 0
        for path in self._root.glob(partition_glob(partition, self._extension)):
            found = parse_file_name(path.name, self._extension)
            if found is None or found.partition != partition:
                continue
            next_offset = max(next_offset or 0, found.last + 1)
            delivered += self._row_count(path)
        return Position(next_offset, delivered)

    def _row_count(self, path: Path) -> int:
        if self._extension == "parquet":
            return int(pq.read_metadata(path).num_rows)
        with path.open("rb") as file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))

    # --- Writing. ---

    def write(self, batch: Batch, dead_letter: DeadLetterFn) -> dict[int, Position]:
        if batch.undecodable:
            dead_letter(batch.undecodable)
        committed: dict[int, Position] = {}
        for run in runs(batch.records, by_schema=self._extension == "parquet"):
            committed.update(self._write_run(run, dead_letter))
        return committed

    def tick(self) -> dict[int, Position]:
        now = self._clock()
        return {
            partition: self._commit(partition)
            for partition, open_file in list(self._open.items())
            if now - open_file.opened_at >= self._roll_seconds
        }

    def _write_run(self, run: list[FeedRecord], dead_letter: DeadLetterFn) -> dict[int, Position]:
        """Append records of one partition, day and (for Parquet) schema to the partition's file."""
        first = run[0]
        day = received_day(first.received_at_ms or 0)
        committed: dict[int, Position] = {}
        parquet = self._extension == "parquet"
        current = self._open.get(first.partition)
        # One file holds one day, and (Parquet files have one schema) one schema id.
        if current is not None and (
            current.day != day or (parquet and current.schema_id != first.schema_id)
        ):
            committed[first.partition] = self._commit(first.partition)
        columns = self._columns_of(first.schema_id)
        if parquet:
            table, refused = self._table(first.schema_id, run)
            if refused:
                dead_letter([_letter(run[i], reason) for i, reason in refused])
            if table.num_rows == 0:
                return committed
            writer = self._writer_for(first, day)
            assert isinstance(writer, ParquetFileWriter)
            writer.append(table)
        else:
            writer = self._writer_for(first, day)
            assert isinstance(writer, NdjsonWriter)
            writer.append([file_row(record, columns, arrow=False) for record in run])
        self._last[first.partition] = run[-1].offset
        if writer.size >= self._roll_bytes:
            committed[first.partition] = self._commit(first.partition)
        return committed

    def _writer_for(self, record: FeedRecord, day: date) -> FileWriter:
        current = self._open.get(record.partition)
        if current is not None:
            return current.writer
        name = f"p{record.partition}-{record.offset:012d}.{uuid.uuid4().hex}.tmp"
        path = self._tmp / name
        writer: FileWriter
        if self._extension == "parquet":
            columns = self._columns_of(record.schema_id)
            writer = ParquetFileWriter(
                path, self._arrow_schema(record.schema_id), dictionary_columns(columns)
            )
        else:
            writer = NdjsonWriter(path)
        self._open[record.partition] = _OpenFile(
            record.partition, record.offset, day, record.schema_id, self._clock(), writer, path
        )
        return writer

    def _commit(self, partition: int) -> Position:
        """Complete the partition's open file and rename it into place."""
        open_file = self._open.pop(partition)
        last = self._last.pop(partition)
        open_file.writer.finish()
        directory = self._root / date_directory(open_file.day)
        if not directory.is_dir():
            directory.mkdir(exist_ok=True)
            fsync_directory(self._root)
        name = file_name(partition, open_file.first, last, self._extension)
        open_file.path.rename(directory / name)
        fsync_directory(directory)
        before = self._positions.get(partition, Position(None, 0))
        position = Position(last + 1, before.delivered + open_file.writer.rows)
        self._positions[partition] = position
        return position

    def _columns_of(self, schema_id: int) -> list[Column]:
        if schema_id not in self._columns:
            self._columns[schema_id] = record_columns(self._schema_of(schema_id))
        return self._columns[schema_id]

    def _arrow_schema(self, schema_id: int) -> pa.Schema:
        if schema_id not in self._schemas:
            self._schemas[schema_id] = arrow_schema(self._columns_of(schema_id))
        return self._schemas[schema_id]

    def _table(
        self, schema_id: int, run: list[FeedRecord]
    ) -> tuple[pa.Table, list[tuple[int, str]]]:
        """The records as a table; rows pyarrow refuses are left out, with the reason."""
        schema = self._arrow_schema(schema_id)
        columns = self._columns_of(schema_id)
        try:
            # A field at a time: a third of the CPU of a table from row dicts (decode_bench.py).
            return pa.Table.from_arrays(file_columns(run, columns), schema=schema), []
        except _VALUE_ERRORS:
            pass
        rows = [file_row(record, columns, arrow=True) for record in run]
        good: list[dict[str, Any]] = []
        refused: list[tuple[int, str]] = []
        for index, row in enumerate(rows):
            try:
                pa.Table.from_pylist([row], schema=schema)
            except _VALUE_ERRORS as exc:
                refused.append((index, f"{type(exc).__name__}: {exc}"[:1000]))
            else:
                good.append(row)
        return pa.Table.from_pylist(good, schema=schema), refused


def _letter(record: FeedRecord, reason: str) -> DeadLetter:
    return DeadLetter(
        record.partition, record.offset, record.key, record.raw, record.headers, reason
    )
