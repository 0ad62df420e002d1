"""Example records for a connector's fields, and the ``curl`` commands that send them.

What the connector page shows under its ingest URL: one command per body the URL reads (a JSON
array, NDJSON lines, CSV with a header row), each sending records made from the connector's own
fields, so the first paste of a command is accepted. Pure: no I/O, unit tested
(``tests/unit/test_ingest_examples.py`` also runs every example through the gateway's codec).

Values per type follow the README's examples: decimals as strings with exactly ``scale`` places
(never rounded, so never a float), datetimes RFC 3339 with an offset, times without one. A
nullable field still gets a value: the example shows what the field holds, and null is always
allowed there. In CSV, array and object cells are JSON text, as the ingest URL reads them.
"""

from __future__ import annotations

import csv
import io
import shlex
from typing import Any, NamedTuple

import msgspec

from inlet.model.fields import FieldSpec

# Records per example: two show that records differ (a key field's values, for one).
EXAMPLE_RECORDS = 2
_encoder = msgspec.json.Encoder()


class CurlExample(NamedTuple):
    label: str  # "JSON", "NDJSON", "CSV"
    content_type: str
    command: str


def example_record(fields: list[FieldSpec], n: int = 1) -> dict[str, Any]:
    """Record number ``n`` (from 1) with a valid value for every field, under its own name."""
    return {spec.name: _value(spec, n) for spec in fields}


def example_records(fields: list[FieldSpec], count: int = EXAMPLE_RECORDS) -> list[dict[str, Any]]:
    return [example_record(fields, n) for n in range(1, count + 1)]


def json_body(records: list[dict[str, Any]]) -> str:
    return _encoder.encode(records).decode()


def ndjson_body(records: list[dict[str, Any]]) -> str:
    return "".join(_encoder.encode(record).decode() + "\n" for record in records)


def csv_body(fields: list[FieldSpec], records: list[dict[str, Any]]) -> str:
    """A header row of the fields' names, then a row per record; arrays and objects as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([spec.name for spec in fields])
    for record in records:
        writer.writerow([_cell(record[spec.name]) for spec in fields])
    return out.getvalue()


def curl_examples(fields: list[FieldSpec], url: str) -> list[CurlExample]:
    """The three commands, for ``url``: the ingest URL itself, or a shell word such as
    ``"$INGEST_URL"`` (passed through unquoted when it starts with ``"$``)."""
    records = example_records(fields)
    bodies = [
        ("JSON", "application/json", json_body(records)),
        ("NDJSON", "application/x-ndjson", ndjson_body(records)),
        ("CSV", "text/csv", csv_body(fields, records)),
    ]
    return [
        CurlExample(label, content_type, curl_command(url, content_type, body))
        for label, content_type, body in bodies
    ]


def curl_command(url: str, content_type: str, body: str) -> str:
    """A copy-pasteable POSIX shell command; ``--data-binary`` keeps NDJSON's and CSV's newlines."""
    target = url if url.startswith('"$') else shlex.quote(url)
    return (
        f"curl -sS -X POST {target} \\\n"
        f"  -H {shlex.quote('Content-Type: ' + content_type)} \\\n"
        f"  --data-binary {shlex.quote(body)}"
    )


def _value(spec: FieldSpec, n: int) -> Any:
    if spec.type == "array":
        item = FieldSpec(name=spec.name, type=spec.items or "string")
        return [_value(item, n), _value(item, n + 1)]
    if spec.type == "object":
        return example_record(spec.fields or [], n)
    if spec.type == "enum":
        symbols = spec.symbols or [""]
        return symbols[(n - 1) % len(symbols)]
    if spec.type == "decimal":
        return _decimal(spec.precision or 1, spec.scale or 0, n)
    return _SCALARS[spec.type](spec.name, n)


_SCALARS: dict[str, Any] = {
    "string": lambda name, n: f"{name}-{n}",
    "integer": lambda _name, n: n,
    "float": lambda _name, n: n + 0.5,
    "boolean": lambda _name, n: n % 2 == 1,
    "date": lambda _name, n: f"2026-01-{(n - 1) % 28 + 1:02d}",
    "datetime": lambda _name, n: f"2026-01-{(n - 1) % 28 + 1:02d}T10:00:00Z",
    "time": lambda _name, n: f"10:{(n - 1) % 60:02d}:00",
    "uuid": lambda _name, n: f"00000000-0000-4000-8000-{n % 10**12:012d}",
}


def _decimal(precision: int, scale: int, n: int) -> str:
    """A value with ``scale`` places that fits ``precision`` digits: ``1.50``, ``0.5``, ``2``."""
    whole = str(n % 10) if precision > scale else "0"
    if scale == 0:
        return whole
    return f"{whole}.5{'0' * (scale - 1)}"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return _encoder.encode(value).decode()
    return str(value)
