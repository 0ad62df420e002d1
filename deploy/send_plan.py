"""What ``inlet send`` decides, without doing any I/O: the file's records, their batches, the
request ids, and what to do with each answer (done, retry after a delay, or stop and say why).

``deploy/send.py`` does the HTTP, the progress bar and the state file around these.

Retries: a 429 ``rate_limited`` and a 503 (and a 502/504 from a proxy in front) are retried after
``Retry-After`` (or a backoff when there is none), a connection error or a timeout after a
bounded backoff; nothing else is. A 4xx other than 429 is the request's fault and is never retried:
a 413 ``too_many_records``/``body_too_large`` or a 429 ``batch_exceeds_burst`` says to lower
``--batch-size``. A retry carries the batch's request id again (``X-Request-Id``), so that records
written twice (a 503 or a timeout means "not acknowledged", not "not written") can be told apart
downstream by their ``inlet-request-id`` header.
"""

from __future__ import annotations

import csv
import email.utils
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import msgspec

from inlet.codec.bodies import BodyFormat, CsvRecords, parse_body

CONTENT_TYPES: Final = {
    BodyFormat.JSON: "application/json",
    BodyFormat.NDJSON: "application/x-ndjson",
    BodyFormat.CSV: "text/csv",
}
_EXTENSIONS: Final = {
    ".json": BodyFormat.JSON,
    ".ndjson": BodyFormat.NDJSON,
    ".jsonl": BodyFormat.NDJSON,
    ".csv": BodyFormat.CSV,
}
DEFAULT_BATCH_SIZE: Final = 500
# The gateway keeps a client's X-Request-Id when it is at most 128 of these (README).
MAX_REQUEST_ID: Final = 128
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]+")
_BATCH_DIGITS: Final = 6
MAX_ATTEMPTS: Final = 8
BACKOFF_FIRST_S: Final = 0.5
BACKOFF_MAX_S: Final = 30.0
MAX_RETRY_AFTER_S: Final = 300.0  # a server asking for longer is a refusal, said as such
FIRST_ERRORS: Final = 10  # record errors kept for the summary
_RETRIED_STATUSES: Final = frozenset({502, 503, 504})


class SendError(Exception):
    """The file or the options cannot be sent as asked (before any request)."""


@dataclass(frozen=True)
class Records:
    """A file's records, each as the bytes of its own body part, in order."""

    format: BodyFormat
    items: list[bytes]  # JSON: each array item's text; NDJSON: each line; CSV: each row's CSV
    header: bytes = b""  # CSV: the header line, repeated at the top of every batch

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Batch:
    number: int  # 0-based
    start: int  # the index of its first record in the file
    count: int
    body: bytes  # uncompressed


def detect_format(path: Path, data: bytes) -> BodyFormat:
    """The format a file's name says (``.json``, ``.ndjson``/``.jsonl``, ``.csv``, each maybe
    ``.gz``), else what its first character says: ``[`` JSON, ``{`` NDJSON (one object a line;
    a single object spread over lines is JSON), anything else CSV."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return BodyFormat.JSON
    if text.startswith(b"{"):
        first_line = text.split(b"\n", 1)[0]
        try:
            msgspec.json.decode(first_line)
        except msgspec.DecodeError:
            return BodyFormat.JSON
        return BodyFormat.NDJSON
    return BodyFormat.CSV


def read_records(data: bytes, body_format: BodyFormat) -> Records:
    """The records of a whole file, read by the gateway's own parser (so a file that does not
    parse is refused here, with its line, before anything is sent)."""
    parsed = parse_body(
        data,
        CONTENT_TYPES[body_format],
        max_body_bytes=len(data),
        max_record_bytes=max(len(data), 1),
        max_records=max(len(data), 1),  # a record takes at least a byte
    )
    if isinstance(parsed, CsvRecords):
        header = _csv_line(parsed.header)
        rows = [_csv_line([row.get(name, "") for name in parsed.header]) for row in parsed.rows]
        return Records(body_format, rows, header)
    return Records(body_format, [bytes(raw) for raw in parsed.records])


def _csv_line(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue().encode()


def batch_count(records: int, batch_size: int) -> int:
    return -(-records // batch_size)


def batches(records: Records, batch_size: int, *, first: int = 0) -> Iterator[Batch]:
    """The batches of ``records``, from batch number ``first`` on; built one at a time."""
    if batch_size < 1:
        raise SendError("--batch-size must be at least 1")
    for number in range(first, batch_count(len(records), batch_size)):
        start = number * batch_size
        items = records.items[start : start + batch_size]
        yield Batch(number, start, len(items), _body(records, items))


def _body(records: Records, items: list[bytes]) -> bytes:
    if records.format is BodyFormat.JSON:
        return b"[" + b",".join(items) + b"]"
    if records.format is BodyFormat.NDJSON:
        return b"\n".join(items) + b"\n"
    return records.header + b"".join(items)


def check_prefix(prefix: str) -> str:
    """``prefix`` when every batch's request id made from it is one the gateway keeps."""
    longest = len(request_id(prefix, 0))
    if not _REQUEST_ID.fullmatch(prefix) or longest > MAX_REQUEST_ID:
        limit = MAX_REQUEST_ID - _BATCH_DIGITS - 1
        raise SendError(f"--request-id-prefix must be 1-{limit} characters of A-Z a-z 0-9 . _ : -")
    return prefix


def request_id(prefix: str, batch_number: int) -> str:
    """The request id of one batch: the same on every retry, and across a ``--resume``."""
    return f"{prefix}-{batch_number:0{_BATCH_DIGITS}d}"


def mask_url(url: str) -> str:
    """``url`` without what may be a secret: the token in an ingest path, userinfo, the query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    segments = parts.path.split("/")
    for index, segment in enumerate(segments[:-1]):
        if segment == "ingest" and segments[index + 1]:
            segments[index + 1] = "***"
    return urlunsplit((parts.scheme, host, "/".join(segments), "***" if parts.query else "", ""))


# --- Answers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acknowledged:
    """The gateway answered for the batch's records: they are counted and the next batch goes."""

    accepted: int
    rejected: int
    errors: list[dict[str, Any]]


@dataclass(frozen=True)
class Retry:
    delay_s: float
    reason: str


@dataclass(frozen=True)
class Stop:
    reason: str


Decision = Acknowledged | Retry | Stop


def decide(
    status: int | None,
    body: Any,
    retry_after: str | None,
    attempt: int,
    *,
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> Decision:
    """What to do with one answer to a batch. ``status`` None: no answer (a connection error or
    a timeout); ``attempt``: 1 for the first try; ``body``: the decoded JSON answer, if any."""
    problem = body if isinstance(body, dict) else {}
    code = str(problem.get("code", ""))
    if status == 200:
        return Acknowledged(
            int(problem.get("accepted", 0)),
            int(problem.get("rejected", 0)),
            list(problem.get("errors", [])),
        )
    if status == 422 and code in {"records_invalid", "all_records_invalid"}:
        # Answered: the records were refused for what they hold, a retry would be refused again.
        return Acknowledged(0, int(problem.get("rejected", 0)), list(problem.get("errors", [])))
    if status is not None and not _retried(status, code):
        return Stop(_refusal(status, code, problem))
    what = "no answer" if status is None else f"{status} {code}".strip()
    if attempt >= max_attempts:
        return Stop(f"{what}, {attempt} times; giving up (run again with --resume)")
    delay = None if status is None else parse_retry_after(retry_after, now or datetime.now(UTC))
    if delay is None:
        delay = backoff_s(attempt)
    if delay > MAX_RETRY_AFTER_S:
        return Stop(f"{what}: the server asks to wait {delay:.0f} s; run again with --resume")
    return Retry(delay, what)


def _retried(status: int, code: str) -> bool:
    return (status == 429 and code != "batch_exceeds_burst") or status in _RETRIED_STATUSES


def _refusal(status: int, code: str, problem: dict[str, Any]) -> str:
    detail = str(problem.get("detail") or problem.get("title") or "")
    reason = f"{status} {code}: {detail}".strip(": ") if code else f"HTTP {status}"
    if code in {"too_many_records", "body_too_large"}:
        return f"{reason} — lower --batch-size"
    if code == "batch_exceeds_burst":
        return f"{reason} — lower --batch-size to at most {problem.get('burst', '?')}"
    return reason


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110); None if absent or
    unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_s(attempt: int) -> float:
    """The wait after the ``attempt``-th failure without a ``Retry-After``: doubling, capped."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (attempt - 1)))


def first_errors(kept: list[dict[str, Any]], batch: Batch, answer: Acknowledged) -> None:
    """Add ``answer``'s record errors to ``kept`` up to ``FIRST_ERRORS``, indexed in the file
    (the gateway counts records in the batch)."""
    for error in answer.errors[: max(0, FIRST_ERRORS - len(kept))]:
        index = error.get("index")
        shown = {**error, "index": batch.start + index if isinstance(index, int) else index}
        shown.pop("line", None)  # a line of the batch's body, not of the file
        shown.pop("pointer", None)  # likewise
        kept.append(shown)
