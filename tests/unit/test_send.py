"""``inlet send``: its pure decisions (``deploy/send_plan.py``), and the loop around them
(``deploy/send.py``) against an in-process fake gateway (httpx's MockTransport)."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.send import EXIT_DONE, EXIT_FAILED, EXIT_STOPPED, EXIT_USAGE, Options, send
from deploy.send_plan import (
    BACKOFF_MAX_S,
    MAX_REQUEST_ID,
    Acknowledged,
    Batch,
    Retry,
    SendError,
    Stop,
    backoff_s,
    batches,
    check_prefix,
    decide,
    detect_format,
    first_errors,
    mask_url,
    parse_retry_after,
    read_records,
    request_id,
)
from inlet.codec.bodies import BodyFormat, parse_body

TOKEN = "inlet_ingest_s3cr3t-t0k3n"
URL = f"http://gw.example/v1/ingest/{TOKEN}"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.json", b"{}", BodyFormat.JSON),
        ("a.NDJSON", b"[]", BodyFormat.NDJSON),
        ("a.jsonl.gz", b"", BodyFormat.NDJSON),
        ("a.csv", b"{}", BodyFormat.CSV),
        ("a", b'  [{"a": 1}]', BodyFormat.JSON),
        ("a.txt", b'{"a": 1}\n{"a": 2}\n', BodyFormat.NDJSON),
        ("a", b'{\n  "a": 1\n}\n', BodyFormat.JSON),  # one object over several lines
        ("a", b"id,name\n1,x\n", BodyFormat.CSV),
    ],
)
def test_the_format_from_the_name_else_the_content(
    name: str, data: bytes, expected: BodyFormat
) -> None:
    assert detect_format(Path(name), data) is expected


@pytest.mark.parametrize(
    ("data", "body_format"),
    [
        (json.dumps([{"i": i, "s": f"x{i}"} for i in range(7)]).encode(), BodyFormat.JSON),
        (b"".join(b'{"i": %d}\n' % i for i in range(7)), BodyFormat.NDJSON),
        (
            b'i,s\n0,"a,b"\n1,\n2,"multi\nline"\n3,x\n4,y\n5,z\n6,w\n',
            BodyFormat.CSV,
        ),
    ],
)
def test_batches_hold_every_record_once_in_order(data: bytes, body_format: BodyFormat) -> None:
    records = read_records(data, body_format)
    whole = parse_body(data, content_type(body_format))
    parts = list(batches(records, 3))
    assert [(b.number, b.start, b.count) for b in parts] == [(0, 0, 3), (1, 3, 3), (2, 6, 1)]
    seen: list[Any] = []
    for batch in parts:
        parsed = parse_body(batch.body, content_type(body_format))  # each a body of its own
        assert len(parsed) == batch.count
        seen += rows(parsed)
    assert seen == rows(whole)
    assert [b.number for b in batches(records, 3, first=2)] == [2]


def content_type(body_format: BodyFormat) -> str:
    return {"json": "application/json", "ndjson": "application/x-ndjson"}.get(
        body_format, "text/csv"
    )


def rows(parsed: Any) -> list[Any]:
    if hasattr(parsed, "rows"):
        return list(parsed.rows)
    return [bytes(raw) for raw in parsed.records]


def test_csv_batches_repeat_the_header() -> None:
    records = read_records(b"a,b\n1,2\n3,4\n", BodyFormat.CSV)
    assert [b.body for b in batches(records, 1)] == [b"a,b\n1,2\n", b"a,b\n3,4\n"]


def test_a_file_that_does_not_parse_is_refused_before_sending() -> None:
    with pytest.raises(Exception, match="line 2"):
        read_records(b'{"a": 1}\n{"a": \n', BodyFormat.NDJSON)


def test_request_ids_are_ones_the_gateway_keeps() -> None:
    assert request_id("run-1", 7) == "run-1-000007"
    longest = "p" * (MAX_REQUEST_ID - 7)
    assert len(request_id(check_prefix(longest), 999_999)) == MAX_REQUEST_ID
    for bad in ["", "a b", "é", "p" * (MAX_REQUEST_ID - 6), "a/b"]:
        with pytest.raises(SendError):
            check_prefix(bad)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "http://gw.example/v1/ingest/***"),
        ("https://u:pw@gw.example:8443/v1/ingest?token=x", "https://gw.example:8443/v1/ingest?***"),
        ("http://gw.example/proxy/ingest/t/extra", "http://gw.example/proxy/ingest/***/extra"),
    ],
)
def test_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def problem(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": f"{code} happened", **extra}


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "expected"),
    [
        (
            200,
            {"accepted": 3, "rejected": 1, "errors": [{"index": 2}]},
            None,
            Acknowledged(3, 1, [{"index": 2}]),
        ),
        (422, problem("all_records_invalid", rejected=4, errors=[]), None, Acknowledged(0, 4, [])),
        (422, problem("records_invalid", rejected=2, errors=[]), None, Acknowledged(0, 2, [])),
        (429, problem("rate_limited"), "2", Retry(2.0, "429 rate_limited")),
        (503, problem("kafka_unavailable"), "1", Retry(1.0, "503 kafka_unavailable")),
        (503, problem("overloaded"), None, Retry(0.5, "503 overloaded")),
        (502, None, None, Retry(0.5, "502")),
        (None, None, None, Retry(0.5, "no answer")),
        (
            429,
            problem("rate_limited"),
            format_datetime(NOW + timedelta(seconds=4), usegmt=True),
            Retry(4.0, "429 rate_limited"),
        ),
    ],
)
def test_decisions(status: int | None, body: Any, retry_after: str | None, expected: Any) -> None:
    assert decide(status, body, retry_after, 1, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [
        (400, "body_unparseable", "body_unparseable"),
        (404, "unknown_token", "unknown_token"),
        (413, "too_many_records", "lower --batch-size"),
        (413, "body_too_large", "lower --batch-size"),
        (413, "record_too_large", "record_too_large"),
        (415, "unsupported_media_type", "unsupported"),
        (422, "validation_failed", "validation_failed"),
        (500, "kafka_refused", "kafka_refused"),
    ],
)
def test_other_refusals_are_never_retried(status: int, code: str, says: str) -> None:
    decision = decide(status, problem(code), "1", 1, now=NOW)
    assert isinstance(decision, Stop)
    assert says in decision.reason


def test_a_batch_over_the_burst_says_how_small_to_go() -> None:
    decision = decide(429, problem("batch_exceeds_burst", burst=50), None, 1, now=NOW)
    assert decision == Stop(
        "429 batch_exceeds_burst: batch_exceeds_burst happened — lower --batch-size to at most 50"
    )


def test_retries_are_bounded() -> None:
    assert isinstance(decide(503, None, None, 7, now=NOW, max_attempts=8), Retry)
    assert isinstance(decide(503, None, None, 8, now=NOW, max_attempts=8), Stop)
    assert isinstance(decide(None, None, None, 8, now=NOW, max_attempts=8), Stop)
    assert isinstance(decide(429, problem("rate_limited"), "3600", 1, now=NOW), Stop)
    assert [backoff_s(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_s(60) == BACKOFF_MAX_S


def test_retry_after_forms() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(format_datetime(NOW - timedelta(seconds=9), usegmt=True), NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_errors_are_indexed_in_the_file_and_only_the_first_kept() -> None:
    kept: list[dict[str, Any]] = []
    batch = Batch(number=2, start=20, count=10, body=b"")
    errors = [{"index": i, "pointer": f"/{i}", "line": i + 1, "field": "a"} for i in range(12)]
    first_errors(kept, batch, Acknowledged(0, 12, errors))
    assert [error["index"] for error in kept] == list(range(20, 30))
    assert all("pointer" not in error and "line" not in error for error in kept)


# --- The loop, against a fake gateway ------------------------------------------------------------


class FakeGateway:
    """Answers each request from a script (then 200s), and keeps what it was sent."""

    def __init__(self, script: list[httpx.Response] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[tuple[str, list[Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["content-encoding"] == "gzip"
        lines = gzip.decompress(request.content).splitlines()
        self.requests.append((request.headers["x-request-id"], [json.loads(x) for x in lines]))
        if self.script:
            return self.script.pop(0)
        return httpx.Response(200, json={"accepted": len(lines), "rejected": 0})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def ndjson_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "records.ndjson"
    path.write_bytes(b"".join(b'{"i": %d}\n' % i for i in range(count)))
    return path


def run(options: Options, gateway: FakeGateway, waits: list[float] | None = None) -> str:
    out = io.StringIO()
    sleep = ([] if waits is None else waits).append
    code = send(options, out=out, client=gateway.client(), sleep=sleep)
    return f"{code}\n{out.getvalue()}"


def test_a_429_is_retried_after_its_retry_after_with_the_same_request_id(tmp_path: Path) -> None:
    limited = httpx.Response(429, json=problem("rate_limited"), headers={"Retry-After": "2"})
    gateway = FakeGateway([limited])
    waits: list[float] = []
    options = Options(
        ndjson_file(tmp_path, 5), URL, batch_size=2, progress=False, request_id_prefix="t"
    )
    output = run(options, gateway, waits)
    assert output.startswith(f"{EXIT_DONE}\n")
    assert waits == [2.0]
    assert [rid for rid, _ in gateway.requests] == ["t-000000", "t-000000", "t-000001", "t-000002"]
    assert "accepted 5, rejected 0; retries 1" in output
    assert TOKEN not in output


def test_stopped_early_then_resumed_sends_each_batch_once(tmp_path: Path) -> None:
    path = ndjson_file(tmp_path, 7)
    gateway = FakeGateway()
    first = run(Options(path, URL, batch_size=2, max_batches=2, progress=False), gateway)
    assert first.startswith(f"{EXIT_STOPPED}\n")
    assert "--resume" in first
    state_files = list(tmp_path.glob("records.ndjson.inlet-send-*.json"))
    assert len(state_files) == 1
    assert TOKEN not in state_files[0].read_text()  # the URL is kept as a hash only
    second = run(Options(path, URL, batch_size=2, resume=True, progress=False), gateway)
    assert second.startswith(f"{EXIT_DONE}\n")
    sent = [record["i"] for _, batch in gateway.requests for record in batch]
    assert sent == list(range(7))
    ids = [rid for rid, _ in gateway.requests]
    assert len(set(ids)) == 4
    assert len({rid.rsplit("-", 1)[0] for rid in ids}) == 1  # one prefix across the resume
    assert "accepted 7" in second
    again = run(Options(path, URL, batch_size=2, resume=True, progress=False), gateway)
    assert "already sent" in again
    assert len(gateway.requests) == 4


def test_resume_refuses_another_url_batch_size_or_a_changed_file(tmp_path: Path) -> None:
    path = ndjson_file(tmp_path, 4)
    run(Options(path, URL, batch_size=2, max_batches=1, progress=False), FakeGateway())
    for options in [
        Options(path, URL + "x", batch_size=2, resume=True, progress=False),
        Options(path, URL, batch_size=3, resume=True, progress=False),
    ]:
        assert run(options, FakeGateway()).startswith(f"{EXIT_USAGE}\n")
    path.write_bytes(path.read_bytes() + b'{"i": 9}\n')
    state = next(tmp_path.glob("*.inlet-send-*.json"))
    options = Options(path, URL, batch_size=2, resume=True, state=state, progress=False)
    assert run(options, FakeGateway()).startswith(f"{EXIT_USAGE}\n")


def test_a_refusal_stops_and_names_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    too_many = httpx.Response(413, json=problem("too_many_records"))
    output = run(Options(ndjson_file(tmp_path, 3), URL, progress=False), FakeGateway([too_many]))
    assert output.startswith(f"{EXIT_FAILED}\n")
    assert "lower --batch-size" in capsys.readouterr().err


def test_rejected_records_are_summed_with_their_file_index(tmp_path: Path) -> None:
    errors = [{"index": 1, "field": "i", "code": "invalid_value", "message": "must be text"}]
    answers = [
        httpx.Response(200, json={"accepted": 2, "rejected": 0}),
        httpx.Response(200, json={"accepted": 1, "rejected": 1, "errors": errors}),
    ]
    output = run(
        Options(ndjson_file(tmp_path, 4), URL, batch_size=2, progress=False), FakeGateway(answers)
    )
    assert "accepted 3, rejected 1" in output
    assert "record 3, field i: must be text" in output
