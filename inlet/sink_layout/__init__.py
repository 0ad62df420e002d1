"""What a pipeline's sink makes of a connector's records: columns, tables, rows, file names.

Pure, and shared by the sinks that write (``consumers/sinks``) and the registry's preview of a
pipeline on a connector's samples (``registry/pipeline_preview.py``), so the preview shows what the
sink then writes, not a second reading of the schema. ``columns.py`` reads a record schema as typed
columns; ``postgres.py`` maps them to a PostgreSQL table and rows; ``file_names.py`` and
``file_rows.py`` say what the files sink names and writes (``parquet.py``: its Parquet types).
"""

from __future__ import annotations

from typing import Any, Protocol


class SinkInput(Protocol):
    """What a sink reads of a decoded record (``consumers.sinks.FeedRecord`` has it)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def received_at_ms(self) -> int | None: ...
    @property
    def schema_id(self) -> int: ...
    @property
    def value(self) -> dict[str, Any]: ...
    @property
    def dedup_key(self) -> str | None: ...  # the ``inlet-dedup-key`` header, if any
