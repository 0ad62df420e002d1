"""``inlet send FILE --url INGEST_URL``: a file's records to an ingest URL, in batches.

The decisions are in ``send_plan.py``; here are the I/O around them: the file, the HTTP requests
(gzip on the wire), the waits, the progress bar (rich, on stderr) and the state file that
``--resume`` continues from.

The state file (``FILE.inlet-send-<key>.json`` beside the file, or ``--state PATH``) is written
after every acknowledged batch, atomically. ``key`` hashes the file's absolute path and the URL;
the URL carries the ingest token, so the file holds only the URL's SHA-256, never the URL. It
records the batch size, the format and the request-id prefix, so a resume makes the same batches
with the same request ids, and the file's size and modification time, so a changed file is not
resumed as if it were the same. Exit codes: 0 every batch acknowledged (rejected records are
counted in the summary), 1 stopped by a refusal or after the last retry, 2 a usage error, 3
stopped early (``--max-batches``), 130 interrupted; after 1, 3 and 130 ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import httpx
import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from deploy.send_plan import (
    CONTENT_TYPES,
    DEFAULT_BATCH_SIZE,
    MAX_ATTEMPTS,
    Acknowledged,
    Batch,
    Records,
    Retry,
    SendError,
    Stop,
    batch_count,
    batches,
    check_prefix,
    decide,
    detect_format,
    first_errors,
    mask_url,
    read_records,
    request_id,
)
from inlet.codec.bodies import BodyFormat
from inlet.errors import InletError

STATE_VERSION: Final = 1
EXIT_DONE, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class SendState(msgspec.Struct, kw_only=True):
    """What a ``--resume`` needs; never the URL (it holds the token), only its hash."""

    version: int = STATE_VERSION
    file: str
    file_size: int
    file_mtime_ns: int
    url_sha256: str
    format: BodyFormat
    batch_size: int
    request_id_prefix: str
    batches_done: int = 0
    records_done: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)
    done: bool = False


@dataclass(frozen=True)
class Options:
    file: Path
    url: str
    batch_size: int = DEFAULT_BATCH_SIZE
    format: BodyFormat | None = None
    resume: bool = False
    state: Path | None = None
    request_id_prefix: str | None = None
    max_batches: int | None = None
    max_attempts: int = MAX_ATTEMPTS
    progress: bool = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a JSON array, NDJSON or CSV file (maybe .gz)")
    parser.add_argument("--url", required=True, help="the connector's ingest URL")
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="records a request (500)"
    )
    parser.add_argument(
        "--format", choices=[f.value for f in BodyFormat], help="the file's format (else guessed)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue after the last acknowledged batch"
    )
    parser.add_argument("--state", type=Path, help="the state file (default: beside FILE)")
    parser.add_argument(
        "--request-id-prefix", help="X-Request-Id of batch n: PREFIX-n (default: a random one)"
    )
    parser.add_argument(
        "--max-batches", type=int, help="send at most this many batches now (--resume goes on)"
    )
    parser.add_argument(
        "--max-attempts", type=int, default=MAX_ATTEMPTS, help="tries a batch (8) before stopping"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_send(args: argparse.Namespace) -> int:
    options = Options(
        file=args.file,
        url=args.url,
        batch_size=args.batch_size,
        format=None if args.format is None else BodyFormat(args.format),
        resume=args.resume,
        state=args.state,
        request_id_prefix=args.request_id_prefix,
        max_batches=args.max_batches,
        max_attempts=args.max_attempts,
        progress=not args.no_progress,
    )
    return send(options)


def send(
    options: Options,
    *,
    out: TextIO | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send ``options.file``; print progress on stderr and the summary on ``out``."""
    out = out or sys.stdout
    err = Console(file=sys.stderr, highlight=False, markup=False, soft_wrap=True)
    try:
        records, state, state_path = _prepare(options)
    except (SendError, InletError, OSError) as exc:
        print(f"inlet send: {exc}", file=sys.stderr)
        return EXIT_USAGE
    shown_url = mask_url(options.url)
    if state.done:
        print(f"inlet send: already sent to {shown_url} (state {state_path})", file=out)
        _summary(state, out)
        return EXIT_DONE
    total = batch_count(len(records), state.batch_size)
    own_client = client is None
    http = client or httpx.Client(timeout=_TIMEOUT)
    started, records_before = time.monotonic(), state.records_done
    progress = Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not options.progress,
        transient=False,
    )
    code = EXIT_DONE
    try:
        with progress:
            task = progress.add_task("records", total=len(records), completed=state.records_done)
            for sent_now, batch in enumerate(
                batches(records, state.batch_size, first=state.batches_done)
            ):
                if options.max_batches is not None and sent_now >= options.max_batches:
                    code = EXIT_STOPPED
                    break
                outcome = _send_batch(http, options, state, batch, err=err, sleep=sleep)
                if isinstance(outcome, Stop):
                    err.print(f"batch {batch.number + 1} of {total}: {outcome.reason}")
                    code = EXIT_FAILED
                    break
                _acknowledge(state, batch, outcome)
                state.done = state.batches_done == total
                _write_state(state_path, state)
                progress.update(task, completed=state.records_done)
            else:
                state.done = True
                _write_state(state_path, state)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    finally:
        if own_client:
            http.close()
    elapsed = time.monotonic() - started
    print(f"{'sent' if state.done else 'stopped'}: {shown_url}", file=out)
    _summary(state, out, elapsed_s=elapsed, sent_now=state.records_done - records_before)
    if not state.done:
        print(
            f"{state.batches_done} of {total} batches acknowledged; run again with --resume "
            f"to continue (state: {state_path})",
            file=out,
        )
    return code


def _send_batch(
    http: httpx.Client,
    options: Options,
    state: SendState,
    batch: Batch,
    *,
    err: Console,
    sleep: Callable[[float], None],
) -> Acknowledged | Stop:
    headers = {
        "Content-Type": CONTENT_TYPES[state.format],
        "Content-Encoding": "gzip",
        "X-Request-Id": request_id(state.request_id_prefix, batch.number),
    }
    body = gzip.compress(batch.body, compresslevel=6)
    attempt = 0
    while True:
        attempt += 1
        status: int | None = None
        answer: Any = None
        retry_after: str | None = None
        try:
            response = http.post(options.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            # The token is in the URL, and httpx's messages may name it: only the kind is shown.
            reason = type(exc).__name__
        else:
            status, retry_after = response.status_code, response.headers.get("retry-after")
            reason = str(status)
            try:
                answer = response.json()
            except ValueError:
                answer = None
        decision = decide(status, answer, retry_after, attempt, max_attempts=options.max_attempts)
        if not isinstance(decision, Retry):
            return decision
        state.retries += 1
        shown = decision.reason if status is not None else f"{reason} (no answer)"
        err.print(
            f"batch {batch.number + 1}: {shown}; retrying in {decision.delay_s:.1f} s "
            f"(attempt {attempt + 1} of {options.max_attempts})"
        )
        sleep(decision.delay_s)


def _acknowledge(state: SendState, batch: Batch, answer: Acknowledged) -> None:
    first_errors(state.errors, batch, answer)
    state.batches_done = batch.number + 1
    state.records_done += batch.count
    state.accepted += answer.accepted
    state.rejected += answer.rejected


def _prepare(options: Options) -> tuple[Records, SendState, Path]:
    path = options.file.resolve()
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    body_format = options.format or detect_format(path, data)
    records = read_records(data, body_format)
    stat = path.stat()
    url_hash = hashlib.sha256(options.url.encode()).hexdigest()
    key = hashlib.sha256(f"{path}\0{url_hash}".encode()).hexdigest()[:16]
    state_path = options.state or path.with_name(f"{path.name}.inlet-send-{key}.json")
    fresh = SendState(
        file=str(path),
        file_size=stat.st_size,
        file_mtime_ns=stat.st_mtime_ns,
        url_sha256=url_hash,
        format=body_format,
        batch_size=options.batch_size,
        request_id_prefix=check_prefix(
            options.request_id_prefix or f"inlet-send-{secrets.token_hex(8)}"
        ),
    )
    if options.batch_size < 1:
        raise SendError("--batch-size must be at least 1")
    if not options.resume:
        return records, fresh, state_path
    try:
        state = msgspec.json.decode(state_path.read_bytes(), type=SendState)
    except FileNotFoundError as exc:
        raise SendError(f"nothing to resume: no state file {state_path}") from exc
    except msgspec.DecodeError as exc:
        raise SendError(f"the state file {state_path} cannot be read: {exc}") from exc
    mismatch = _mismatch(state, fresh, options)
    if mismatch:
        raise SendError(f"cannot resume from {state_path}: {mismatch}")
    return records, state, state_path


def _mismatch(state: SendState, fresh: SendState, options: Options) -> str | None:
    checks = [
        (
            state.version != STATE_VERSION,
            f"state version {state.version}, this inlet writes {STATE_VERSION}",
        ),
        (
            state.url_sha256 != fresh.url_sha256 or state.file != fresh.file,
            "it is for another file or URL",
        ),
        (
            (state.file_size, state.file_mtime_ns) != (fresh.file_size, fresh.file_mtime_ns),
            "the file changed since",
        ),
        (
            options.batch_size != state.batch_size,
            f"it was sent in batches of {state.batch_size}; pass --batch-size {state.batch_size}",
        ),
        (
            options.format is not None and options.format != state.format,
            f"it was sent as {state.format}",
        ),
        (
            bool(options.request_id_prefix)
            and options.request_id_prefix != state.request_id_prefix,
            f"it was sent with --request-id-prefix {state.request_id_prefix}",
        ),
    ]
    return next((reason for failed, reason in checks if failed), None)


def _write_state(path: Path, state: SendState) -> None:
    partial = path.with_name(f"{path.name}.partial")
    partial.write_bytes(msgspec.json.encode(state))
    partial.replace(path)  # a crash leaves the old state or the new, never half of one


def _summary(
    state: SendState, out: TextIO, *, elapsed_s: float | None = None, sent_now: int = 0
) -> None:
    rate = ""
    if elapsed_s:
        rate = f" ({sent_now} now in {elapsed_s:.1f} s, {sent_now / elapsed_s:,.0f} records/s)"
    print(
        f"records: {state.records_done} sent in {state.batches_done} batch(es){rate}; "
        f"accepted {state.accepted}, rejected {state.rejected}; retries {state.retries}",
        file=out,
    )
    if state.errors:
        print("first errors (record index in the file):", file=out)
        for error in state.errors:
            where = f"record {error.get('index')}"
            if error.get("field"):
                where += f", field {error['field']}"
            print(f"  {where}: {error.get('message', error.get('code', ''))}", file=out)


class _RateColumn(ProgressColumn):
    """Records a second, as the progress bar measures them."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} records/s")
