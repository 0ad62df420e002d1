"""deploy/_connections.py without sockets: the protocol driven through a fake transport."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from deploy._connections import ConnectionLimits, DeadlineProtocol, connection_cap


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"hi"})


def _protocols(limits: ConnectionLimits, keep_alive_s: int = 5, app: Any = _hello) -> Any:
    config = Config(app, http=DeadlineProtocol, lifespan="off", timeout_keep_alive=keep_alive_s)
    config.connection_limits = limits  # type: ignore[attr-defined]
    config.load()
    state = ServerState()

    def connect() -> tuple[DeadlineProtocol, FakeTransport]:
        protocol = DeadlineProtocol(config, state, {})
        transport = FakeTransport()
        protocol.connection_made(transport)
        return protocol, transport

    return connect


async def _until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.01)


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
MAX_HEAD = 4096
LIMITS = ConnectionLimits(
    head_s=10, body_s=10, body_min_rate=1000, max_connections=2, max_head_bytes=MAX_HEAD
)


def _status(written: bytes) -> int:
    return int(written.split(b" ", 2)[1])


async def test_above_the_cap_new_connections_get_503_and_those_before_are_served() -> None:
    connect = _protocols(LIMITS)
    first, second, third = connect(), connect(), connect()
    for protocol, _transport in (third, first, second):  # the newest asks first
        protocol.data_received(GET)
    await _until(lambda: all(t.written for _p, t in (first, second, third)))
    assert [_status(t.written) for _p, t in (first, second, third)] == [200, 200, 503]
    body = json.loads(third[1].written.partition(b"\r\n\r\n")[2])
    assert body["code"] == "too_many_connections"
    assert b"retry-after: 1\r\n" in third[1].written
    assert b"x-content-type-options: nosniff\r\n" in third[1].written
    await _until(lambda: third[1].closed)
    assert not first[1].closed  # kept alive
    # Once one goes, a new connection is served.
    third[0].connection_lost(None)
    first[0].connection_lost(None)
    fourth = connect()
    fourth[0].data_received(GET)
    await _until(lambda: fourth[1].written)
    assert _status(fourth[1].written) == 200


async def test_a_new_connection_that_sends_nothing_is_closed_after_the_keep_alive_timeout() -> None:
    _protocol, transport = _protocols(LIMITS, keep_alive_s=1)()
    await _until(lambda: transport.closed)
    assert transport.written == b""


async def test_a_head_that_does_not_complete_is_answered_408() -> None:
    limits = ConnectionLimits(
        head_s=0.05, body_s=10, body_min_rate=1000, max_connections=2, max_head_bytes=MAX_HEAD
    )
    protocol, transport = _protocols(limits)()
    protocol.data_received(b"GET / HTTP/1.1\r\nHo")
    await _until(lambda: transport.closed)
    assert _status(transport.written) == 408
    assert b'"code":"request_timeout"' in transport.written
    assert b"x-content-type-options: nosniff\r\n" in transport.written


async def test_a_head_larger_than_the_cap_is_answered_431_in_one_piece() -> None:
    protocol, transport = _protocols(LIMITS)()
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n")
    await _until(lambda: transport.closed)
    assert _status(transport.written) == 431
    body = json.loads(transport.written.partition(b"\r\n\r\n")[2])
    assert body["code"] == "request_header_fields_too_large"
    assert str(MAX_HEAD) in body["detail"]
    assert b"x-content-type-options: nosniff\r\n" in transport.written
    assert b"content-type: application/problem+json\r\n" in transport.written


async def test_a_head_growing_past_the_cap_is_cut_before_it_completes() -> None:
    protocol, transport = _protocols(LIMITS)()
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
    while not transport.closed:  # a header that never ends: httptools would buffer all of it
        protocol.data_received(b"a" * 1000)
        assert len(transport.written) == 0 or transport.closed
    assert _status(transport.written) == 431
    assert b'"code":"request_header_fields_too_large"' in transport.written
    assert b"x-content-type-options: nosniff\r\n" in transport.written


async def test_heads_within_the_cap_are_served_whatever_comes_with_them() -> None:
    protocol, transport = _protocols(LIMITS)()
    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Fill: " + b"a" * (MAX_HEAD - 100)
    body = b"b" * (4 * MAX_HEAD)  # in the same chunk as the head, and more than the cap
    protocol.data_received(head + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await _until(lambda: transport.written)
    assert _status(transport.written) == 200
    # A head trickled in pieces, just within the cap.
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Fill: ")
    for _ in range(MAX_HEAD // 1000 - 1):
        protocol.data_received(b"a" * 1000)
    transport.written = b""
    protocol.data_received(b"\r\n\r\n")
    await _until(lambda: transport.written)
    assert _status(transport.written) == 200


async def test_a_body_is_never_late_while_the_server_does_not_read() -> None:
    limits = ConnectionLimits(
        head_s=0.05, body_s=0.05, body_min_rate=1, max_connections=2, max_head_bytes=MAX_HEAD
    )
    stalled = asyncio.Event()

    async def busy(scope: Any, receive: Any, send: Any) -> None:
        await stalled.wait()  # busy with something else before reading the body

    protocol, transport = _protocols(limits, app=busy)()
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
    protocol.flow.pause_reading()  # as when the body it has not taken filled the buffer
    started = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - started < 0.3:  # several deadlines' worth
        await asyncio.sleep(0.05)
        assert not transport.closed
    protocol.flow.resume_reading()
    await _until(lambda: transport.closed)  # its allowance restarted: then it is late
    assert _status(transport.written) == 408
    stalled.set()


async def test_a_body_still_coming_after_the_answer_is_cut_without_a_second_answer() -> None:
    limits = ConnectionLimits(
        head_s=0.05, body_s=0.05, body_min_rate=1000, max_connections=2, max_head_bytes=MAX_HEAD
    )

    async def early(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    protocol, transport = _protocols(limits, app=early)()
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n")
    await _until(lambda: transport.written)
    protocol.data_received(b"x")  # stops uvicorn's keep-alive timer
    await _until(lambda: transport.closed)
    assert transport.written.count(b"HTTP/1.1") == 1


@pytest.mark.parametrize(
    ("wanted", "nofile", "cap"),
    [
        (1024, 1_048_576, 1024),  # plenty: as asked
        (1024, 1024, 384),  # a common default soft limit: half of what the reserve leaves
        (1024, 300, 22),
        (1024, 100, 1),  # never none
    ],
)
def test_the_cap_fits_the_file_descriptor_limit(wanted: int, nofile: int, cap: int) -> None:
    assert connection_cap(wanted, nofile) == cap
