"""What the connector page shows, shaped from what the services answer: pure, no I/O.

One shape for both ways the page gets it: the server renders it into the HTML, and the live
endpoint (``GET /console/connectors/{id}/live``) answers it as JSON for ``static/live.js``, which
only puts the texts in place. So a cell reads the same whether the page was loaded or updated.
"""

from __future__ import annotations

from typing import Any

import msgspec

from inlet.model.connectors import Connector, Status, TopicPolicy
from inlet.model.dedup import Dedup
from inlet.model.samples import RejectedSample, SampleRecord
from inlet.model.verify import Verify
from registry.sample_service import Progress, RejectedPage, SamplePage

_encoder = msgspec.json.Encoder()


class Reason(msgspec.Struct, frozen=True):
    index: int  # the record's index in the request that sent it
    field: str  # "" when the record itself was wrong (not an object)
    message: str


class RejectedRow(msgspec.Struct, frozen=True):
    at: str  # partition:offset on the rejected topic
    received_at: str
    record: str  # the record as sent, as JSON text ("" when too large to keep)
    reasons: list[Reason]


class Live(msgspec.Struct, frozen=True, kw_only=True):
    """The page's live part: the count, the sample table, the rejected records, Save."""

    status: Status
    count: int  # valid records kept as samples, at most ``required``
    required: int
    accepted: int  # every record written to the topic so far
    rejected: int  # every record rejected so far
    can_save: bool  # exactly when the service would save
    columns: list[str]
    rows: list[list[str]]  # the first ``required`` valid records, in arrival order
    rejected_rows: list[RejectedRow]  # the most recent ones, newest first


def live(
    connector: Connector, progress: Progress, samples: SamplePage, rejected: RejectedPage
) -> Live:
    columns = [spec.name for spec in connector.fields]
    return Live(
        status=connector.status,
        count=samples.count,
        required=samples.required,
        accepted=progress.counts.accepted,
        rejected=progress.counts.rejected,
        # The service saves from the same count (SampleService.save): the button says no sooner.
        can_save=connector.status != "saved" and samples.count >= samples.required,
        columns=columns,
        rows=[sample_row(columns, record) for record in samples.records],
        rejected_rows=[rejected_row(record) for record in rejected.records],
    )


def progress_text(count: int, required: int) -> str:
    return f"{count} of {required} records received"


def sample_row(columns: list[str], record: SampleRecord) -> list[str]:
    """A record's cells under the user's field names; a record too large to keep shows so."""
    if record.truncated or not isinstance(record.value, dict):
        return ["(too large to show)", *[""] * (len(columns) - 1)] if columns else []
    return [cell(record.value.get(name)) for name in columns]


def rejected_row(record: RejectedSample) -> RejectedRow:
    return RejectedRow(
        at=f"{record.partition}:{record.offset}",
        received_at=record.received_at.isoformat(),
        record="" if record.truncated else _encoder.encode(record.record).decode(),
        reasons=[Reason(e.index, e.field or "", e.message) for e in record.errors],
    )


def cell(value: Any) -> str:
    """A value as a table cell: text as it is, null empty, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _encoder.encode(value).decode()


def deleted_with(connector: Connector, policy: TopicPolicy) -> list[str]:
    """What a delete takes with it besides the connector and its URL (``ConnectorService.delete``):
    the topics and the subject, unless they are kept."""
    if policy == "keep":
        return []
    return [
        f"topic {connector.topic}",
        f"topic {connector.rejected_topic}",
        f"subject {connector.subject} (soft-deleted: schema ids in copied data still resolve)",
    ]


# --- The webhook settings section: what the connector checks, remembers and unwraps. ---


class SecretRow(msgspec.Struct, frozen=True):
    fingerprint: str  # never the secret: only what names it
    added_at: str


class WebhookSettings(msgspec.Struct, frozen=True, kw_only=True):
    scheme: str | None  # None: requests are not signature-checked
    tolerance: str  # "" when the scheme signs no timestamp
    recipe: list[tuple[str, str]]  # the hmac recipe, as (what, value)
    secrets: list[SecretRow]
    dedup_source: str  # "" when retried deliveries are written again
    dedup_window: str
    envelope: str | None


def webhook_settings(connector: Connector) -> WebhookSettings:
    verify, dedup = connector.verify, connector.dedup
    return WebhookSettings(
        scheme=None if verify is None else verify.scheme,
        tolerance=_tolerance(verify),
        recipe=[] if verify is None else _recipe(verify),
        secrets=[]
        if verify is None
        else [SecretRow(s.fingerprint, s.added_at.isoformat()) for s in verify.secrets],
        dedup_source="" if dedup is None else dedup_source(dedup),
        dedup_window="" if dedup is None else duration(dedup.window_s),
        envelope=connector.envelope,
    )


def dedup_source(dedup: Dedup) -> str:
    sources = []
    if dedup.header is not None:
        sources.append(f"the request's {dedup.header} header")
    if dedup.pointer is not None:
        sources.append(f"each record's {dedup.pointer}")
    if dedup.envelope:
        sources.append("the envelope's ids")
    return " and ".join(sources)


def duration(seconds: int) -> str:
    """``86400`` → ``86400 s (1 day)``: the number the API takes, and what it means."""
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{seconds} s ({count} {unit}{'' if count == 1 else 's'})"
    return f"{seconds} s"


def _tolerance(verify: Verify | None) -> str:
    if verify is None or not verify.timestamped:
        return ""
    return duration(verify.tolerance_s)


def _recipe(verify: Verify) -> list[tuple[str, str]]:
    if verify.scheme != "hmac":
        return []
    recipe = [
        ("header", verify.header or ""),
        ("algorithm", verify.algorithm),
        ("encoding", verify.encoding),
        ("prefix", verify.prefix or "(none)"),
        ("signed", verify.signed),
    ]
    if verify.timestamp_header:
        recipe.append(("timestamp header", verify.timestamp_header))
    return recipe
