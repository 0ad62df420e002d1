"""HTTP/1.1 connections that cannot be held for free: a deadline in every phase, and a cap.

uvicorn (httptools) times out only the wait between two requests of a kept-alive connection, and
only once a first answer is out; any byte received stops that timer. A connection that sends
nothing, a head sent a byte every 2 s, or a body trickled in were held for ever, and enough of
them took every file descriptor of every worker. ``DeadlineProtocol`` is uvicorn's httptools
protocol with these rules, per connection:

- **idle**: waiting for the first byte of a request (on a new connection too, not only between
  requests) — closed after uvicorn's ``timeout_keep_alive``, without an answer (uvicorn's own
  keep-alive timer, armed from the start);
- **head**: from a request's first byte, its whole head within ``head_s``, however it trickles —
  else 408 and closed; and at most ``max_head_bytes`` (the target and the header lines; httptools
  itself has no limit and buffers a header as it comes) — else 431 and closed;
- **body**: ``body_s`` for the body to start coming, then every ``body_min_rate`` bytes buy one
  more second (Apache's ``mod_reqtimeout`` rule: a steady sender at that rate or faster is never
  cut, whatever the size) — else 408 (or, once an answer was sent, a close). The clock runs only
  while the server reads: a request whose app has not asked for the body yet (a full read buffer,
  ``Expect: 100-continue`` not answered yet) is never late.

The time an app takes to answer is the app's own (the gateway bounds it by its produce deadline).

A connection accepted while its process already holds ``max_connections`` others gets a 503
problem (``too_many_connections``, ``Retry-After: 1``, then closed) for its request; the
connections already there are served as before. The cap is per process, sized by
``connection_cap`` below the process's file-descriptor limit, which ``raise_nofile_limit`` raises
to its hard limit first. These answers are the server's, not an app's (like uvicorn's own 400 for
a request that does not parse): no domain error stands behind them, so they are rendered here in
the same problem+json shape.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import resource
from dataclasses import dataclass
from typing import Any

import msgspec
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from inlet.problems import PROBLEM_MEDIA_TYPE, problem_body
from inlet.security_headers import SECURITY_HEADERS

_log = logging.getLogger("inlet.serve")

# File descriptors a server process needs besides its client connections (Kafka sockets, metric
# and rate-limit files, pipes, the event loop's own); of the rest, half go to connections under
# the cap and half stay for connections above it, which are accepted, answered 503 and closed.
_RESERVED_FDS = 256


@dataclass(frozen=True)
class ConnectionLimits:
    """What ``DeadlineProtocol`` enforces beyond uvicorn's keep-alive timeout."""

    head_s: float
    body_s: float
    body_min_rate: float  # bytes per second
    max_connections: int  # per process
    max_head_bytes: int


def raise_nofile_limit() -> tuple[int, int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (workers inherit it).

    Returns the soft limit before and after; unchanged when the system refuses.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            _log.warning("could not raise RLIMIT_NOFILE", extra={"error": str(exc)})
            return soft, soft
        return soft, hard
    return soft, soft


def connection_cap(wanted: int, nofile: int) -> int:
    """How many connections a process may serve at once: ``wanted``, or less when the file
    descriptors (``nofile``, the soft limit) would not hold them and those above the cap."""
    return max(1, min(wanted, (nofile - _RESERVED_FDS) // 2))


def _problem(status: int, code: str, detail: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole answer after the status line: ``headers``, then the problem, then close."""
    body = msgspec.json.encode(problem_body(status, code, detail))
    head = [
        *headers,
        *SECURITY_HEADERS,
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return b"".join(name + b": " + value + b"\r\n" for name, value in head) + b"\r\n" + body


@functools.cache
def _too_many_connections(cap: int) -> Any:
    """The ASGI app that answers every request of a connection above the cap."""
    detail = f"this server process holds its maximum of {cap} connections; try again shortly"
    return _refusal(503, "too_many_connections", detail, ((b"retry-after", b"1"),))


def _head_too_large(limit: int) -> str:
    return f"the request head is larger than {limit} bytes"


@functools.cache
def _refusal(
    status: int, code: str, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> Any:
    """An ASGI app that answers a problem, reading nothing, and closes the connection."""
    body = msgspec.json.encode(problem_body(status, code, detail))
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            *headers,
            (b"connection", b"close"),
            *SECURITY_HEADERS,
        ],
    }
    end = {"type": "http.response.body", "body": body, "more_body": False}

    async def app(_scope: Any, _receive: Any, send: Any) -> None:
        await send(start)
        await send(end)

    return app


# What a connection is waiting for, as far as its deadlines go.
_OTHER = 0  # the next request (uvicorn's keep-alive timer), or the app's answer (no deadline)
_HEAD = 1
_BODY = 2


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and the cap of this module's docstring.

    Reads ``config.connection_limits`` (a ``ConnectionLimits``). A request only notes when its
    head and body began (a timer armed and cancelled per request costs ~4.5 µs on uvloop, more
    than all of this): one watchdog timer per connection, always pending, fires at the current
    phase's deadline or, when there is none, after the shorter allowance, and re-arms itself.
    A phase that begins after the watchdog was armed ends no sooner than its allowance after
    that, so the watchdog never fires late.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits: ConnectionLimits = config.connection_limits  # type: ignore[attr-defined]
        self._period = min(self._limits.head_s, self._limits.body_s)
        self._watchdog: asyncio.TimerHandle | None = None
        self._phase = _OTHER
        self._since = 0.0  # when the phase began (for a body: or its allowance restarted)
        self._body_bytes = 0  # body bytes received since then
        # The head's size, bounded cheaply: the bytes of the chunks it came in (from below: only
        # the chunks wholly its own; from above: all of them), so that a head is measured
        # exactly only when it may be too large.
        self._chunk_bytes = 0
        self._head_within = 0
        self._head_at_most = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cap = self._limits.max_connections
        if len(self.connections) > cap:
            self.app = _too_many_connections(cap)  # every request of this connection
        # uvicorn arms its keep-alive timer only after an answer: a connection that never sends
        # would be kept for ever. Any byte received cancels it (HttpToolsProtocol.data_received).
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        self._watchdog = self.loop.call_later(self._period, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        in_head = self._phase == _HEAD
        self._chunk_bytes = len(data)
        if in_head:
            self._head_at_most += len(data)
        super().data_received(data)
        if in_head and self._phase == _HEAD:  # the head goes on past this chunk: all of it is head
            self._head_within += len(data)
            if self._head_within > self._limits.max_head_bytes:
                self._cut(
                    _head_too_large(self._limits.max_head_bytes),
                    431,
                    "request_header_fields_too_large",
                )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase, self._since = _HEAD, self.loop.time()
        self._head_within, self._head_at_most = 0, self._chunk_bytes
        # A request pipelined behind one whose body ended after its answer: the idle timer that
        # on_message_complete armed for it is not this request's.
        self._unset_keepalive_if_required()

    def on_headers_complete(self) -> None:
        self._phase, self._since, self._body_bytes = _BODY, self.loop.time(), 0
        limit = self._limits.max_head_bytes
        if self._head_at_most > limit and self._head_bytes() > limit:
            # Answered by the server, as a request: uvicorn reads and drops its body, then closes.
            self.app = _refusal(431, "request_header_fields_too_large", _head_too_large(limit))
        super().on_headers_complete()

    def _head_bytes(self) -> int:
        """The request head's size as received: its target and its header lines."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase = _OTHER
        super().on_message_complete()
        # The answer went out before the body ended (uvicorn then reads the rest and drops it):
        # the bytes since stopped uvicorn's keep-alive timer, so the idle wait starts now.
        if (
            self.cycle.response_complete
            and self.timeout_keep_alive_task is None
            and not self.pipeline
            and not self.transport.is_closing()
        ):
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _due(self, now: float) -> float:
        """When the current phase is late (``inf``: never)."""
        if self._phase == _HEAD:
            return self._since + self._limits.head_s
        if self._phase == _BODY:
            if self.flow.read_paused or self.cycle.waiting_for_100_continue:
                # The server is not reading: the sender cannot be late. Its allowance restarts.
                self._since, self._body_bytes = now, 0
            limits = self._limits
            return self._since + limits.body_s + self._body_bytes / limits.body_min_rate
        return math.inf

    def _check(self) -> None:
        self._watchdog = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        due = self._due(now)
        if now < due:
            self._watchdog = self.loop.call_later(min(due - now, self._period), self._check)
        elif self._phase == _HEAD:
            self._cut(f"the request head did not arrive within {self._limits.head_s:g} s")
        else:
            self._cut(
                f"the request body came slower than {self._limits.body_min_rate:g} bytes/s "
                f"(after {self._limits.body_s:g} s to start)"
            )

    def _cut(self, why: str, status: int = 408, code: str = "request_timeout") -> None:
        """408 (or ``status``) and close; only close while an answer is being written (or was,
        for this body)."""
        if self._phase == _HEAD:
            between_answers = self.cycle is None or self.cycle.response_complete
        else:
            between_answers = not self.cycle.response_started
            self.cycle.disconnected = True  # the app, still reading the body, is told so
        if between_answers:
            headers = self.server_state.default_headers
            self.transport.write(STATUS_LINE[status] + _problem(status, code, why, headers))
        self.transport.close()
