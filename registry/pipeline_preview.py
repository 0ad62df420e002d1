"""A pipeline before it exists: what its sink would make of the connector's samples.

``POST /v1/pipelines/preview`` takes the body ``POST /v1/pipelines`` takes and checks it the same
way (``PipelineService.checked``), then reads the connector's sample records (the first 50 valid
ones the sample worker kept: their partitions and offsets) from its topic, decodes them as a feed
does, and maps them with the sinks' own code (``inlet/sink_layout``): PostgreSQL's table (its
columns, types and NOT NULL, as the sink creates it when it does not exist yet; an existing table
is kept and only gains the columns it lacks) and the rows COPY would write; or the files sink's
layout (the directory, the name of a file, the Parquet schema) and the rows or NDJSON lines it
would write. For a connector with ``dedup`` (and the sink's ``dedup`` on) the table shows the key
column ``_inlet_dedup_key`` and each row its key, as the sink writes them. Nothing is created, and
the DSN is never used: the registry does not connect to the database (the worker does, with the
DSN as stored).

A sample whose record is no longer on the topic (retention) is left out; ``rows`` says how many
there are.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from inlet.model.connectors import ConnectorState
from inlet.model.pipelines import FilesSink, PostgresSink
from inlet.sink_layout.columns import Column, record_columns
from inlet.sink_layout.file_names import date_directory, file_name, received_day
from inlet.sink_layout.file_rows import arrow_schema, file_row, ndjson_lines, runs
from inlet.sink_layout.postgres import (
    column_name,
    copy_columns,
    metadata_columns,
    pg_type,
    row_values,
    table_changes,
    table_columns,
)
from registry.pipeline_service import NewPipeline, PipelineService
from registry.records_api import RecordReader, TypedRecord
from registry.sample_service import SampleService


class PreviewColumn(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: str  # PostgreSQL: as the sink declares it; Parquet: the Arrow type
    nullable: bool


class TablePreview(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # as stored: ``name`` or ``schema.name``
    columns: list[PreviewColumn]


class FilesPreview(msgspec.Struct, frozen=True, kw_only=True):
    directory: str
    format: Literal["parquet", "ndjson"]
    # Where the first samples would land (relative to ``directory``), if they made one file.
    example_name: str | None
    columns: list[PreviewColumn] | None = None  # Parquet: the file's schema (NDJSON has none)


class PipelinePreview(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    sink: Literal["postgres", "files"]
    samples: int  # how many sample records the connector has
    table: TablePreview | None = None
    files: FilesPreview | None = None
    # PostgreSQL and Parquet: one object per row, by column; values as JSON (decimals as strings).
    rows: list[dict[str, Any]] | None = None
    lines: list[str] | None = None  # NDJSON: the lines, as written


class PipelinePreviewer:
    def __init__(
        self,
        pipelines: PipelineService,
        samples: SampleService,
        connectors: ConnectorState,
        reader: RecordReader,
    ) -> None:
        self._pipelines = pipelines
        self._samples = samples
        self._connectors = connectors
        self._reader = reader

    async def preview(self, new: NewPipeline) -> PipelinePreview:
        sink = self._pipelines.checked(new)
        connector = self._connectors.require(new.connector_id)
        page = await self._samples.samples(connector.id)
        at = [(s.partition, s.offset) for s in page.records]
        records = await self._reader.typed(connector.topic, at)
        # The sink makes its table from the connector's schema when its feed starts.
        current = record_columns(await self._reader.schema(connector.schema_id))
        schemas = {
            schema_id: record_columns(await self._reader.schema(schema_id))
            for schema_id in {r.schema_id for r in records}
        }
        if isinstance(sink, PostgresSink):
            keyed = sink.dedup and connector.dedup is not None
            return postgres_preview(sink, current, schemas, records, page.count, keyed=keyed)
        return files_preview(sink, schemas, records, page.count)


def postgres_preview(
    sink: PostgresSink,
    current: list[Column],
    schemas: dict[int, list[Column]],
    records: list[TypedRecord],
    samples: int,
    *,
    keyed: bool = False,
) -> PipelinePreview:
    """The table the PostgreSQL sink makes from the connector's ``current`` schema, changed as it
    changes it for the schemas ``records`` were written with (``schemas``), and their rows
    (``keyed``: with the connector's idempotency keys, as the sink enforces them)."""
    made = table_columns(current, keyed=keyed)
    table = {c.name: (c.type, c.not_null) for c in made}
    fields: dict[str, Column] = {}
    # As the sink adopts its start schema, then each new schema id of a batch, in id order.
    for columns in [current, *(schemas[i] for i in sorted(schemas))]:
        missing, relaxed = table_changes(table, columns)
        table |= {column_name(c.name): (pg_type(c), False) for c in missing}
        table |= {name: (table[name][0], False) for name in relaxed}
        fields |= {column_name(c.name): c for c in columns}
    copy = copy_columns(fields, {name: kind for name, (kind, _) in table.items()})
    names = [*metadata_columns(keyed=keyed), *(c.name for c in copy)]
    rows = [
        dict(zip(names, msgspec.to_builtins(row_values(r, copy, _as_is, keyed=keyed)), strict=True))
        for r in records
    ]
    shown = [PreviewColumn(name=n, type=t, nullable=not nn) for n, (t, nn) in table.items()]
    assert sink.table is not None  # stored sinks always name their table
    return PipelinePreview(
        sink="postgres",
        samples=samples,
        table=TablePreview(name=sink.table, columns=shown),
        rows=rows,
    )


def files_preview(
    sink: FilesSink,
    schemas: dict[int, list[Column]],
    records: list[TypedRecord],
    samples: int,
) -> PipelinePreview:
    parquet = sink.format == "parquet"
    example = None
    grouped = runs(records, by_schema=parquet)
    if grouped:
        first = grouped[0]
        day = received_day(first[0].received_at_ms or 0)
        name = file_name(first[0].partition, first[0].offset, first[-1].offset, sink.format)
        example = f"{date_directory(day)}/{name}"
    rows = [file_row(r, schemas[r.schema_id], arrow=parquet) for r in records]
    columns = None
    if parquet:
        # A Parquet file holds one schema: the one of the first file's records.
        schema_id = grouped[0][0].schema_id if grouped else None
        if schema_id is not None:
            columns = [
                PreviewColumn(name=f.name, type=str(f.type), nullable=f.nullable)
                for f in arrow_schema(schemas[schema_id])
            ]
    files = FilesPreview(
        directory=sink.directory, format=sink.format, example_name=example, columns=columns
    )
    if parquet:
        return PipelinePreview(
            sink="files", samples=samples, files=files, rows=msgspec.to_builtins(rows)
        )
    lines = ndjson_lines(rows).decode().splitlines()
    return PipelinePreview(sink="files", samples=samples, files=files, lines=lines)


def _as_is(value: Any) -> Any:
    return value
