"""Example records for a connector's fields, and the ``curl`` commands that send them.

What the connector page shows under its ingest URL: one command per body the URL reads (a JSON
array, NDJSON lines, CSV with a header row), each sending records made from the connector's own
fields, so the first paste of a command is accepted. Pure: no I/O, unit tested
(``tests/unit/test_ingest_examples.py`` also runs every example through the gateway's codec).

Values per type follow the README's examples: decimals as strings with exactly ``scale`` places
(never rounded, so never a float), datetimes RFC 3339 with an offset, times without one. A
nullable field still gets a value: the example shows what the field holds, and null is always
allowed there. In CSV, array and object cells are JSON text, as the ingest URL reads them.

For a connector that verifies signatures, one more command signs the JSON body as its scheme's
senders do (``openssl`` in POSIX shell, the secret from ``$WEBHOOK_SECRET``, which the page never
shows: only the person who gave it has it); the unsigned ones are then refused (401), and the page
says so. For a connector with a ``dedup`` header, every command sends that header with a value
unique per run (``delivery-<seconds>-$RANDOM``), so a pasted command is written, and the same
command pasted with the same value would be answered ``"duplicate": true``.
"""

from __future__ import annotations

import csv
import io
import shlex
from typing import Any, NamedTuple

import msgspec

from inlet.model.dedup import Dedup
from inlet.model.fields import FieldSpec
from inlet.model.verify import Verify

# Records per example: two show that records differ (a key field's values, for one).
EXAMPLE_RECORDS = 2
# The shell variable the signed example reads the signing secret from.
SECRET_VARIABLE = "WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
# A delivery id unique per run of a command (bash, zsh and dash's $RANDOM is empty but the
# seconds still differ).
UNIQUE_VALUE = "delivery-$(date +%s)-$RANDOM"
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


def curl_examples(
    fields: list[FieldSpec],
    url: str,
    *,
    verify: Verify | None = None,
    dedup: Dedup | None = None,
) -> list[CurlExample]:
    """The three commands, for ``url``: the ingest URL itself, or a shell word such as
    ``"$INGEST_URL"`` (passed through unquoted when it starts with ``"$``); a signed one first
    when the connector verifies signatures."""
    records = example_records(fields)
    key_header = dedup.header if dedup is not None else None
    bodies = [
        ("JSON", "application/json", json_body(records)),
        ("NDJSON", "application/x-ndjson", ndjson_body(records)),
        ("CSV", "text/csv", csv_body(fields, records)),
    ]
    examples = [
        CurlExample(label, content_type, curl_command(url, content_type, body, key_header))
        for label, content_type, body in bodies
    ]
    if verify is not None:
        command = signed_command(verify, url, json_body(records), key_header)
        examples.insert(0, CurlExample("Signed", "application/json", command))
    return examples


def curl_command(url: str, content_type: str, body: str, key_header: str | None = None) -> str:
    """A copy-pasteable POSIX shell command; ``--data-binary`` keeps NDJSON's and CSV's newlines."""
    headers = [shlex.quote("Content-Type: " + content_type)]
    if key_header is not None:
        headers.append(_unique(key_header))
    return _curl(url, headers, shlex.quote(body))


def signed_command(verify: Verify, url: str, body: str, key_header: str | None = None) -> str:
    """Shell lines that sign ``body`` as ``verify``'s scheme does, then send it with curl."""
    secret = f'"${SECRET_VARIABLE}"'
    hmac_of = f"openssl dgst -{verify.algorithm} -hmac {secret}"
    hex_digest = f"{hmac_of} | sed 's/^.*= //'"  # "HMAC-SHA2-256(stdin)= <hex>" (OpenSSL 1 and 3)
    b64_digest = f"{hmac_of} -binary | base64 | tr -d '\\n'"
    lines = [f"BODY={shlex.quote(body)}"]
    headers = [shlex.quote("Content-Type: application/json")]
    if verify.scheme == "standard-webhooks":
        # The id is the delivery's: unique per run, and the dedup preset's key.
        lines += [
            'ID="msg_$(date +%s)$RANDOM"',
            "TS=$(date +%s)",
            f"KEY=$(printf '%s' \"${{{SECRET_VARIABLE}#whsec_}}\" | base64 -d"
            " | od -An -vtx1 | tr -d ' \\n')",
            "SIG=$(printf '%s' \"$ID.$TS.$BODY\" | openssl dgst -sha256 -mac HMAC "
            "-macopt \"hexkey:$KEY\" -binary | base64 | tr -d '\\n')",
        ]
        headers += ['"webhook-id: $ID"', '"webhook-timestamp: $TS"', '"webhook-signature: v1,$SIG"']
        if key_header == "webhook-id":
            key_header = None
    elif verify.scheme == "stripe":
        lines += ["TS=$(date +%s)", f"SIG=$(printf '%s' \"$TS.$BODY\" | {hex_digest})"]
        headers.append('"Stripe-Signature: t=$TS,v1=$SIG"')
    elif verify.scheme == "github":
        lines.append(f"SIG=$(printf '%s' \"$BODY\" | {hex_digest})")
        headers.append('"X-Hub-Signature-256: sha256=$SIG"')
    elif verify.scheme == "shopify":
        lines.append(f"SIG=$(printf '%s' \"$BODY\" | {b64_digest})")
        headers.append('"X-Shopify-Hmac-Sha256: $SIG"')
    elif verify.scheme == "slack":
        lines += ["TS=$(date +%s)", f"SIG=$(printf '%s' \"v0:$TS:$BODY\" | {hex_digest})"]
        headers += ['"X-Slack-Request-Timestamp: $TS"', '"X-Slack-Signature: v0=$SIG"']
    else:  # hmac: the connector's own recipe
        digest = b64_digest if verify.encoding == "base64" else hex_digest
        signed = '"$BODY"'
        if verify.signed == "timestamp.body" and verify.timestamp_header:
            lines.append("TS=$(date +%s)")
            signed = '"$TS.$BODY"'
            headers.append(shlex.quote(verify.timestamp_header + ": ") + '"$TS"')
        lines.append(f"SIG=$(printf '%s' {signed} | {digest})")
        headers.append(shlex.quote(f"{verify.header}: {verify.prefix}") + '"$SIG"')
    if key_header is not None:
        headers.append(_unique(key_header))
    return "\n".join([*lines, _curl(url, headers, '"$BODY"')])


def _curl(url: str, headers: list[str], data: str) -> str:
    target = url if url.startswith('"$') else shlex.quote(url)
    parts = [
        f"curl -sS -X POST {target}",
        *(f"  -H {h}" for h in headers),
        f"  --data-binary {data}",
    ]
    return " \\\n".join(parts)


def _unique(header: str) -> str:
    """``-H`` for ``header`` with a value unique per run (header names need no quoting)."""
    return f'"{header}: {UNIQUE_VALUE}"'


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
