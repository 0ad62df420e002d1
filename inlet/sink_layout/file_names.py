"""How the files sink names what it writes, and how it reads its progress back from the names.

``<directory>/dt=YYYY-MM-DD/p<partition>-<first offset>-<last offset>.<parquet|ndjson>``: the date
is the records' received-at day (UTC); offsets are zero-padded to 12 digits so names sort in offset
order (larger offsets just take more digits). A file appears only complete (it is renamed into
place), so the names present say exactly which offsets are delivered: a partition resumes at the
largest last offset + 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import NamedTuple

_NAME = re.compile(r"p(\d+)-(\d+)-(\d+)\.(parquet|ndjson)")


class FileRange(NamedTuple):
    partition: int
    first: int
    last: int


def file_name(partition: int, first: int, last: int, extension: str) -> str:
    return f"p{partition}-{first:012d}-{last:012d}.{extension}"


def parse_file_name(name: str, extension: str) -> FileRange | None:
    """The range a file holds; None for any other name (temporary files, other formats)."""
    match = _NAME.fullmatch(name)
    if match is None or match.group(4) != extension:
        return None
    return FileRange(int(match.group(1)), int(match.group(2)), int(match.group(3)))


def partition_glob(partition: int, extension: str) -> str:
    """A glob, relative to the sink's directory, of the files of one partition."""
    return f"dt=*/p{partition}-*-*.{extension}"


def date_directory(day: date) -> str:
    return f"dt={day.isoformat()}"


def received_day(received_at_ms: int) -> date:
    return datetime.fromtimestamp(received_at_ms / 1000, UTC).date()


def next_offsets(ranges: Iterable[FileRange]) -> dict[int, int]:
    """Per partition, where a feed resumes: the largest last offset + 1."""
    result: dict[int, int] = {}
    for found in ranges:
        result[found.partition] = max(result.get(found.partition, 0), found.last + 1)
    return result
