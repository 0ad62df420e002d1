"""Raw records into validated, Avro-encoded Kafka values: compiled once per schema version.

``RecordCodec`` is built once per (connector, schema version): the msgspec Struct types of the
fields, their decoders, the Avro writer and the key function. ``encode`` then takes one body's raw
records (from ``inlet.codec.bodies``) and returns, in record order, the (index, key, value) triples
to produce, each value in the Confluent wire format (``0x00``, the 4-byte schema id, the Avro body),
and the rejected records with every error of each.

Paths, fastest first (bench/codec_bench.py measures them):

1. Every record decodes into the strict Struct (no unknown key): one tight decode loop over the
   batch, then one write loop. Decoding all first, then writing all, measured faster than
   alternating, and a failed record only costs its own exception.
2. Unknown keys are ignored and the records share them (a webhook sends more than the connector
   declares): the batch decodes into a *probe* Struct that also has those keys, as skipped
   ``Raw`` values, and which keys were present is read off the decoded records.
3. Anything else, record by record: the strict decode, else the lenient one (valid, with unknown
   keys found by a key scan), else the field-by-field check that finds all of a record's errors
   (``inlet.codec._record_errors``).

The batch goes through these paths a step at a time (``steps.py``: ``encode_steps``), so that an
event loop serves other requests meanwhile. A refused record's errors are looked for after the
pass; when none of the rejected records will be written (every record invalid, or the caller's
batch is all or nothing), only as many as the answer lists, and the others are only counted.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import msgspec

from inlet.codec._avro_writer import NATIVE, record_encoder
from inlet.codec._record_errors import (
    CSV_READER,
    JSON_READER,
    Reader,
    record_errors,
    top_level_unknown_keys,
    unknown_fields,
)
from inlet.codec._record_types import LevelPlan, plan_level, probe_struct
from inlet.codec.bodies import CsvRecords, JsonRecords, RecordBatch
from inlet.codec.errors import TooDeeplyNested
from inlet.codec.steps import STEP_BYTES, STEP_RECORDS, Pacer, Steps, run
from inlet.model.avro import avro_schema
from inlet.model.connectors import Connector
from inlet.model.fields import FieldSpec, avro_name, unmatchable_character
from inlet.records import RecordError, RecordErrorCode

EncodedRecord = tuple[int, bytes | None, bytes]  # (index in the body, key, Confluent-framed value)
Decode = Callable[[Any], Any]

_MAGIC_BYTE: Final = b"\x00"
# What a refused decode or write raises: msgspec's errors and UnicodeDecodeError are ValueErrors;
# decimal's signals are ArithmeticErrors. Anything else is a bug and is left to surface.
_FAILURES: Final = (ValueError, ArithmeticError)
# Array and object values of a CSV row are JSON in the cell; floats kept exact for decimals.
_CELL_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)
_json_encode = msgspec.json.encode
# Probe Structs are cached per set of unknown keys; a few shapes per connector are expected.
_MAX_PROBES: Final = 16
_MAX_PROBE_KEYS: Final = 1024


# gc=False as ``RecordError``: its one container is its own list of errors, which holds none of
# its kind, so no cycle passes through one.
class RejectedRecord(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """An invalid record as it was sent (a CSV row as a JSON object of its cells), with its
    errors: what a rejected-records topic needs."""

    index: int
    raw: bytes
    # A tuple, not a list: of gc=False Structs only, the collector sets it aside once it has seen
    # it, where 50,000 lists (a large half-invalid request) would be walked by every full pass.
    errors: tuple[RecordError, ...]
    line: int | None = None


class EncodeResult(msgspec.Struct, frozen=True):
    """One batch's outcome. ``unknown_fields``: the sorted dotted paths of keys the schema does not
    know, across the batch (ignored, or errors when the codec rejects them); for CSV, every
    column of the header the schema does not know. ``unexamined``: invalid records counted but
    not in ``rejected``, their errors not looked for (see ``RecordCodec.encode_steps``)."""

    records: list[EncodedRecord]
    rejected: list[RejectedRecord]
    unknown_fields: list[str]
    unexamined: int = 0

    @property
    def rejected_count(self) -> int:
        """How many records are invalid, examined or not."""
        return len(self.rejected) + self.unexamined

    @property
    def errors(self) -> list[RecordError]:
        """Every error of every rejected record, in record order."""
        return [error for rejected in self.rejected for error in rejected.errors]


@dataclass
class _Format:
    """How the records of one body format decode into a Struct type."""

    reader: Reader
    decoder_for: Callable[[type[msgspec.Struct]], Decode]
    unknown_value_type: Any  # of a probe's extra fields
    strict: Decode
    lenient: Decode
    probes: dict[frozenset[str], tuple[Decode, list[tuple[str, str]]]] = field(default_factory=dict)


@dataclass
class _Batch:
    """One encode call's records and what it found so far."""

    records: list[Any]
    lines: list[int] | None
    originals: list[Any]  # what a rejected record's `raw` is made of
    form: _Format
    unknown: set[str]
    encoded: list[EncodedRecord] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # indexes of invalid records, in order
    rejected: list[RejectedRecord] = field(default_factory=list)


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
        native: bool = NATIVE,
    ) -> None:
        if not 0 <= schema_id < 2**31:
            raise ValueError(f"schema id {schema_id} is not a registry id (0 to 2**31 - 1)")
        _check_schema(fields, avro_schema)
        self.avro_schema = avro_schema
        self.schema_id = schema_id
        self.schema_version = schema_version
        self.key_field = key_field
        self.reject_unknown_fields = reject_unknown_fields
        self._level: LevelPlan = plan_level(fields, avro_name(str(avro_schema["name"])))
        self._encode = record_encoder(
            avro_schema, _MAGIC_BYTE + schema_id.to_bytes(4, "big"), native=native
        )
        self._key_of = None if key_field is None else _key_function(self._level, key_field)
        self._cell_fields = frozenset(
            spec.name for spec in fields if spec.type in {"array", "object"}
        )
        self._json = self._format(JSON_READER, _json_decoder, msgspec.Raw)
        self._csv = self._format(CSV_READER, _csv_decoder, object)

    @classmethod
    def of_connector(cls, connector: Connector) -> RecordCodec:
        """The codec of a connector's current schema version and settings."""
        return cls(
            connector.fields,
            avro_schema(connector.record_name, connector.fields),
            schema_id=connector.schema_id,
            schema_version=connector.schema_version,
            key_field=connector.key_field,
            reject_unknown_fields=connector.reject_unknown_fields,
        )

    def encode(self, batch: RecordBatch, **options: Any) -> EncodeResult:
        """Validate and encode every record of ``batch``; never raises for a bad record.

        A CSV cell nested deeper than JSON may be raises ``TooDeeplyNested``, as such a JSON body
        does. ``options``: those of ``encode_steps``.
        """
        return run(self.encode_steps(batch, **options))

    def encode_steps(
        self,
        batch: RecordBatch,
        *,
        all_or_nothing: bool = False,
        errors_listed: int | None = None,
        max_bytes: int | None = None,
    ) -> Steps[EncodeResult]:
        """``encode`` in steps (``steps.py``).

        ``max_bytes``: the most a record's key and value may hold together (what the Kafka record
        limit leaves them, ``inlet/record_size.py``); a valid record beyond it is rejected with
        ``record_too_large``, like any other invalid record.

        Every invalid record is examined (all its errors found, for the rejected topic) unless
        none will be written: when ``errors_listed`` is given and the batch is ``all_or_nothing``
        or has no valid record, invalid records are examined only until that many errors are
        found; the rest are counted in ``unexamined``.
        """
        if isinstance(batch, JsonRecords):
            records = batch.records
            work = _Batch(records, batch.lines, records, self._json, set())
        else:
            work = self._csv_batch(batch)
        total = len(work.records)
        step = _step_records(total, batch.body_bytes)
        for start in range(0, total, step):
            encoded = len(work.encoded)
            self._encode_slice(work, start, min(start + step, total))
            if max_bytes is not None:  # slice by slice: 100,000 records sized at once take 10 ms
                _reject_oversized(work, max_bytes, encoded)
            if start + step < total:
                yield
        examine_all = errors_listed is None or not (all_or_nothing or not work.encoded)
        found = 0
        # By time too: a record examined for all its errors costs 10 µs, or 100 if it has many.
        pacer = Pacer(len(work.failed), STEP_RECORDS)
        for number, index in enumerate(work.failed):
            if not examine_all and found >= (errors_listed or 0):
                unexamined = len(work.failed) - number
                return _result(work, unexamined)
            found += self._reject(work, index)
            if pacer.due():
                yield
        return _result(work)

    def _encode_slice(self, work: _Batch, start: int, stop: int) -> None:
        if work.form is self._csv and self._cell_fields:
            work.records[start:stop] = [
                self._decode_cells(work, index) for index in range(start, stop)
            ]
        whole = start == 0 and stop == len(work.records)  # one step: no copy
        records = work.records if whole else work.records[start:stop]
        decoded = _decode_all(work.form.strict, records)
        if decoded is None and not self.reject_unknown_fields:
            decoded = self._decode_with_probe(work, records)
        if decoded is None:
            self._encode_one_by_one(work, start, stop)
        else:
            self._encode_decoded(work, decoded, start)

    def _format(
        self, reader: Reader, decoder_for: Callable[[type[msgspec.Struct]], Decode], extra: Any
    ) -> _Format:
        strict, lenient = decoder_for(self._level.strict), decoder_for(self._level.lenient)
        return _Format(reader, decoder_for, extra, strict, lenient)

    def _csv_batch(self, batch: CsvRecords) -> _Batch:
        # Rows with array or object cells are decoded a slice at a time (_encode_slice), in a copy.
        rows: list[Any] = list(batch.rows) if self._cell_fields else batch.rows
        # The header names every key of every row: its unknown columns are the batch's.
        unknown = {name for name in batch.header if name not in self._level.names}
        return _Batch(rows, batch.lines, batch.rows, self._csv, unknown)

    def _decode_with_probe(self, work: _Batch, records: list[Any]) -> list[Any] | None:
        # The unknown keys of the first record the strict decode refuses (for CSV, the header's).
        candidates = work.unknown or self._first_unknown_keys(work, records)
        if not candidates or len(candidates) > _MAX_PROBE_KEYS:
            return None
        if any(unmatchable_character(key) is not None for key in candidates):
            return None  # no Struct field can be named so: record by record, with a key scan
        decode, extra = self._probe(work.form, frozenset(candidates))
        decoded = _decode_all(decode, records)
        if decoded is not None:
            unset = msgspec.UNSET
            for key, attr in extra:
                if any(getattr(record, attr) is not unset for record in decoded):
                    work.unknown.add(key)  # usually found in the first record
        return decoded

    def _first_unknown_keys(self, work: _Batch, records: list[Any]) -> set[str]:
        for record in records:
            try:
                work.form.strict(record)
            except _FAILURES:
                return top_level_unknown_keys(self._level, record, work.form.reader)
        return set()

    def _probe(self, form: _Format, keys: frozenset[str]) -> tuple[Decode, list[tuple[str, str]]]:
        found = form.probes.get(keys)
        if found is None:
            if len(form.probes) >= _MAX_PROBES:
                form.probes.clear()  # shapes changed: start over rather than grow
            probe, extra = probe_struct(self._level, sorted(keys), form.unknown_value_type)
            found = form.probes[keys] = (form.decoder_for(probe), extra)
        return found

    def _encode_decoded(self, work: _Batch, decoded: list[Any], start: int) -> None:
        # The hot loop: locals only.
        encode, key_of = self._encode, self._key_of
        encoded = work.encoded
        for index, record in enumerate(decoded, start):
            try:
                value = encode(record)
            except _FAILURES:  # a decimal that does not fit: the one check left to the writer
                work.failed.append(index)
                continue
            encoded.append((index, None if key_of is None else key_of(record), value))

    def _encode_one_by_one(self, work: _Batch, start: int, stop: int) -> None:
        encode, key_of = self._encode, self._key_of
        strict = work.form.strict
        records = work.records
        for index in range(start, stop):
            try:
                record = strict(records[index])
                value = encode(record)
            except _FAILURES:
                if self.reject_unknown_fields or not self._recover(work, index):
                    work.failed.append(index)
                continue
            work.encoded.append((index, None if key_of is None else key_of(record), value))

    def _recover(self, work: _Batch, index: int) -> bool:
        """Encode the record if only unknown keys made the strict decode refuse it."""
        raw = work.records[index]
        try:
            record = work.form.lenient(raw)
            value = self._encode(record)
        except _FAILURES:
            return False
        work.unknown.update(unknown_fields(self._level, raw, work.form.reader))
        key = None if self._key_of is None else self._key_of(record)
        work.encoded.append((index, key, value))
        return True

    def _reject(self, work: _Batch, index: int) -> int:
        """Examine an invalid record: add it, with all its errors, to ``rejected``; the count."""
        line = None if work.lines is None else work.lines[index]
        errors, unknown = record_errors(
            self._level,
            work.records[index],
            work.form.reader,
            index=index,
            line=line,
            reject_unknown=self.reject_unknown_fields,
        )
        work.unknown.update(unknown)
        if not errors:  # the field-by-field check and the decode disagree: never hide the record
            code, message = RecordErrorCode.INVALID_VALUE, "could not be encoded"
            errors = [RecordError(index, f"/{index}", None, code, message, line)]
        work.rejected.append(
            RejectedRecord(index, _raw(work.originals[index]), tuple(errors), line)
        )
        return len(errors)

    def _decode_cells(self, work: _Batch, index: int) -> dict[str, Any]:
        row: dict[str, Any] = work.records[index]
        if self._cell_fields.isdisjoint(row):
            return row
        decoded: dict[str, Any] = dict(row)
        for name in self._cell_fields.intersection(row):
            try:
                decoded[name] = _CELL_DECODER.decode(row[name])
            except msgspec.DecodeError:
                pass  # text: a value of the wrong type, reported as such
            except RecursionError as exc:  # the limit a JSON body has (bodies.py)
                line = None if work.lines is None else work.lines[index]
                raise TooDeeplyNested(line=line, index=index, field=name) from exc
        return decoded


def _step_records(total: int, body_bytes: int) -> int:
    """Records per step: ``STEP_RECORDS``, fewer when they are large on average."""
    if body_bytes <= STEP_BYTES:
        return max(total, 1) if total <= STEP_RECORDS else STEP_RECORDS
    return max(1, min(STEP_RECORDS, total * STEP_BYTES // body_bytes))


def _size(record: EncodedRecord) -> int:
    key = record[1]
    return len(record[2]) if key is None else len(record[2]) + len(key)


def _reject_oversized(work: _Batch, max_bytes: int, start: int) -> None:
    """Reject the records encoded from ``start`` on that are over ``max_bytes``."""
    fresh = work.encoded[start:]
    if not fresh or max(map(_size, fresh)) <= max_bytes:
        return
    kept: list[EncodedRecord] = []
    for record in fresh:
        size = _size(record)
        if size <= max_bytes:
            kept.append(record)
            continue
        index = record[0]
        line = None if work.lines is None else work.lines[index]
        message = f"is {size:,} bytes encoded, over the {max_bytes:,} a Kafka record can hold here"
        code = RecordErrorCode.RECORD_TOO_LARGE
        errors = (RecordError(index, f"/{index}", None, code, message, line),)
        work.rejected.append(RejectedRecord(index, _raw(work.originals[index]), errors, line))
    work.encoded[start:] = kept


def _result(work: _Batch, unexamined: int = 0) -> EncodeResult:
    # Oversized records were rejected before the invalid ones: in record order again.
    work.rejected.sort(key=operator.attrgetter("index"))
    return EncodeResult(work.encoded, work.rejected, sorted(work.unknown), unexamined)


def _raw(original: Any) -> bytes:
    """A record as it was sent (a CSV row as a JSON object of its cells)."""
    return bytes(original) if isinstance(original, msgspec.Raw) else _json_encode(original)


def _decode_all(decode: Decode, records: list[Any]) -> list[Any] | None:
    try:
        return [decode(record) for record in records]
    except _FAILURES:
        return None


def _json_decoder(struct_type: type[msgspec.Struct]) -> Decode:
    return msgspec.json.Decoder(struct_type).decode


def _csv_decoder(struct_type: type[msgspec.Struct]) -> Decode:
    # Lax: CSV cells are text, and "42" must become 42, "true" True.
    return functools.partial(msgspec.convert, type=struct_type, strict=False)


def _check_schema(fields: list[FieldSpec], avro_record: Mapping[str, Any]) -> None:
    # The writer follows the Avro schema and the Structs follow the fields: they must agree.
    avro_fields = avro_record.get("fields")
    if avro_record.get("type") != "record" or not isinstance(avro_fields, list):
        raise ValueError("the Avro schema is not a record")
    if [field["name"] for field in avro_fields] != [avro_name(spec.name) for spec in fields]:
        raise ValueError("the Avro schema's fields are not the connector's fields")
    for spec, avro_field in zip(fields, avro_fields, strict=True):
        if spec.type == "object":
            nested = avro_field["type"]
            _check_schema(spec.fields or [], nested[1] if isinstance(nested, list) else nested)


def _key_function(level: LevelPlan, key_field: str) -> Callable[[Any], bytes]:
    plan = level.by_name.get(key_field)
    if plan is None or plan.spec.type not in _KEY_TEXT or plan.spec.nullable:
        raise ValueError(f"key field {key_field!r} is not a required top-level scalar field")
    get, text = operator.attrgetter(plan.attr), _KEY_TEXT[plan.spec.type]
    if plan.spec.type == "decimal":  # 1.5 and 1.50 are one value: always `scale` places
        places = plan.spec.scale or 0
        return lambda record: f"{get(record):.{places}f}".encode()
    return lambda record: text(get(record))


def _text(value: Any) -> bytes:
    return str(value).encode()


# A key is the value's text as UTF-8.
_KEY_TEXT: Final[dict[str, Callable[[Any], bytes]]] = {
    "string": str.encode,
    "enum": str.encode,
    "integer": _text,
    "float": _text,
    "decimal": _text,  # replaced by a fixed number of places, see _key_function
    "boolean": lambda value: b"true" if value else b"false",
    "date": lambda value: value.isoformat().encode(),
    "time": lambda value: value.isoformat().encode(),
    # one instant, one key, whatever offset it was sent with
    "datetime": lambda value: value.astimezone(dt.UTC).isoformat().encode(),
    "uuid": lambda value: _json_encode(value)[1:-1],  # canonical text, in C (str() is Python)
}
