"""Raw records into validated, Avro-encoded Kafka values: compiled once per schema version.

``RecordCodec`` is built once per (connector, schema version): the msgspec Struct types of the
fields, their decoders, the Avro writer and the key function. ``encode`` then takes one body's raw
records (from ``gateway.bodies``) and returns, in record order, the (index, key, value) triples to
produce, each value in the Confluent wire format (``0x00``, the 4-byte schema id, the Avro body),
and the rejected records with every error of each.

Two paths. Fast: one Struct decode that refuses unknown keys, then one write; a batch of valid
records never leaves it. Slow, only for a record the fast path refused: a decode that ignores
unknown keys (valid after all, unless unknown keys are rejected), else a field-by-field check
that finds all of the record's errors (``gateway._record_errors``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec

from gateway._avro_encoder import compile_writer
from gateway._record_errors import (
    CSV_READER,
    JSON_READER,
    Reader,
    record_errors,
    unknown_fields,
)
from gateway._record_types import LevelPlan, plan_level
from gateway.bodies import CsvRecords, JsonRecords, RecordBatch
from gateway.errors import RecordError, RecordErrorCode
from registry.fields import FieldSpec, avro_name

EncodedRecord = tuple[int, bytes | None, bytes]  # (index in the body, key, Confluent-framed value)

_MAGIC_BYTE: Final = b"\x00"
# What a refused decode or write raises: msgspec's errors and UnicodeDecodeError are ValueErrors;
# decimal's signals are ArithmeticErrors. Anything else is a bug and is left to surface.
_FAILURES: Final = (ValueError, ArithmeticError)
# Array and object values of a CSV row are JSON in the cell; floats kept exact for decimals.
_CELL_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)


class RejectedRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """An invalid record as it was sent (a CSV row as a JSON object of its cells), with its
    errors: what a rejected-records topic needs."""

    index: int
    raw: bytes
    errors: list[RecordError]
    line: int | None = None


class EncodeResult(msgspec.Struct, frozen=True):
    """One batch's outcome. ``unknown_fields``: the sorted dotted paths of keys the schema does not
    know, across the batch (ignored, or errors when the codec rejects them)."""

    records: list[EncodedRecord]
    rejected: list[RejectedRecord]
    unknown_fields: list[str]

    @property
    def errors(self) -> list[RecordError]:
        """Every error of every rejected record, in record order."""
        return [error for rejected in self.rejected for error in rejected.errors]


class RecordCodec:
    """Validates and encodes one connector schema version's records; build once, reuse."""

    def __init__(
        self,
        fields: list[FieldSpec],
        avro_schema: Mapping[str, Any],
        *,
        schema_id: int,
        schema_version: int,
        key_field: str | None = None,
        reject_unknown_fields: bool = False,
    ) -> None:
        if not 0 <= schema_id < 2**31:
            raise ValueError(f"schema id {schema_id} is not a registry id (0 to 2**31 - 1)")
        _check_schema(fields, avro_schema)
        self.schema_id = schema_id
        self.schema_version = schema_version
        self.key_field = key_field
        self.reject_unknown_fields = reject_unknown_fields
        self._level: LevelPlan = plan_level(fields, avro_name(str(avro_schema["name"])))
        self._strict_json = msgspec.json.Decoder(self._level.strict)
        self._lenient_json = msgspec.json.Decoder(self._level.lenient)
        self._write = compile_writer(avro_schema)
        self._header = _MAGIC_BYTE + schema_id.to_bytes(4, "big")
        self._key_of = None if key_field is None else _key_function(self._level, key_field)
        self._cell_fields = frozenset(
            spec.name for spec in fields if spec.type in {"array", "object"}
        )

    def encode(self, batch: RecordBatch) -> EncodeResult:
        """Validate and encode every record of ``batch``; never raises for a bad record."""
        if isinstance(batch, JsonRecords):
            return self._encode(
                records=batch.records,
                lines=batch.lines,
                decode=self._strict_json.decode,
                decode_lenient=self._lenient_json.decode,
                reader=JSON_READER,
                unknown=set(),
            )
        return self._encode_csv(batch)

    def _encode_csv(self, batch: CsvRecords) -> EncodeResult:
        rows: list[Any] = batch.rows
        if self._cell_fields:
            rows = [self._decode_cells(row) for row in rows]
        strict, lenient = self._level.strict, self._level.lenient
        # The header lists every key of every row: its unknown columns are the batch's.
        unknown = {name for name in batch.header if name not in self._level.by_name}
        return self._encode(
            records=rows,
            lines=batch.lines,
            decode=lambda row: msgspec.convert(row, strict, strict=False),
            decode_lenient=lambda row: msgspec.convert(row, lenient, strict=False),
            reader=CSV_READER,
            unknown=unknown,
            originals=batch.rows,
        )

    def _encode(
        self,
        *,
        records: list[Any],
        lines: list[int] | None,
        decode: Callable[[Any], Any],
        decode_lenient: Callable[[Any], Any],
        reader: Reader,
        unknown: set[str],
        originals: list[dict[str, str]] | None = None,
    ) -> EncodeResult:
        # The hot loop: locals only, no call that the fast path does not need.
        write, header, key_of = self._write, self._header, self._key_of
        encoded: list[EncodedRecord] = []
        rejected: list[RejectedRecord] = []
        for index, raw in enumerate(records):
            try:
                record = decode(raw)
                out = bytearray(header)
                write(out, record)
            except _FAILURES:
                if not self.reject_unknown_fields:
                    try:
                        record = decode_lenient(raw)
                        out = bytearray(header)
                        write(out, record)
                    except _FAILURES:
                        pass
                    else:  # valid, with keys the schema does not know
                        unknown.update(unknown_fields(self._level, raw, reader))
                        key = None if key_of is None else key_of(record)
                        encoded.append((index, key, bytes(out)))
                        continue
                line = None if lines is None else lines[index]
                original = raw if originals is None else originals[index]
                rejected.append(
                    self._reject(
                        index=index,
                        line=line,
                        record=raw,
                        original=original,
                        reader=reader,
                        unknown=unknown,
                    )
                )
                continue
            encoded.append((index, None if key_of is None else key_of(record), bytes(out)))
        return EncodeResult(encoded, rejected, sorted(unknown))

    def _reject(
        self,
        *,
        index: int,
        line: int | None,
        record: Any,
        original: Any,
        reader: Reader,
        unknown: set[str],
    ) -> RejectedRecord:
        errors, names = record_errors(
            self._level,
            record,
            reader,
            index=index,
            line=line,
            reject_unknown=self.reject_unknown_fields,
        )
        unknown.update(names)
        if not errors:  # the field-by-field check and the decode disagree: never hide the record
            message = "could not be encoded"
            errors = [
                RecordError(index, f"/{index}", None, RecordErrorCode.INVALID_VALUE, message, line)
            ]
        raw = (
            bytes(original) if isinstance(original, msgspec.Raw) else msgspec.json.encode(original)
        )
        return RejectedRecord(index, raw, errors, line)

    def _decode_cells(self, row: dict[str, str]) -> dict[str, Any]:
        if self._cell_fields.isdisjoint(row):
            return row
        decoded: dict[str, Any] = dict(row)
        for name in self._cell_fields.intersection(row):
            with contextlib.suppress(msgspec.DecodeError):  # else text: a value of the wrong type
                decoded[name] = _CELL_DECODER.decode(row[name])
        return decoded


def _check_schema(fields: list[FieldSpec], avro_record: Mapping[str, Any]) -> None:
    # The writer follows the Avro schema and the Structs follow the fields: they must agree.
    avro_fields = avro_record.get("fields")
    if avro_record.get("type") != "record" or not isinstance(avro_fields, list):
        raise ValueError("the Avro schema is not a record")
    if [field["name"] for field in avro_fields] != [avro_name(spec.name) for spec in fields]:
        raise ValueError("the Avro schema's fields are not the connector's fields")
    for spec, field in zip(fields, avro_fields, strict=True):
        if spec.type == "object":
            nested = field["type"]
            _check_schema(spec.fields or [], nested[1] if isinstance(nested, list) else nested)


def _key_function(level: LevelPlan, key_field: str) -> Callable[[Any], bytes]:
    plan = level.by_name.get(key_field)
    if plan is None or plan.spec.type in {"array", "object"}:
        raise ValueError(f"key field {key_field!r} is not a top-level scalar field")
    spec, get = plan.spec, operator.attrgetter(plan.attr)
    if spec.type in {"string", "enum"}:
        return lambda record: get(record).encode()
    if spec.type == "boolean":
        return lambda record: b"true" if get(record) else b"false"
    if spec.type == "datetime":  # one instant, one key, whatever offset it was sent with
        return lambda record: get(record).astimezone(dt.UTC).isoformat().encode()
    if spec.type in {"date", "time"}:
        return lambda record: get(record).isoformat().encode()
    if spec.type == "decimal":  # 1.5 and 1.50 are one value: always `scale` places
        places = spec.scale or 0
        return lambda record: f"{get(record):.{places}f}".encode()
    return lambda record: str(get(record)).encode()  # integer, float, uuid
