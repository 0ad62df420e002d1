"""Senders that behave like a real webhook source: a steady rate, retries with backoff.

Each writer owns its connection pool and sends one batch at a time: ``records`` records, each with
a fresh uuid ``id``, its ``writer`` and a ``seq``. A batch is retried (the same records, a new
``X-Request-Id``) after a 503, a 429, a timeout or a broken connection, with exponential backoff
(``Retry-After`` honoured up to a cap); any other answer ends it. With several URLs (gateways behind
"one" address) a writer alternates between them per request, so a dead one costs a retry, not the
run. Writers start new batches until ``stop_new`` is set, then finish the batch in hand until
``give_up`` is set.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import msgspec

from chaos.verdict import RETRIED, Attempt


@dataclass
class Load:
    writers: int = 4
    rate_per_writer: float = 10.0  # requests a second, when answers come fast enough
    records: int = 10  # per request
    answer_bound_s: float = 20.0  # no answer by then: "timeout" (hung), and retried
    backoff_first_s: float = 0.2
    backoff_max_s: float = 3.0


@dataclass
class Ledger:
    """What every writer sent and what each attempt got back; times relative to ``origin``."""

    origin: float = field(default_factory=time.monotonic)
    batches: dict[int, list[str]] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    _next_batch: int = 0

    def now(self) -> float:
        return time.monotonic() - self.origin

    def new_batch(self, ids: list[str]) -> int:
        batch, self._next_batch = self._next_batch, self._next_batch + 1
        self.batches[batch] = ids
        return batch


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return "timeout"
    return "conn_error"


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


async def _writer(
    index: int,
    urls: Callable[[], list[str]],
    load: Load,
    ledger: Ledger,
    stop_new: asyncio.Event,
    give_up: asyncio.Event,
) -> None:
    timeout = httpx.Timeout(load.answer_bound_s, connect=min(5.0, load.answer_bound_s))
    interval = 1.0 / load.rate_per_writer
    seq = 0
    headers = {"Content-Type": "application/json"}
    turn = index  # writers start on different URLs
    async with httpx.AsyncClient(timeout=timeout) as client:
        while not stop_new.is_set():
            started = time.monotonic()
            ids = [str(uuid.uuid4()) for _ in range(load.records)]
            body = [{"id": rid, "writer": index, "seq": seq + i} for i, rid in enumerate(ids)]
            payload = msgspec.json.encode(body)
            seq += load.records
            batch = ledger.new_batch(ids)
            backoff = load.backoff_first_s
            while True:
                targets = urls()
                url = targets[turn % len(targets)]
                turn += 1
                request_id = uuid.uuid4().hex
                sent = ledger.now()
                response: httpx.Response | None = None
                try:
                    response = await client.post(
                        url, content=payload, headers=headers | {"X-Request-Id": request_id}
                    )
                    outcome = str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = _outcome(exc)
                ledger.attempts.append(
                    Attempt(batch, index, request_id, url, sent, ledger.now(), outcome)
                )
                if outcome not in RETRIED or give_up.is_set():
                    break
                wait = min(_retry_after(response) or backoff, load.backoff_max_s)
                backoff = min(backoff * 2, load.backoff_max_s)
                await asyncio.sleep(wait * random.uniform(0.8, 1.2))  # jitter only
            pause = interval - (time.monotonic() - started)
            if pause > 0:
                await asyncio.sleep(pause)


async def drive(
    urls: Callable[[], list[str]],
    load: Load,
    ledger: Ledger,
    stop_new: asyncio.Event,
    give_up: asyncio.Event,
) -> None:
    """Run every writer until ``stop_new`` and then each finished its batch (or ``give_up``)."""
    async with asyncio.TaskGroup() as group:
        for index in range(load.writers):
            group.create_task(_writer(index, urls, load, ledger, stop_new, give_up))
