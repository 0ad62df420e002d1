"""`inlet gateway` as shipped (2 workers) against hostile connections, over raw TCP on loopback.

Idle connections, heads and bodies trickled in are cut at their deadlines (short ones here, set
through the ``INLET_HTTP_*`` variables), a head over its size cap is answered 431; beyond a
worker's connection cap a new connection gets a clean 503 and everything recovers once the
connections go (deploy/_connections.py).
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
import uuid
from pathlib import Path

import httpx
import msgspec
import pytest

from inlet.process import listening_socket
from inlet.settings import Settings
from registry.app import create_app as create_registry
from tests.gateway_processes import (
    connections_by_worker,
    gateway_with_two_workers,
    server_workers,
)
from tests.servers import serve

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

TOKEN = "inlet_admin_connections-test"
KEEP_ALIVE_S = 2
HEAD_S = 3.0
BODY_S = 3.0
MIN_RATE = 1000  # bytes/s
MAX_HEAD = 16 * 1024
# Whatever the machine's load, a cut comes within this; the code as it was never cut at all.
CUT_WITHIN_S = 60.0
EARLY = 0.1  # a loop timer may fire this much before its time, as measured from here


class Answer(msgspec.Struct):
    status: int
    headers: dict[str, str]
    body: bytes

    def problem_code(self) -> str:
        assert self.headers["content-type"] == "application/problem+json", self.headers
        return str(json.loads(self.body)["code"])


def _parse(raw: bytes) -> tuple[Answer, bytes]:
    """The first answer in ``raw`` (with a Content-Length), and what follows it."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    return Answer(int(status_line.split()[1]), headers, rest[:length]), rest[length:]


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (within ``CUT_WITHIN_S``)."""
    try:
        return await asyncio.wait_for(reader.read(), CUT_WITHIN_S)
    except TimeoutError:
        pytest.fail(f"the connection was still open after {CUT_WITHIN_S:.0f} s")


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> Answer:
    """One request on a kept-alive connection, and its answer."""
    writer.write(raw)
    received = b""
    while True:
        received += await asyncio.wait_for(reader.read(65536), CUT_WITHIN_S)
        if b"\r\n\r\n" in received:
            head = received.partition(b"\r\n\r\n")[0].lower()
            length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            if len(received.partition(b"\r\n\r\n")[2]) >= length:
                return _parse(received)[0]


async def _trickle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, every_s: float
) -> tuple[bytes, int, float]:
    """Send ``data`` a byte every ``every_s`` until the server answers or closes.

    Between two bytes, waits that long for the server to say something (the pace doubles as the
    watch, so no byte is sent after the server closed). Returns what the server sent until it
    closed, how many bytes went out, and the time from the first byte to the server's first word.
    """
    started = time.monotonic()
    for sent in range(1, len(data) + 1):
        writer.write(data[sent - 1 : sent])
        await writer.drain()
        try:
            first = await asyncio.wait_for(reader.read(65536), every_s)
        except TimeoutError:
            if time.monotonic() - started > CUT_WITHIN_S:
                break
            continue
        elapsed = time.monotonic() - started
        return first + (await _until_closed(reader) if first else b""), sent, elapsed
    pytest.fail(f"the server let {len(data)} bytes trickle in over {CUT_WITHIN_S:.0f} s")


GET_LIVE = b"GET /health/live HTTP/1.1\r\nHost: gateway\r\n\r\n"


async def _idle_new_connection(port: int) -> None:
    reader, writer = await _connect(port)
    started = time.monotonic()
    assert await _until_closed(reader) == b"", "closed without a word"
    assert time.monotonic() - started >= KEEP_ALIVE_S - EARLY
    writer.close()


async def _idle_after_an_answer(port: int) -> None:
    reader, writer = await _connect(port)
    answer = await _request(reader, writer, GET_LIVE)
    assert answer.status == 200
    assert "server" not in answer.headers, answer.headers  # no `server: uvicorn`
    assert "date" in answer.headers
    started = time.monotonic()
    assert await _until_closed(reader) == b""
    assert time.monotonic() - started >= KEEP_ALIVE_S - EARLY
    writer.close()


async def _trickled_head(port: int) -> None:
    reader, writer = await _connect(port)
    head = b"GET /health/live HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + b"s" * 100 + b"\r\n\r\n"
    received, sent, elapsed = await _trickle(reader, writer, head, every_s=2.0)
    assert sent < len(head)
    assert elapsed >= HEAD_S - EARLY
    answer, rest = _parse(received)
    assert (answer.status, answer.problem_code(), rest) == (408, "request_timeout", b"")
    assert answer.headers["connection"] == "close"
    writer.close()


async def _large_head(port: int) -> None:
    """A head over the cap is answered 431 (the server's problem) and closed; one within it is
    served."""
    reader, writer = await _connect(port)
    fill = b"X-Fill: " + b"f" * (MAX_HEAD // 2) + b"\r\n"
    answer = await _request(reader, writer, GET_LIVE[:-2] + fill + b"\r\n")
    assert answer.status == 200
    writer.write(GET_LIVE[:-2] + fill * 3 + b"\r\n")
    answer, rest = _parse(await _until_closed(reader))
    assert (answer.status, answer.problem_code(), rest) == (
        431,
        "request_header_fields_too_large",
        b"",
    )
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["connection"] == "close"
    writer.close()


async def _trickled_body(port: int, token: str) -> None:
    """A body at 2 bytes/s while the gateway reads it: 408 at the body's deadline."""
    reader, writer = await _connect(port)
    body = b'[{"id": "' + b"x" * 990 + b'"}]'
    writer.write(
        f"POST /v1/ingest/{token} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    received, sent, elapsed = await _trickle(reader, writer, body, every_s=0.5)
    assert sent < len(body)
    assert elapsed >= BODY_S - EARLY
    answer, rest = _parse(received)
    assert (answer.status, answer.problem_code(), rest) == (408, "request_timeout", b"")
    writer.close()


async def _trickled_body_after_an_answer(port: int) -> None:
    """An unknown token is answered before its body is read; the rest, trickled, is cut too."""
    reader, writer = await _connect(port)
    writer.write(
        b"POST /v1/ingest/inlet_ingest_unknown HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    answer = await _request(reader, writer, b"")
    assert answer.status == 404
    started = time.monotonic()
    for _ in range(int(CUT_WITHIN_S / 0.5)):
        try:
            if await asyncio.wait_for(reader.read(65536), 0.5) == b"":
                break  # closed
        except TimeoutError:
            writer.write(b"x")
        except ConnectionResetError:
            # Closed with our trickled bytes still unread in the server's buffer: the kernel
            # answers with a reset rather than a FIN. Cut all the same.
            break
    else:
        pytest.fail(f"the connection was still open after {CUT_WITHIN_S:.0f} s")
    assert time.monotonic() - started >= BODY_S - EARLY - 0.5  # the body's clock started earlier
    writer.close()


async def _steady_body(port: int, token: str) -> None:
    """A body sent steadily at 3x the minimum rate, for longer than the body's start allowance,
    is taken whole: the deadline follows the progress."""
    reader, writer = await _connect(port)
    records = [{"id": f"steady-{i}-" + "y" * 40} for i in range(300)]
    body = json.dumps(records).encode()  # ~17 kB: ~6 s at 3,000 bytes/s
    writer.write(
        f"POST /v1/ingest/{token} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    for offset in range(0, len(body), 300):
        writer.write(body[offset : offset + 300])
        await writer.drain()
        await asyncio.sleep(0.1)  # the sender's pace: 300 bytes every 0.1 s
    answer = await _request(reader, writer, b"")
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["accepted"] == len(records)
    writer.close()


@pytest.mark.timeout(300)  # a gateway start on a busy machine, then a minute at most per cut
async def test_idle_and_slow_connections_are_cut(settings: Settings) -> None:
    listening = listening_socket()
    port = listening.getsockname()[1]
    settings = msgspec.structs.replace(settings, admin_token=TOKEN, gateway_port=port)
    limits = {
        "INLET_HTTP_KEEP_ALIVE_TIMEOUT_S": str(KEEP_ALIVE_S),
        "INLET_HTTP_HEAD_TIMEOUT_S": str(HEAD_S),
        "INLET_HTTP_BODY_TIMEOUT_S": str(BODY_S),
        "INLET_HTTP_BODY_MIN_RATE": str(MIN_RATE),
        "INLET_HTTP_MAX_HEAD_BYTES": str(MAX_HEAD),
    }
    with (
        serve(create_registry(settings)) as registry,
        gateway_with_two_workers(settings, listening, extra_env=limits),
    ):
        async with httpx.AsyncClient(
            base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as admin:
            created = await admin.post(
                "/v1/connectors",
                json={
                    "name": f"slow-{uuid.uuid4().hex[:8]}",  # the broker is the session's
                    "fields": [{"name": "id", "type": "string"}],
                },
            )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        await _until_known(port, token)
        checks = {
            "idle new connection": _idle_new_connection(port),
            "idle after an answer": _idle_after_an_answer(port),
            "trickled head": _trickled_head(port),
            "large head": _large_head(port),
            "trickled body": _trickled_body(port, token),
            "trickled body after an answer": _trickled_body_after_an_answer(port),
            "steady body": _steady_body(port, token),
        }
        # All at once, each reported: one failing check does not hide another.
        outcomes = await asyncio.gather(*checks.values(), return_exceptions=True)
    failed = {name: repr(exc) for name, exc in zip(checks, outcomes, strict=True) if exc}
    assert not failed, failed


async def _until_known(port: int, token: str) -> None:
    """Until both workers know the new token (an empty array takes nothing)."""
    deadline = time.monotonic() + 60
    known = 0
    async with httpx.AsyncClient(timeout=60) as client:
        while known < 10:  # new connections, spread over the workers as the kernel likes
            assert time.monotonic() < deadline, "the gateway never learned the connector"
            response = await client.post(
                f"http://127.0.0.1:{port}/v1/ingest/{token}",
                json=[],
                headers={"Connection": "close"},
            )
            known = known + 1 if response.status_code == 200 else 0


CAP = 4


def _soft_nofile_1024() -> None:
    """In the gateway's process before it starts: a soft limit as low as many systems set."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


def _soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files limit")


@pytest.mark.timeout(300)
async def test_beyond_the_connection_cap_a_clean_503_then_recovery(settings: Settings) -> None:
    listening = listening_socket()
    port = listening.getsockname()[1]
    settings = msgspec.structs.replace(settings, gateway_port=port)
    limits = {
        "INLET_HTTP_MAX_CONNECTIONS": str(CAP),
        # Long enough for the held connections to stay for the whole test.
        "INLET_HTTP_KEEP_ALIVE_TIMEOUT_S": "120",
    }
    held: list[asyncio.StreamWriter] = []
    with gateway_with_two_workers(
        settings, listening, extra_env=limits, preexec_fn=_soft_nofile_1024
    ) as gateway:
        workers = server_workers(gateway.pid)
        assert len(workers) == 2, workers
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert [_soft_nofile(pid) for pid in workers] == [hard, hard]  # raised from 1024
        try:
            # Idle connections until every worker holds its cap: whichever worker takes the
            # next connection is full.
            deadline = time.monotonic() + 60
            while min(connections_by_worker(workers, port).values()) < CAP:
                assert time.monotonic() < deadline, connections_by_worker(workers, port)
                held.append((await _connect(port))[1])
                await asyncio.sleep(0.02)  # pacing, not waiting for anything
            for _ in range(6):
                reader, writer = await _connect(port)
                writer.write(GET_LIVE)
                answer, rest = _parse(await _until_closed(reader))
                assert (answer.status, answer.problem_code(), rest) == (
                    503,
                    "too_many_connections",
                    b"",
                ), answer
                assert answer.headers["retry-after"] == "1"
                assert answer.headers["connection"] == "close"
                writer.close()
        finally:
            for writer in held:
                writer.close()
        # Once they are gone, new connections are served again, by both workers.
        deadline = time.monotonic() + 60
        served = 0
        async with httpx.AsyncClient(timeout=60) as client:
            while served < 10:
                assert time.monotonic() < deadline, "the gateway did not recover"
                response = await client.get(
                    f"http://127.0.0.1:{port}/health/live", headers={"Connection": "close"}
                )
                served = served + 1 if response.status_code == 200 else 0
