"""The connector page's example records and curl commands (``registry/console/ingest_examples.py``):
every example is accepted by the codec the gateway validates with, in each of the three bodies."""

from __future__ import annotations

import base64
import itertools
import os
import shlex
import shutil
import subprocess
import time

import pytest

from gateway.errors import SignatureInvalid
from gateway.signatures import build_verifier
from inlet.codec.bodies import parse_body
from inlet.model.dedup import Dedup
from inlet.model.fields import FieldSpec
from inlet.model.verify import Verify
from registry.console.ingest_examples import (
    EXAMPLE_RECORDS,
    csv_body,
    curl_command,
    curl_examples,
    example_record,
    example_records,
    json_body,
    ndjson_body,
)
from tests.unit.test_avro import ALL_TYPES, f
from tests.unit.test_codec import make_codec

URL = "http://127.0.0.1:8080/v1/ingest/inlet_ingest_abc"


def accepted(fields: list[FieldSpec], body: str, content_type: str) -> int:
    result = make_codec(fields).encode(parse_body(body.encode(), content_type))
    assert result.rejected == [], result.errors
    return len(result.records)


@pytest.mark.parametrize(
    ("content_type", "body_of"),
    [
        ("application/json", lambda _fields, records: json_body(records)),
        ("application/x-ndjson", lambda _fields, records: ndjson_body(records)),
        ("text/csv", csv_body),
    ],
)
def test_every_type_is_accepted_in_every_body(content_type: str, body_of: object) -> None:
    records = example_records(ALL_TYPES, 5)
    assert callable(body_of)
    assert accepted(ALL_TYPES, body_of(ALL_TYPES, records), content_type) == 5


def test_values_are_what_the_readme_shows_per_type() -> None:
    record = example_record(ALL_TYPES)
    assert record["name"] == "name-1"
    assert record["count"] == 1
    assert record["amount"] == "1.50"  # a string: exact, never a float
    assert record["at"] == "2026-01-01T10:00:00Z"
    assert record["time of day"] == "10:00:00"
    assert record["state"] == "NEW"
    assert record["tags"] == ["tags-1", "tags-2"]
    assert record["customer"] == {"e-mail": "e-mail-1", "vip": True}
    assert list(record) == [spec.name for spec in ALL_TYPES]  # the names as the user gave them


def test_records_differ_so_a_key_field_varies() -> None:
    first, second = example_records([f("id"), f("state", "enum", symbols=["A", "B"])])
    assert first != second
    assert (first["state"], second["state"]) == ("A", "B")


@pytest.mark.parametrize(
    ("precision", "scale", "expected"),
    [(10, 2, "1.50"), (1, 0, "1"), (2, 2, "0.50"), (38, 37, "1.5" + "0" * 36), (5, 1, "1.5")],
)
def test_decimals_fit_their_precision_and_scale(precision: int, scale: int, expected: str) -> None:
    spec = f("d", "decimal", precision=precision, scale=scale)
    assert example_record([spec])["d"] == expected
    assert accepted([spec], json_body(example_records([spec], 12)), "application/json") == 12


def test_csv_cells_of_arrays_and_objects_are_json() -> None:
    fields = [f("tags", "array", items="integer"), f("o", "object", fields=[f("a")])]
    assert csv_body(fields, example_records(fields, 1)) == 'tags,o\n"[1,2]","{""a"":""a-1""}"\n'


def test_commands_are_one_shell_command_each_with_the_body_intact() -> None:
    fields = [f("it's"), f("n", "integer")]
    examples = curl_examples(fields, URL)
    assert [e.label for e in examples] == ["JSON", "NDJSON", "CSV"]
    for example in examples:
        words = shlex.split(example.command)  # a quote in a field name stays quoted
        assert words[:5] == ["curl", "-sS", "-X", "POST", URL]
        assert words[words.index("-H") + 1] == f"Content-Type: {example.content_type}"
        body = words[words.index("--data-binary") + 1]
        assert accepted(fields, body, example.content_type) == 2
    ndjson = shlex.split(examples[1].command)[-1]
    assert ndjson.count("\n") == 2  # one record a line, kept by --data-binary


def test_a_placeholder_url_stays_a_shell_variable() -> None:
    command = curl_command('"$INGEST_URL"', "text/csv", "a\n1\n")
    assert command.startswith('curl -sS -X POST "$INGEST_URL" \\\n')


# --- Signed examples: run in a real shell (curl replaced by a function that prints what it would
# send), then checked by the gateway's own verifiers. ---

STANDARD_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
SIGNED_CASES = [
    (Verify(scheme="stripe", secrets=[]), "whsec_stripe-test"),
    (Verify(scheme="standard-webhooks", secrets=[]), STANDARD_SECRET),
    (Verify(scheme="github", secrets=[]), "gh secret"),
    (Verify(scheme="shopify", secrets=[]), "shpss_abc"),
    (Verify(scheme="slack", secrets=[]), "slack-signing"),
    (
        Verify(
            scheme="hmac",
            secrets=[],
            header="X-Sig",
            algorithm="sha512",
            encoding="base64",
            prefix="sha512=",
        ),
        "plain",
    ),
    (
        Verify(
            scheme="hmac",
            secrets=[],
            header="X-Sig",
            algorithm="sha1",
            signed="timestamp.body",
            timestamp_header="X-Timestamp",
        ),
        "plain",
    ),
]


def run_command(command: str, secret: str) -> tuple[dict[str, str], bytes]:
    """The headers and body ``command`` sends, run by bash with a ``curl`` that prints them."""
    fake = 'curl() { for arg in "$@"; do printf \'%s\\0\' "$arg"; done; }\n'
    ran = subprocess.run(
        ["bash", "-c", fake + command],
        env={"PATH": os.environ["PATH"], "WEBHOOK_SECRET": secret, "INGEST_URL": URL},
        capture_output=True,
        check=True,
        timeout=30,
    )
    args = ran.stdout.split(b"\0")[:-1]
    headers = {}
    for flag, value in itertools.pairwise(args):
        if flag == b"-H":
            name, _, text = value.decode().partition(": ")
            headers[name.lower()] = text
    return headers, args[args.index(b"--data-binary") + 1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the examples sign with openssl")
@pytest.mark.parametrize(("verify", "secret"), SIGNED_CASES, ids=lambda v: getattr(v, "scheme", ""))
def test_a_signed_example_is_signed_as_the_gateway_verifies(verify: Verify, secret: str) -> None:
    fields = [FieldSpec(name="id", type="string")]
    signed, *unsigned = curl_examples(fields, '"$INGEST_URL"', verify=verify)
    assert signed.label == "Signed"
    assert [e.label for e in unsigned] == ["JSON", "NDJSON", "CSV"]

    headers, body = run_command(signed.command, secret)

    assert accepted(fields, body.decode(), "application/json") == EXAMPLE_RECORDS
    build_verifier(verify, [secret]).verify(headers, body, time.time())  # raises when refused
    with pytest.raises(SignatureInvalid):
        build_verifier(verify, [secret + "x"]).verify(headers, body, time.time())


def test_a_dedup_header_is_sent_with_a_value_unique_per_run() -> None:
    fields = [FieldSpec(name="id", type="string")]
    examples = curl_examples(fields, URL, dedup=Dedup(header="idempotency-key"))
    for example in examples:
        headers, _ = run_command(example.command, "")
        assert headers["idempotency-key"].startswith("delivery-")
    first, _ = run_command(examples[0].command, "")
    second, _ = run_command(examples[0].command, "")
    assert first["idempotency-key"] != second["idempotency-key"]
    # Standard Webhooks' own id is the dedup key: sent once.
    verify = Verify(scheme="standard-webhooks", secrets=[])
    signed = curl_examples(fields, URL, verify=verify, dedup=Dedup(header="webhook-id"))[0]
    assert signed.command.count("webhook-id:") == 1
