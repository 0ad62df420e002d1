"""Connectors' lifecycle: create, change, duplicate, rotate the token, delete.

Every change is decided on caught-up state inside ``StateLog.transact``: a connector's record and
the schema version it needs are written in one transaction, so a connector never points at a
schema that is not there, and two instances never hand out one name twice. Kafka topics are the
one effect outside the log, so they are ordered around it:

* Create (and duplicate): the topics first, then the transaction. If the transaction fails (the
  name was taken meanwhile, Kafka failed...) the topics are deleted again: nothing is left behind.
* Delete: the tombstone first, so the gateway refuses the token before the topics go; then the
  topics, unless the connector's ``on_delete`` (or the request's ``topics``) says ``keep``. The
  subject follows the topics: deleted topics take their subject with them (a soft delete, so
  schema ids in data copied elsewhere still resolve; Confluent's API can delete it permanently);
  kept topics keep a live subject, because their data still needs it.

Schemas go through a ``SchemaStore`` (``registry/schema_store.py``). Inlet's own registry joins the
transaction; an external one (``schema_registry_url``) is a second effect outside the log, ordered
like the topics: the schema is registered before the transaction and that registration is undone
if the transaction fails; the subject is deleted after the tombstone, with the topics.

Ingest tokens are shown once, when made; only their hash is stored.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Annotated, NamedTuple

import msgspec

from inlet.errors import (
    IncompatibleSchema,
    InletError,
    InvalidConnector,
    Problem,
)
from inlet.model.avro import avro_schema, schema_json
from inlet.model.connectors import (
    Connector,
    ConnectorState,
    Envelope,
    TopicPolicy,
    connector_record_value,
    new_connector_id,
    utc_now,
)
from inlet.model.dedup import (
    Dedup,
    DedupRequest,
    dedup_problems,
    stored_dedup,
    stored_problems,
)
from inlet.model.fields import (
    FieldSpec,
    avro_name,
    field_problems,
    name_problem,
    validate_connector_name,
)
from inlet.model.verify import (
    MAX_SECRETS,
    StoredSecret,
    Verify,
    VerifyRequest,
    resealed,
    seal_secret,
    secrets_problems,
    stored_verify,
    verify_problems,
)
from inlet.model.verify import (
    fingerprint as fingerprint_of,
)
from inlet.sealing import SecretBox
from inlet.settings import Settings
from inlet.statelog.fold import Record, StateLog
from inlet.tokens import INGEST_PREFIX, new_token, token_hash
from inlet.topics import CONNECTORS_TOPIC, connector_topic, rejected_topic, value_subject
from registry.cursors import CursorCodec
from registry.errors import ConnectorInUse, NameTaken, VerifySecretNotFound
from registry.schema_store import Registration, SchemaStore
from registry.topic_admin import TopicAdmin, TopicSpec

log = logging.getLogger("inlet.registry.connectors")

INGEST_PATH = "/v1/ingest/"
# Where the token stands in an ingest URL shown without it.
MASKED_TOKEN = INGEST_PREFIX + "\u2022" * 8
# A connector name that cannot become an Avro name ("日本", "---") gets this record name instead.
FALLBACK_RECORD_NAME = "Record"
MAX_GRACE_PERIOD_S = 86_400
# Records that failed validation go here: few, read rarely and in order, so one partition does.
REJECTED_TOPIC_PARTITIONS = 1


# --- What callers send. Decoded by the admin API with unknown properties refused. ---


class NewConnector(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    fields: list[FieldSpec]
    key_field: str | None = None
    reject_unknown_fields: bool = False
    atomic: bool = False
    rate_limit_per_s: float | None = None
    partitions: int | None = None  # None: the ``topic_partitions`` setting
    replication_factor: int | None = None  # None: the ``topic_replication_factor`` setting
    on_delete: TopicPolicy = "delete"
    verify: VerifyRequest | None = None
    envelope: Envelope | None = None  # None: the body holds the records
    dedup: DedupRequest | None = None  # None: a retried delivery is written again


class ConnectorChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A PATCH: what is set changes; ``null`` clears ``key_field`` and ``rate_limit_per_s``."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    fields: list[FieldSpec] | msgspec.UnsetType = msgspec.UNSET
    key_field: str | msgspec.UnsetType | None = msgspec.UNSET
    reject_unknown_fields: bool | msgspec.UnsetType = msgspec.UNSET
    atomic: bool | msgspec.UnsetType = msgspec.UNSET
    rate_limit_per_s: float | msgspec.UnsetType | None = msgspec.UNSET
    # Accepted only unchanged: the topic exists; saying why beats "unknown field".
    partitions: int | msgspec.UnsetType = msgspec.UNSET
    replication_factor: int | msgspec.UnsetType = msgspec.UNSET
    on_delete: TopicPolicy | msgspec.UnsetType = msgspec.UNSET
    # An object replaces the setting (``secrets`` left out: the current ones, same scheme);
    # null removes it. Applied by ``ConnectorService.update``, which seals the secrets.
    verify: VerifyRequest | msgspec.UnsetType | None = msgspec.UNSET
    envelope: Envelope | msgspec.UnsetType | None = msgspec.UNSET  # null: records unwrapped
    # An object replaces the setting (presets resolved against the changed connector); null
    # removes it.
    dedup: DedupRequest | msgspec.UnsetType | None = msgspec.UNSET


class Issued(NamedTuple):
    """A connector with a token just made: the only time the token (and its URL) is known."""

    connector: Connector
    token: str
    ingest_url: str


# --- The service. ---


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    """Where a page ended: the sort key of its last connector (creation time, then id)."""

    created_at: Annotated[datetime, msgspec.Meta(tz=True)]
    id: str


_CURSORS = CursorCodec(_Cursor)


class ConnectorService:
    def __init__(
        self,
        settings: Settings,
        connector_state: ConnectorState,
        schemas: SchemaStore,
        log: StateLog,
        topics: TopicAdmin,
        *,
        clock: Callable[[], datetime] = utc_now,
        pipelines_of: Callable[[str], list[str]] = lambda _connector_id: [],
        box: SecretBox | None = None,
    ) -> None:
        self._settings = settings
        self._box = box  # seals ``verify`` secrets (inlet/sealing.py)
        self._pipelines_of = pipelines_of  # the ids of the pipelines reading a connector
        self._state = connector_state
        self._schemas = schemas
        self._log = log
        self._topics = topics
        self._clock = clock

    # --- Reads: from local state, like the schema registry's reads. ---

    async def get(self, connector_id: str) -> Connector:
        return await self._state.confirmed(connector_id, self._log)

    async def list_page(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Connector], str | None]:
        """A page of connectors in creation order, and the cursor of the next page (or None)."""
        connectors = self._state.all()
        if cursor is not None:
            after = _CURSORS.decode(cursor)
            connectors = [
                c for c in connectors if (c.created_at, c.id) > (after.created_at, after.id)
            ]
        page = connectors[:limit]
        if len(connectors) <= limit:
            return page, None
        return page, _CURSORS.encode(_Cursor(page[-1].created_at, page[-1].id))

    # --- Writes. ---

    async def create(self, new: NewConnector) -> Issued:
        partitions = self._settings.topic_partitions if new.partitions is None else new.partitions
        replication = new.replication_factor
        if replication is None:
            replication = self._settings.topic_replication_factor
        problems = [
            *validate_connector_name(new.name),
            *field_problems(new.fields, new.key_field),
            *_topic_problems(partitions, replication),
            *_rate_problems(new.rate_limit_per_s),
            *_new_verify_problems(new.verify),
            *_new_dedup_problems(new),
        ]
        if problems:
            raise InvalidConnector("invalid connector", problems=problems)
        # What the server makes (id, token hash, topics, subject, times) _provision fills in.
        now = self._clock()
        template = Connector(
            id="",
            name=new.name,
            description=new.description,
            fields=new.fields,
            key_field=new.key_field,
            topic="",
            rejected_topic="",
            subject="",
            record_name=_record_name(new.name),
            schema_id=0,
            schema_version=0,
            token_hash="",
            reject_unknown_fields=new.reject_unknown_fields,
            atomic=new.atomic,
            rate_limit_per_s=new.rate_limit_per_s,
            partitions=partitions,
            replication_factor=replication,
            on_delete=new.on_delete,
            envelope=new.envelope,
            dedup=_new_dedup(new),
            created_at=now,
            updated_at=now,
        )
        request = new.verify
        if request is None:
            return await self._provision(template)
        secrets = [] if isinstance(request.secrets, msgspec.UnsetType) else request.secrets

        def sealed(connector_id: str) -> Verify:
            stored = [self._seal(secret, connector_id, now) for secret in secrets]
            return stored_verify(request, stored)

        return await self._provision(template, sealed)

    async def duplicate(self, connector_id: str, name: str) -> Issued:
        """A new connector with the fields and settings of ``connector_id``, awaiting samples.

        The record name is the source's, so the schema text is the same and keeps its global id.
        """
        source = self._state.require(connector_id)
        problems = validate_connector_name(name)
        if problems:
            raise InvalidConnector("invalid connector name", problems=problems)
        template = msgspec.structs.replace(
            source,
            name=name,
            status="awaiting_samples",
            previous_token_hash=None,
            previous_token_expires_at=None,
            verify=None,
        )
        if source.verify is None:
            return await self._provision(template)
        verify = source.verify

        def sealed(connector_id: str) -> Verify:
            return resealed(verify, source_id=source.id, target_id=connector_id, box=self._sealer)

        return await self._provision(template, sealed)

    async def update(self, connector_id: str, changes: ConnectorChanges) -> Connector:
        """Apply a PATCH; new fields register a new schema version if compatible (409 if not)."""
        registration = None
        if changes.fields is not msgspec.UNSET:
            # The schema depends only on the fields and the record name, which never changes, so
            # it can be prepared before the transaction (an external registry registers it now).
            registration = await self._prepare_schema(
                _changed(self._state.require(connector_id), changes)
            )

        def decide() -> tuple[list[Record], Connector]:
            current = self._state.require(connector_id)
            changed = _changed(current, changes)
            if changes.verify is not msgspec.UNSET:
                verify = self._changed_verify(current, changes.verify)
                changed = msgspec.structs.replace(changed, verify=verify)
            if changed == current:
                return [], current  # nothing to write, and updated_at stays
            if changed.name.casefold() != current.name.casefold():
                self._require_free_name(changed.name)
            records: list[Record] = []
            if changed.fields != current.fields:
                if registration is None:  # fields change only when the PATCH sets them
                    raise RuntimeError("the new schema was not prepared")
                records, schema_id, version = self._plan_schema(changed, registration)
                changed = msgspec.structs.replace(
                    changed, schema_id=schema_id, schema_version=version
                )
            changed = msgspec.structs.replace(changed, updated_at=self._clock())
            return [*records, _connector_record(changed)], changed

        try:
            return await self._log.transact(decide)
        except BaseException:
            if registration is not None:
                await self._undo_update(connector_id, registration)
            raise

    async def add_secret(self, connector_id: str, secret: str) -> Connector:
        """One more secret for the connector's ``verify`` (a rotation's first step: requests
        signed with either secret verify until the old one is retired)."""

        def decide() -> tuple[list[Record], Connector]:
            current = self._state.require(connector_id)
            verify = _verify_of(current)
            field = "secret"
            problems = secrets_problems(verify.scheme, [secret], field=field)
            if any(s.fingerprint == fingerprint_of(secret) for s in verify.secrets):
                problems.append(Problem(field=field, reason="the connector has it already"))
            if len(verify.secrets) >= MAX_SECRETS:
                reason = f"the connector has {MAX_SECRETS} secrets already: retire one first"
                problems.append(Problem(field=field, reason=reason))
            if problems:
                raise InvalidConnector("invalid secret", problems=problems)
            now = self._clock()
            stored = self._seal(secret, connector_id, now)
            verify = msgspec.structs.replace(verify, secrets=[*verify.secrets, stored])
            changed = msgspec.structs.replace(current, verify=verify, updated_at=now)
            return [_connector_record(changed)], changed

        return await self._log.transact(decide)

    async def retire_secret(self, connector_id: str, fingerprint: str) -> Connector:
        """Drop the secret with ``fingerprint`` (a rotation's last step). The last secret stays:
        to stop verifying, PATCH ``verify`` to null."""

        def decide() -> tuple[list[Record], Connector]:
            current = self._state.require(connector_id)
            verify = _verify_of(current)
            kept = [s for s in verify.secrets if s.fingerprint != fingerprint]
            if len(kept) == len(verify.secrets):
                raise VerifySecretNotFound(
                    "no secret of the connector has this fingerprint",
                    problems=[Problem(field="fingerprint", reason="not among the secrets")],
                )
            if not kept:
                reason = "the last secret: add another first, or PATCH verify to null"
                problems = [Problem(field="fingerprint", reason=reason)]
                raise InvalidConnector("cannot retire the last secret", problems=problems)
            verify = msgspec.structs.replace(verify, secrets=kept)
            changed = msgspec.structs.replace(current, verify=verify, updated_at=self._clock())
            return [_connector_record(changed)], changed

        return await self._log.transact(decide)

    async def rotate_token(self, connector_id: str, grace_period_s: int = 0) -> Issued:
        """A new token; the old one stops now, or keeps working for ``grace_period_s`` seconds.

        Only one previous token is kept: rotating again within a grace period ends the older one.
        """
        if not 0 <= grace_period_s <= MAX_GRACE_PERIOD_S:
            reason = f"must be between 0 and {MAX_GRACE_PERIOD_S}"
            problems = [Problem(field="grace_period_s", reason=reason)]
            raise InvalidConnector("invalid grace period", problems=problems)
        token = new_token(INGEST_PREFIX)

        def decide() -> tuple[list[Record], Connector]:
            current = self._state.require(connector_id)
            now = self._clock()
            previous, expires = None, None
            if grace_period_s > 0:
                previous, expires = current.token_hash, now + timedelta(seconds=grace_period_s)
            rotated = msgspec.structs.replace(
                current,
                token_hash=token_hash(token),
                previous_token_hash=previous,
                previous_token_expires_at=expires,
                updated_at=now,
            )
            return [_connector_record(rotated)], rotated

        connector = await self._log.transact(decide)
        return Issued(connector, token, self._ingest_url(token))

    async def delete(self, connector_id: str, topics: TopicPolicy | None = None) -> None:
        """Delete the connector; its topics and subject too unless the policy is ``keep``."""

        def decide() -> tuple[list[Record], tuple[Connector, TopicPolicy]]:
            connector = self._state.require(connector_id)
            pipelines = self._pipelines_of(connector.id)
            if pipelines:  # decided on caught-up state: no pipeline can slip in meanwhile
                raise ConnectorInUse(
                    f"connector {connector.id!r} feeds {len(pipelines)} pipeline(s); "
                    "delete them first",
                    problems=[
                        Problem(field="pipelines", reason=f"pipeline {pipeline_id!r} reads it")
                        for pipeline_id in pipelines
                    ],
                )
            policy = topics or connector.on_delete
            records = [Record(CONNECTORS_TOPIC, connector.id.encode(), None)]
            if policy == "delete":
                records += self._schemas.plan_delete_subject(connector.subject)
            return records, (connector, policy)

        connector, policy = await self._log.transact(decide)
        if policy == "delete":
            await self._discard_topics(connector)
            await self._discard_subject(connector)

    # --- Helpers. ---

    async def _provision(
        self, template: Connector, verify: Callable[[str], Verify] | None = None
    ) -> Issued:
        """Make ``template`` a new connector: id, token, topics, schema version, record; its
        ``verify`` made by ``verify`` for the new id (the secrets are sealed bound to it)."""
        self._require_free_name(template.name)  # early, so a taken name creates no topics
        connector_id = new_connector_id()
        if verify is not None:
            template = msgspec.structs.replace(template, verify=verify(connector_id))
        token = new_token(INGEST_PREFIX)
        topic = connector_topic(connector_id)
        now = self._clock()
        draft = msgspec.structs.replace(
            template,
            id=connector_id,
            topic=topic,
            rejected_topic=rejected_topic(connector_id),
            subject=value_subject(topic),
            token_hash=token_hash(token),
            created_at=now,
            updated_at=now,
        )
        await self._topics.create(
            [
                TopicSpec(draft.topic, draft.partitions, draft.replication_factor),
                TopicSpec(
                    draft.rejected_topic, REJECTED_TOPIC_PARTITIONS, draft.replication_factor
                ),
            ]
        )

        registration = None
        try:
            registration = await self._prepare_schema(draft)
            connector = await self._log.transact(
                functools.partial(self._decide_create, draft, registration)
            )
        except BaseException:
            await self._undo_create(draft, registration)
            raise
        return Issued(connector, token, self._ingest_url(token))

    def _decide_create(
        self, draft: Connector, registration: Registration
    ) -> tuple[list[Record], Connector]:
        self._require_free_name(draft.name)  # again: another instance may have taken it
        records, schema_id, version = self._plan_schema(draft, registration)
        connector = msgspec.structs.replace(draft, schema_id=schema_id, schema_version=version)
        return [*records, _connector_record(connector)], connector

    async def _undo_create(self, draft: Connector, registration: Registration | None) -> None:
        """After a failed create: delete its topics and schema, unless it landed after all."""
        if not await self._synced("create", {"topics": [draft.topic, draft.rejected_topic]}):
            return
        if self._state.get(draft.id) is None:
            await self._discard_topics(draft)
            if registration is not None:
                await self._schemas.undo(registration)

    async def _undo_update(self, connector_id: str, registration: Registration) -> None:
        """After a failed PATCH: undo its schema registration, unless the write landed after all."""
        if not registration.created:
            return
        if not await self._synced("update", {"subject": registration.subject}):
            return
        current = self._state.get(connector_id)
        if current is None or current.schema_version != registration.version:
            await self._schemas.undo(registration)

    async def _synced(self, what: str, kept: dict[str, object]) -> bool:
        """Whether the state caught up, so that it says if a failed write landed after all."""
        try:
            await self._log.sync()
        except InletError:
            # A confirmation that timed out may still commit; a connector without its topics or
            # schema would be worse than unused ones, which the log line names.
            log.warning("%s failed with an unknown outcome; keeping what it made", what, extra=kept)
            return False
        return True

    async def _discard_subject(self, connector: Connector) -> None:
        # Best effort, like the topics; the log line names the subject to delete by hand.
        try:
            await self._schemas.finish_delete_subject(connector.subject)
        except Exception:
            log.exception("could not delete the subject", extra={"subject": connector.subject})

    async def _discard_topics(self, connector: Connector) -> None:
        # Best effort: the connector is already gone (or never was), so failing the request would
        # only invite a retry that cannot help. The log line names what to delete by hand.
        names = [connector.topic, connector.rejected_topic]
        try:
            await self._topics.delete(names)
        except Exception:
            log.exception("could not delete topics", extra={"topics": names})

    async def _prepare_schema(self, connector: Connector) -> Registration:
        schema_text = schema_json(avro_schema(connector.record_name, connector.fields))
        with _explained(connector.subject):
            return await self._schemas.prepare(connector.subject, schema_text)

    def _plan_schema(
        self, connector: Connector, registration: Registration
    ) -> tuple[list[Record], int, int]:
        with _explained(connector.subject):
            return self._schemas.plan(registration)

    @property
    def _sealer(self) -> SecretBox:
        if self._box is None:
            raise RuntimeError("this connector service was made without a secret box")
        return self._box

    def _seal(self, secret: str, connector_id: str, now: datetime) -> StoredSecret:
        return seal_secret(secret, connector_id=connector_id, box=self._sealer, now=now)

    def _changed_verify(self, current: Connector, request: VerifyRequest | None) -> Verify | None:
        """The ``verify`` a PATCH makes: ``request`` stored, or none."""
        if request is None:
            return None
        problems = verify_problems(request)
        kept = current.verify
        keeps = isinstance(request.secrets, msgspec.UnsetType)
        if keeps and (kept is None or kept.scheme != request.scheme):
            reason = "required (the current secrets are kept only for the same scheme)"
            problems.append(Problem(field="verify.secrets", reason=reason))
        if problems:
            raise InvalidConnector("invalid verify setting", problems=problems)
        if isinstance(request.secrets, msgspec.UnsetType) and kept is not None:
            return stored_verify(request, kept.secrets)
        now = self._clock()
        secrets = [] if isinstance(request.secrets, msgspec.UnsetType) else request.secrets
        return stored_verify(request, [self._seal(s, current.id, now) for s in secrets])

    def _require_free_name(self, name: str) -> None:
        if self._state.by_name(name) is not None:
            raise NameTaken(
                f"a connector named {name!r} already exists",
                problems=[Problem(field="name", reason="taken (names are case-insensitive)")],
            )

    def ingest_url(self, token: str | None) -> str:
        """The ingest URL of ``token``; of none, the URL with the token masked (as the console
        shows it once the token was shown: only its hash is stored)."""
        return self._ingest_url(MASKED_TOKEN if token is None else token)

    def _ingest_url(self, token: str) -> str:
        return self._settings.gateway_url.rstrip("/") + INGEST_PATH + token


@contextlib.contextmanager
def _explained(subject: str) -> Iterator[None]:
    """IncompatibleSchema in the admin API's terms: the fields, and one problem per reason."""
    try:
        yield
    except IncompatibleSchema as exc:
        problems = [Problem(field="fields", reason=reason) for reason in exc.reasons]
        raise IncompatibleSchema(
            f"the new fields are incompatible with subject {subject!r}: "
            "under its compatibility level, the schema cannot follow the current one",
            problems=problems,
        ) from exc


def _changed(current: Connector, changes: ConnectorChanges) -> Connector:
    """``current`` with ``changes`` applied; InvalidConnector listing every problem."""
    updates = {
        name: value
        for name in changes.__struct_fields__
        # ``verify`` needs sealing: ``ConnectorService.update`` applies it.
        if (value := getattr(changes, name)) is not msgspec.UNSET
        and name not in ("verify", "dedup")
    }
    problems: list[Problem] = []
    for fixed in ("partitions", "replication_factor"):
        if fixed in updates and updates.pop(fixed) != getattr(current, fixed):
            reason = "cannot be changed: the topic exists (duplicate the connector instead)"
            problems.append(Problem(field=fixed, reason=reason))
    changed = msgspec.structs.replace(current, **updates)
    if "name" in updates:
        problems += validate_connector_name(changed.name)
    if "fields" in updates or "key_field" in updates:
        problems += field_problems(changed.fields, changed.key_field)
    if "rate_limit_per_s" in updates:
        problems += _rate_problems(changed.rate_limit_per_s)
    changed, dedup_problems_found = _changed_dedup(changed, changes)
    problems += dedup_problems_found
    if problems:
        raise InvalidConnector("invalid connector changes", problems=problems)
    return changed


def _scheme(verify: VerifyRequest | Verify | None) -> str | None:
    return None if verify is None else verify.scheme


def _new_dedup_problems(new: NewConnector) -> list[Problem]:
    if new.dedup is None:
        return []
    return dedup_problems(new.dedup, scheme=_scheme(new.verify), envelope=new.envelope)


def _new_dedup(new: NewConnector) -> Dedup | None:
    if new.dedup is None:
        return None
    return stored_dedup(new.dedup, scheme=_scheme(new.verify), envelope=new.envelope)


def _changed_dedup(
    changed: Connector, changes: ConnectorChanges
) -> tuple[Connector, list[Problem]]:
    """``changed`` with the PATCH's ``dedup``, its presets resolved against the changed
    connector (``verify`` as the PATCH sets it); or the problems."""
    request = changes.dedup
    if request is msgspec.UNSET:
        if changed.dedup is None:
            return changed, []
        return changed, stored_problems(changed.dedup, envelope=changed.envelope)
    if request is None:
        return msgspec.structs.replace(changed, dedup=None), []
    verify = changes.verify if changes.verify is not msgspec.UNSET else changed.verify
    scheme, envelope = _scheme(verify), changed.envelope
    problems = dedup_problems(request, scheme=scheme, envelope=envelope)
    if problems:
        return changed, problems
    dedup = stored_dedup(request, scheme=scheme, envelope=envelope)
    return msgspec.structs.replace(changed, dedup=dedup), []


def _new_verify_problems(request: VerifyRequest | None) -> list[Problem]:
    if request is None:
        return []
    problems = verify_problems(request)
    if isinstance(request.secrets, msgspec.UnsetType):
        problems.append(Problem(field="verify.secrets", reason="required"))
    return problems


def _verify_of(connector: Connector) -> Verify:
    if connector.verify is None:
        reason = "the connector verifies no signatures: PATCH it with a verify setting first"
        raise InvalidConnector(
            "no verify setting", problems=[Problem(field="verify", reason=reason)]
        )
    return connector.verify


def _topic_problems(partitions: int, replication_factor: int) -> list[Problem]:
    problems: list[Problem] = []
    if partitions < 1:
        problems.append(Problem(field="partitions", reason="must be at least 1"))
    if replication_factor < 1 and replication_factor != -1:
        reason = "must be at least 1, or -1 for the broker's default"
        problems.append(Problem(field="replication_factor", reason=reason))
    return problems


def _rate_problems(rate_limit_per_s: float | None) -> list[Problem]:
    if rate_limit_per_s is None or rate_limit_per_s > 0:
        return []
    return [Problem(field="rate_limit_per_s", reason="must be more than 0 (or null for no limit)")]


def _record_name(connector_name: str) -> str:
    # Fixed at creation and stored: renaming must not change the schema (a new record name would
    # make an incompatible one).
    if name_problem(connector_name) is None:
        return avro_name(connector_name)
    return FALLBACK_RECORD_NAME


def _connector_record(connector: Connector) -> Record:
    return Record(CONNECTORS_TOPIC, connector.id.encode(), connector_record_value(connector))
