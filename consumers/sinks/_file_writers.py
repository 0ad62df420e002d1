"""Writing one file of the files sink: rows in, a complete and fsynced temporary file out.

What a row holds, and the Parquet schema, are ``inlet/sink_layout/file_rows.py``'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from inlet.sink_layout.file_rows import ndjson_lines

# Parquet row groups are written when this much is buffered: big enough to compress well (larger
# groups also write cheaper: README, Performance), small enough to keep memory bounded per file.
_ROW_GROUP_BYTES = 32 * 1024 * 1024


class FileWriter(Protocol):
    rows: int

    @property
    def size(self) -> int:
        """Bytes written so far, and an estimate of what is buffered."""
        ...

    def finish(self) -> None:
        """Write what is buffered, fsync and close: the file is complete on disk."""
        ...

    def abort(self) -> None:
        """Close and delete the file."""
        ...


class NdjsonWriter:
    """One JSON object per line (msgspec: decimals as strings, times RFC 3339)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self.rows = 0

    @property
    def size(self) -> int:
        return self._file.tell()

    def append(self, rows: list[dict[str, Any]]) -> None:
        self._file.write(ndjson_lines(rows))
        self.rows += len(rows)

    def finish(self) -> None:
        _finish(self._file)

    def abort(self) -> None:
        _abort(self._file, self.path)


class ParquetFileWriter:
    """A Parquet file of one schema; tables appended are written out as row groups."""

    def __init__(self, path: Path, schema: pa.Schema, dictionary: list[str]) -> None:
        """``dictionary``: the columns to dictionary-encode (``file_rows.dictionary_columns``)."""
        self.path = path
        self.schema = schema
        self._file: BinaryIO = path.open("wb")
        self._writer = pq.ParquetWriter(self._file, schema, use_dictionary=dictionary or False)
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0
        self.rows = 0

    @property
    def size(self) -> int:
        # In-memory Arrow is larger than compressed Parquet: the estimate errs on small files.
        return self._file.tell() + self._pending_bytes

    def append(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self._pending_bytes >= _ROW_GROUP_BYTES:
            self._write_pending()

    def _write_pending(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending))
        self._pending, self._pending_bytes = [], 0

    def finish(self) -> None:
        self._write_pending()
        self._writer.close()  # writes the footer; the file object stays ours to sync and close
        _finish(self._file)

    def abort(self) -> None:
        self._pending = []
        try:
            self._writer.close()
        finally:
            _abort(self._file, self.path)


def _finish(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()


def _abort(file: BinaryIO, path: Path) -> None:
    file.close()
    path.unlink(missing_ok=True)


def fsync_directory(path: Path) -> None:
    """Make a rename (or a new entry) in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
