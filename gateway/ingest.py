"""The ingest path: token → connector → parse → validate/encode → size → produce → answer.

The answer comes only after Kafka acknowledged every record of the request (valid records to the
connector topic, invalid ones to its rejected topic). Codecs are built once per connector schema
version and reused; a request keeps the codec it started with even if the connector changes.

Every record of the request is sized against the Kafka record limit (``inlet/record_size.py``)
before any is produced: a valid record too large is an invalid record (``record_too_large``), a
rejected record too large to keep refuses the request (413). So a request is not half written
because Kafka refused one of its records; what a failure after the records went out may have
written, the answer's ``detail`` says.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, overload

import msgspec

from gateway.connector_lookup import ConnectorLookup
from gateway.dedup import IN_PROGRESS_RETRY_S, Deduplicator
from gateway.dedup_keys import (
    nth_record_digest,
    record_digest,
    record_keys,
    request_digest,
    request_key,
    unpack_landing,
)
from gateway.envelopes import Limits, unwrap
from gateway.errors import (
    AllRecordsInvalid,
    InProgress,
    Overloaded,
    RecordsInvalid,
    RejectedRecordTooLarge,
    SignatureInvalid,
    SignatureMissing,
    TimestampOutOfTolerance,
)
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import RateLimiter
from gateway.signatures import Verifiers
from inlet.codec.bodies import RecordBatch, decode_content_steps, known_record_count, parse_steps
from inlet.codec.record_codec import EncodedRecord, EncodeResult, RecordCodec
from inlet.codec.steps import Pacer, Steps, release, run_yielding
from inlet.errors import InletError, KafkaUnavailable
from inlet.kafka import Delivery, Headers, ProduceFailed, RecordFields, TrackedProducer
from inlet.kafka_errors import refusal
from inlet.model.connectors import Connector
from inlet.record_size import BATCH_OVERHEAD, RECORD_OVERHEAD, headers_size, record_size
from inlet.records import (
    HEADER_DEDUP_KEY,
    HEADER_RECEIVED_AT,
    HEADER_REQUEST_ID,
    RecordError,
    RejectedRecord,
)
from inlet.sealing import SecretBox
from inlet.settings import Settings

_RETRY_AFTER_S = 2.0
_rejected_encoder = msgspec.json.Encoder()


class DuplicateRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """A record of the request whose key was accepted before: not written again. Where the
    original landed, when known."""

    index: int
    partition: int | None = None
    offset: int | None = None


class IngestResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """``accepted``: the request's valid records Kafka has, written now or, for ``duplicates``,
    before (so a retry is answered as its first delivery was); ``duplicate``: every one of them
    was there already, and nothing was written."""

    accepted: int
    rejected: int
    schema_id: int
    schema_version: int
    errors: list[RecordError] = msgspec.field(default_factory=list)
    errors_total: int = 0
    unknown_fields: list[str] = msgspec.field(default_factory=list)
    duplicate: bool = False
    duplicates: list[DuplicateRecord] = msgspec.field(default_factory=list)


class _Keys(NamedTuple):
    """A request's idempotency keys (``gateway/dedup_keys.py``), read before the body is freed."""

    request: str | None
    records: list[str | None] | None
    body_records: int  # records in the body


class _Plan(NamedTuple):
    """What the dedup decided for a request that writes something."""

    owner: str
    won: list[bytes]
    request_digest: bytes | None  # won: its acceptance lists every record written
    written: list[EncodedRecord]
    header_values: list[str]  # HEADER_DEDUP_KEY of each written record
    accept_digests: list[bytes | None]  # per written record, its own key's digest (record keys)
    duplicates: list[tuple[int, int | None]]  # (index, index value) of records not written
    same_as: list[tuple[int, int]]  # (index, written position): a key repeated in the request


class Ingest:
    def __init__(
        self,
        settings: Settings,
        connectors: ConnectorLookup,
        producer: TrackedProducer,
        metrics: GatewayMetrics,
        limiter: RateLimiter | None = None,
        *,
        box: Callable[[], SecretBox] | None = None,
        dedup: Deduplicator | None = None,
    ) -> None:
        self._settings = settings
        self._connectors = connectors
        self._producer = producer
        self._metrics = metrics
        self._limiter = limiter or RateLimiter()
        self._verifiers = Verifiers(box)
        self._dedup = dedup
        self._codecs: dict[tuple[str, int, str | None, bool], RecordCodec] = {}

    async def connector_for(self, token: str | None) -> Connector:
        """The connector a token opens; unknown, rotated-out and deleted tokens look alike."""
        return await self._connectors.connector_for(token)

    def verify(self, connector: Connector, headers: Mapping[str, str], body: bytes) -> None:
        """Refuse the request unless one of the connector's senders signed it (only for a
        connector with ``verify``: the caller checks, so others pay nothing here)."""
        try:
            self._verifiers.verify(connector, headers, body)
        except (SignatureMissing, SignatureInvalid, TimestampOutOfTolerance) as exc:
            self._metrics.count_signature_failure(connector.id, exc.code)
            raise

    def codec_for(self, connector: Connector) -> RecordCodec:
        key = (
            connector.id,
            connector.schema_id,
            connector.key_field,
            connector.reject_unknown_fields,
        )
        codec = self._codecs.get(key)
        if codec is None:
            # Drop this connector's older codecs: requests in flight keep their own reference.
            for old in [k for k in self._codecs if k[0] == connector.id]:
                del self._codecs[old]
            codec = self._codecs[key] = RecordCodec.of_connector(connector)
        return codec

    async def ingest(
        self,
        connector: Connector,
        body: bytes,
        *,
        content_type: str | None,
        content_encoding: str | None,
        atomic: bool | None,
        request_id: str,
        headers_in: Mapping[str, str] | None = None,
    ) -> IngestResult:
        """``headers_in`` (by lower-case name) are the request's: an envelope reads them."""
        received_ms = time.time_ns() // 1_000_000
        codec = self.codec_for(connector)
        settings, rate = self._settings, connector.rate_limit_per_s
        batch: RecordBatch
        record_headers: list[Headers] | None = None
        if connector.envelope is not None:
            body = await run_yielding(
                decode_content_steps(body, content_encoding, settings.max_body_bytes)
            )
            limits = Limits(settings.max_record_bytes, settings.max_records_per_request)
            unwrapped = unwrap(connector.envelope, body, headers_in or {}, content_type, limits)
            batch, record_headers = unwrapped.records, unwrapped.headers
            self._limiter.admit(connector.id, rate, len(batch))
        else:
            batch = await self._parsed(connector, body, content_type, content_encoding)
        keys = None
        if connector.dedup is not None and self._dedup is not None:
            envelope = connector.envelope
            keys = _Keys(
                request_key(connector.dedup, envelope, headers_in or {}, record_headers),
                record_keys(connector.dedup, envelope, batch, record_headers),
                len(batch),
            )
        all_or_nothing = connector.atomic if atomic is None else atomic
        headers: Headers = [(HEADER_REQUEST_ID, request_id), (HEADER_RECEIVED_AT, str(received_ms))]
        # What a Kafka record leaves a valid record's key and value, beside these headers (and
        # the largest of an envelope's own).
        largest = max(map(headers_size, record_headers), default=0) if record_headers else 0
        room = (
            settings.max_message_bytes
            - BATCH_OVERHEAD
            - RECORD_OVERHEAD
            - headers_size(headers)
            - largest
            - (0 if keys is None else _key_header_size(keys))
        )
        result = await run_yielding(
            codec.encode_steps(
                batch,
                all_or_nothing=all_or_nothing,
                errors_listed=settings.max_errors_listed,
                max_bytes=room,
            )
        )
        del body, batch  # the records are in ``result`` now
        if result.rejected_count and not result.records:
            raise _capped(AllRecordsInvalid(result.errors, unexamined=result.unexamined), settings)
        if result.rejected_count and all_or_nothing:
            raise _capped(RecordsInvalid(result.errors, unexamined=result.unexamined), settings)
        plan = None
        if keys is not None and (keys.request is not None or keys.records is not None):
            planned = await self._plan(connector, codec, result, keys)
            if isinstance(planned, IngestResult):
                return planned
            plan = planned
            result = msgspec.structs.replace(result, records=plan.written)
            record_headers = _with_keys(plan, record_headers, keys.body_records)
        records = await run_yielding(
            self._outgoing(
                connector=connector,
                codec=codec,
                result=result,
                headers=headers,
                record_headers=record_headers,
                request_id=request_id,
                received_ms=received_ms,
                content_type=content_type,
            )
        )
        if plan is None:
            await self._produce(records)
            duplicates: list[DuplicateRecord] = []
        else:
            duplicates = await self._produce_once(connector, plan, records)
        self._metrics.count_records(connector.id, len(result.records), len(result.rejected))
        # Only the listed errors gathered: 50,000 rejected records' errors in one list took 5 ms.
        errors = (error for rejected in result.rejected for error in rejected.errors)
        answer = IngestResult(
            accepted=len(result.records),
            rejected=len(result.rejected),
            schema_id=codec.schema_id,
            schema_version=codec.schema_version,
            errors=list(itertools.islice(errors, self._settings.max_errors_listed)),
            errors_total=sum(len(rejected.errors) for rejected in result.rejected),
            unknown_fields=result.unknown_fields,
        )
        if duplicates:
            answer = msgspec.structs.replace(
                answer, accepted=answer.accepted + len(duplicates), duplicates=duplicates
            )
        del records
        # The request's records freed in steps, not all at once as this frame ends: 100,000 of
        # them (and their errors) took 10-15 ms. Nothing else holds ``result``.
        await run_yielding(release(result.records, result.rejected))
        return answer

    async def _parsed(
        self,
        connector: Connector,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None,
    ) -> RecordBatch:
        settings, rate = self._settings, connector.rate_limit_per_s
        # The rate limit is charged as soon as the record count is known, so that a 429 costs
        # no decoding: a single JSON object before parsing, any other body once parsed.
        known = known_record_count(body, content_type, content_encoding)
        if known is not None:
            self._limiter.admit(connector.id, rate, known)
        # In steps, giving the loop a turn between them: a large body stalls no other request.
        batch = await run_yielding(
            parse_steps(
                body,
                content_type,
                content_encoding,
                max_body_bytes=settings.max_body_bytes,
                max_record_bytes=settings.max_record_bytes,
                max_records=settings.max_records_per_request,
            )
        )
        if known is None:
            self._limiter.admit(connector.id, rate, len(batch))
        return batch

    def _outgoing(
        self,
        *,
        connector: Connector,
        codec: RecordCodec,
        result: EncodeResult,
        headers: Headers,
        record_headers: list[Headers] | None,
        request_id: str,
        received_ms: int,
        content_type: str | None,
    ) -> Steps[_Outgoing]:
        """The request's Kafka records, each within the record limit (the codec sized the valid
        ones); raises ``RejectedRecordTooLarge`` for a rejected record that is not. The rejected
        records are encoded and sized here, in steps of ``STEP_RECORDS`` (none for a small
        request), so that nothing is produced before all are known to fit; the valid ones are
        made as the producer takes them (``_Outgoing``)."""
        limit = self._settings.max_message_bytes
        rejected_values: list[bytes] = []
        pacer = Pacer(len(result.rejected))
        for rejected in result.rejected:
            kept = RejectedRecord(
                connector_id=connector.id,
                request_id=request_id,
                received_at_ms=received_ms,
                schema_id=codec.schema_id,
                schema_version=codec.schema_version,
                content_type=content_type or "",
                record=msgspec.Raw(rejected.raw),
                errors=list(rejected.errors),
            )
            value = _rejected_encoder.encode(kept)
            size = record_size(value, None, 0)
            if size > limit:
                raise RejectedRecordTooLarge(
                    rejected.index, limit, size=size, errors=list(rejected.errors)
                )
            rejected_values.append(value)
            if pacer.due():
                yield
        return _Outgoing(connector, result.records, headers, record_headers, rejected_values)

    async def _plan(
        self, connector: Connector, codec: RecordCodec, result: EncodeResult, keys: _Keys
    ) -> _Plan | IngestResult:
        """Claim the request's keys not known accepted; the answer itself when nothing is left
        to write (a duplicate), else what to write. Raises ``InProgress`` when another attempt
        holds a key (having released this one's)."""
        dedup, cid = self._dedup, connector.id
        assert dedup is not None
        assert connector.dedup is not None
        valid = result.records
        request = None if keys.request is None else request_digest(cid, keys.request)
        digests: list[bytes | None] = [None] * len(valid)
        if keys.records is not None:
            texts = keys.records
            digests = [
                None if texts[index] is None else record_digest(cid, texts[index] or "")
                for index, _key, _value in valid
            ]
        known = {
            d: v for d in {request, *digests} if d is not None and (v := dedup.known(d)) is not None
        }
        if request is not None and request in known:
            return self._duplicate_request(connector, codec, result, request, known[request])
        wanted = [d for d in dict.fromkeys([request, *digests]) if d is not None and d not in known]
        owner, won = "", []
        if wanted:
            claimed = await dedup.claim(wanted)
            owner, won = claimed.owner, claimed.won
            if request is not None and request in claimed.duplicates:
                await dedup.release(owner, won)
                value = claimed.duplicates[request]
                return self._duplicate_request(connector, codec, result, request, value)
            if claimed.in_progress:
                await dedup.release(owner, won)
                raise InProgress(len(claimed.in_progress), IN_PROGRESS_RETRY_S)
            known.update(claimed.duplicates)
        written: list[EncodedRecord] = []
        header_values: list[str] = []
        accept: list[bytes | None] = []
        duplicates: list[tuple[int, int | None]] = []
        same_as: list[tuple[int, int]] = []
        first: dict[bytes, int] = {}
        for record, digest in zip(valid, digests, strict=True):
            index = record[0]
            if digest is not None and digest in known:
                duplicates.append((index, known[digest]))
                continue
            if digest is not None and digest in first:
                same_as.append((index, first[digest]))
                continue
            if digest is not None:
                first[digest] = len(written)
            written.append(record)
            accept.append(digest)
            text = keys.records[index] if keys.records is not None and digest is not None else None
            header_values.append(text or keys.request or "")
        if keys.request is not None and keys.records is None and len(written) > 1:
            # One key for several records: each its own, so that a sink can keep them apart.
            header_values = [f"{keys.request}#{n}" for n in range(len(written))]
        if not written:
            self._metrics.count_duplicates(cid, len(valid))
            await dedup.release(owner, won)  # a request key claimed with nothing to write
            return IngestResult(
                accepted=len(valid),
                rejected=0,
                schema_id=codec.schema_id,
                schema_version=codec.schema_version,
                duplicate=True,
                duplicates=_listed(duplicates, same_as, []),
            )
        request_won = request if request is not None and request in won else None
        return _Plan(owner, won, request_won, written, header_values, accept, duplicates, same_as)

    def _duplicate_request(
        self,
        connector: Connector,
        codec: RecordCodec,
        result: EncodeResult,
        request: bytes,
        count: int,
    ) -> IngestResult:
        """The answer to a request whose request key was accepted: its first delivery's
        ``count`` records, each where it landed (this delivery's valid records, in order)."""
        assert self._dedup is not None
        self._metrics.count_duplicates(connector.id, count)
        listed = []
        for position, (index, _key, _value) in enumerate(result.records[:count]):
            value = self._dedup.known(nth_record_digest(request, position))
            listed.append((index, value))
        return IngestResult(
            accepted=count,
            rejected=0,
            schema_id=codec.schema_id,
            schema_version=codec.schema_version,
            duplicate=True,
            duplicates=_listed(listed, [], []),
        )

    async def _produce_once(
        self, connector: Connector, plan: _Plan, records: Sequence[RecordFields]
    ) -> list[DuplicateRecord]:
        """Produce the plan's records, then their acceptance; the duplicates to answer."""
        dedup, window = self._dedup, connector.dedup
        assert dedup is not None
        assert window is not None
        try:
            landings = await self._produce(records, track=True)
        except BaseException:
            await dedup.release(plan.owner, plan.won)
            raise
        mine = landings[: len(plan.written)]
        entries = []
        if plan.request_digest is not None:
            entries.append(
                dedup.acceptance(
                    plan.owner,
                    plan.request_digest,
                    window_s=window.window_s,
                    landings=mine,
                    request=True,
                )
            )
        won = set(plan.won)
        for digest, landing in zip(plan.accept_digests, mine, strict=True):
            if digest is not None and digest in won:
                entries.append(
                    dedup.acceptance(
                        plan.owner,
                        digest,
                        window_s=window.window_s,
                        landings=[landing],
                        request=False,
                    )
                )
        # Records written, acceptance not: a 503, and the lease lapses (a retry writes again).
        await dedup.accept(entries)
        if plan.duplicates or plan.same_as:
            self._metrics.count_duplicates(connector.id, len(plan.duplicates) + len(plan.same_as))
        return _listed(plan.duplicates, plan.same_as, mine)

    async def _produce(
        self, records: Sequence[RecordFields], *, track: bool = False
    ) -> list[tuple[int, int]]:
        started = time.perf_counter()
        in_flight = self._metrics.in_flight
        delivery = Delivery.on_running_loop()
        if track:
            delivery.track_landings(len(records))
        # One deadline from the moment the records go to the producer to the answer, handing them
        # over included (in slices: the loop serves other requests meanwhile). The producer
        # never waits on a full queue (it refuses at once), and librdkafka keeps retrying long
        # after it (inlet/kafka.py DELIVERY_TIMEOUT_MS): a 503 says "not acknowledged in time",
        # and the records may still be written.
        deadline = asyncio.get_running_loop().time() + self._settings.produce_timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                await run_yielding(self._producer.produce_steps(records, delivery))
                in_flight.inc(len(records))
                try:
                    await delivery.future
                finally:
                    in_flight.dec(len(records))
        except ProduceFailed as exc:
            delivery.future.cancel()  # the answer is given whatever Kafka says later
            raise _produce_error(exc, len(records)) from exc
        except TimeoutError as exc:
            delivery.future.cancel()
            raise KafkaUnavailable(
                f"Kafka did not acknowledge within {self._settings.produce_timeout_s:g} s: "
                f"{_unacknowledged(delivery, len(records))}",
                retry_after_s=_RETRY_AFTER_S,
            ) from exc
        finally:
            self._metrics.produce_seconds.observe(time.perf_counter() - started)
        return delivery.landings or []


def _key_header_size(keys: _Keys) -> int:
    """The most a record's ``HEADER_DEDUP_KEY`` takes (room left for it when sizing records)."""
    longest = max((len(k.encode()) for k in keys.records or () if k is not None), default=0)
    request = 0 if keys.request is None else len(keys.request.encode()) + 12  # and "#<n>"
    return headers_size([(HEADER_DEDUP_KEY, "x" * max(longest, request))])


def _with_keys(plan: _Plan, record_headers: list[Headers] | None, count: int) -> list[Headers]:
    """Each written record's headers (by body index) with its ``HEADER_DEDUP_KEY``."""
    made: list[Headers] = (
        [[] for _ in range(count)] if record_headers is None else list(record_headers)
    )
    for (index, _key, _value), text in zip(plan.written, plan.header_values, strict=True):
        made[index] = [*made[index], (HEADER_DEDUP_KEY, text)]
    return made


def _listed(
    duplicates: list[tuple[int, int | None]],
    same_as: list[tuple[int, int]],
    landings: list[tuple[int, int]],
) -> list[DuplicateRecord]:
    """The answer's ``duplicates``, by index: where each original landed, when known."""
    listed = []
    for index, value in duplicates:
        where = None if value is None else unpack_landing(value)
        listed.append(_duplicate(index, where))
    for index, position in same_as:
        landing = landings[position] if position < len(landings) else (-1, -1)
        listed.append(_duplicate(index, None if landing[0] < 0 else landing))
    return sorted(listed, key=lambda d: d.index)


def _duplicate(index: int, where: tuple[int, int] | None) -> DuplicateRecord:
    if where is None:
        return DuplicateRecord(index)
    return DuplicateRecord(index, partition=where[0], offset=where[1])


class _Outgoing(Sequence[RecordFields]):
    """A request's Kafka records: the valid ones made a slice at a time, as the producer takes
    them (``AsyncProducer.produce_steps``), then the rejected ones.

    Made all at once, a large request's records would live until it is answered, each a tuple
    holding a list (its headers), which the collector never untracks: every full garbage
    collection, which the request's own allocations set off several times, would walk 100,000
    of them, a 10-30 ms stall for every other request each time. A slice's records die as soon
    as they are handed over. ``bench/hostile_bench.py`` measures it."""

    __slots__ = ("_headers", "_record_headers", "_rejected", "_rejected_topic", "_topic", "_valid")

    def __init__(
        self,
        connector: Connector,
        valid: list[EncodedRecord],
        headers: Headers,
        record_headers: list[Headers] | None,
        rejected: list[bytes],
    ) -> None:
        self._topic, self._rejected_topic = connector.topic, connector.rejected_topic
        self._valid = valid
        self._headers = headers
        self._record_headers = record_headers
        self._rejected = rejected

    def __len__(self) -> int:
        return len(self._valid) + len(self._rejected)

    @overload
    def __getitem__(self, index: int) -> RecordFields: ...

    @overload
    def __getitem__(self, index: slice) -> list[RecordFields]: ...

    def __getitem__(self, index: int | slice) -> RecordFields | list[RecordFields]:
        if isinstance(index, slice):
            start, stop, stride = index.indices(len(self))
            if stride != 1:
                raise ValueError("only contiguous slices of a request's records")
            return self._slice(start, stop)
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        return self._slice(position, position + 1)[0]

    def _slice(self, start: int, stop: int) -> list[RecordFields]:
        topic, headers, record_headers = self._topic, self._headers, self._record_headers
        valid = self._valid[start:stop]
        # Plain tuples, not ``OutgoingRecord``s: a third of the time (``RecordFields``).
        made: list[RecordFields] = (
            [(topic, value, key, headers, -1) for _index, key, value in valid]
            if record_headers is None
            else [
                (topic, value, key, headers + record_headers[index], -1)
                for index, key, value in valid
            ]
        )
        count = len(self._valid)
        if stop > count:
            rejected_topic = self._rejected_topic
            made += [
                (rejected_topic, value, None, None, -1)
                for value in self._rejected[max(start - count, 0) : stop - count]
            ]
        return made


def _unacknowledged(delivery: Delivery, total: int) -> str:
    """What a request whose deadline passed may have written: ``queued`` of its ``total`` records
    were handed to the producer (the deadline can pass while a large request is handed over)."""
    if delivery.transactional:
        return (
            f"the request's {total} records are in one transaction, which may still commit: "
            "read_committed consumers will see all of them or none"
        )
    acknowledged, queued = delivery.acknowledged, delivery.queued
    done = f"{_written(acknowledged, total)} acknowledged"
    if queued == total:
        return f"{done}, and the others may still be written"
    return (
        f"{done}; {queued - acknowledged} more were handed to the producer and may still be "
        f"written, the last {total - queued} never will be"
    )


def _written(count: int, total: int) -> str:
    """``count`` of a request's ``total`` records, in words."""
    if count == 0:
        return f"none of the request's {total} records was"
    return (
        f"all {total} of the request's records were"
        if count == total
        else (f"{count} of the request's {total} records were")
    )


def _produce_error(exc: ProduceFailed, total: int) -> InletError:
    """The answer to a failed produce: permanent refusals say so (not retryable); transient ones
    are 503 with Retry-After. Either way ``detail`` says what of the request may be written."""
    if exc.transaction == "aborted":
        outcome = (
            f"the transaction holding the request's {total} records was aborted: "
            "read_committed consumers see none of them"
        )
    elif exc.transaction == "undecided":
        outcome = (
            f"the commit of the transaction holding the request's {total} records did not "
            "complete and may still: read_committed consumers will see all of them or none"
        )
    elif exc.written is not None:  # every record was reported: exactly these were written
        outcome = f"{_written(exc.written, total)} written"
    elif exc.queued:  # refused while queueing: those queued before go on being delivered
        outcome = f"{_written(exc.queued, total)} queued and may still be written"
    else:
        outcome = "nothing of the request was written"
    permanent = refusal(exc.error)
    if permanent is not None:
        return permanent(f"Kafka refused the records: {exc}; {outcome}")
    error = Overloaded if exc.queue_full else KafkaUnavailable
    return error(f"Kafka did not take the records: {exc}; {outcome}", retry_after_s=_RETRY_AFTER_S)


def _capped(error: RecordsInvalid, settings: Settings) -> RecordsInvalid:
    error.max_listed = settings.max_errors_listed
    return error
