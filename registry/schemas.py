"""The schema registry service: Confluent Schema Registry semantics over ``SchemaState``.

Every write goes through ``StateLog.transact``: its decision function reads caught-up state, raises
a domain error or returns the ``_schemas`` records to write. Reads answer from the local state
without waiting for the log, as Confluent's followers do; this instance's own writes are always
visible. A read that finds nothing answers "not found" only once the state has caught up with the
log (``_read``), else ``StateUnavailable``: never a confident 404 from a fold that is behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import fastavro
import msgspec
from fastavro.schema import SchemaParseException, UnknownType

from inlet.errors import (
    IncompatibleSchema,
    InvalidSchema,
    InvalidVersion,
    SchemaNotFound,
    SchemaVersionNotSoftDeleted,
    SchemaVersionSoftDeleted,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
)
from inlet.model.schemas import (
    AVRO,
    Latest,
    References,
    SchemaReference,
    SchemaState,
    SchemaVersion,
    StoredSchema,
    canonical_form,
    canonical_json,
    config_record,
    delete_subject_record,
    mode_record,
    schema_record,
    schema_tombstone,
)
from inlet.statelog.fold import Record, StateLog, confirm_absent
from registry.avro_rules import check_avro
from registry.compat import (
    DEFAULT_LEVEL,
    CompatibilityLevel,
    WithReferences,
    check,
    parse_level,
    reader_writer_problems,
)
from registry.errors import (
    InvalidMode,
    OperationNotPermitted,
    ReferenceExists,
    SubjectCompatibilityNotConfigured,
    SubjectModeNotConfigured,
    UnresolvedReference,
)

T = TypeVar("T")

SCHEMA_TYPES = (AVRO,)
# Confluent's modes: IMPORT takes schemas with the ids and versions they had elsewhere.
READWRITE, READONLY, IMPORT = "READWRITE", "READONLY", "IMPORT"
MODES = (READWRITE, READONLY, IMPORT)
# What a read raises when the local state does not have what it names.
_NOT_FOUND = (
    SchemaNotFound,
    SubjectNotFound,
    VersionNotFound,
    SubjectCompatibilityNotConfigured,
    SubjectModeNotConfigured,
    UnresolvedReference,
)
_MAX_VERSION = 2**31 - 1
_VERSION_PATTERN = re.compile(r"-?[0-9]+")
_MAX_REFERENCE_DEPTH = 32  # references of references...: a bound, as for nesting


@dataclass(frozen=True)
class _Parsed:
    """A valid schema: its JSON, its references (versions resolved) and what they resolve to."""

    schema: object
    references: References = ()
    documents: tuple[object, ...] = ()  # the referenced schemas' JSON, dependencies first

    @property
    def checkable(self) -> object:
        """What ``registry.compat`` takes: the schema with its references' named types."""
        return WithReferences(self.schema, self.documents) if self.documents else self.schema


def parse_version(text: str) -> int | Latest:
    """A version as Confluent's API spells it: ``latest``, ``-1`` (the same) or 1 … 2^31-1."""
    if text == "latest":
        return "latest"
    number = int(text) if _VERSION_PATTERN.fullmatch(text) else 0
    if number == -1:
        return "latest"
    if not 1 <= number <= _MAX_VERSION:
        raise InvalidVersion(
            f"The specified version '{text}' is not a valid version id. "
            'Allowed values are between [1, 2^31-1] and the string "latest"'
        )
    return number


class SchemaRegistry:
    def __init__(self, state: SchemaState, log: StateLog) -> None:
        self._state = state
        self._log = log

    # --- Schemas and subjects. ---

    async def register(
        self,
        subject: str,
        schema_text: str,
        schema_type: str = AVRO,
        *,
        normalize: bool = False,
        references: Sequence[SchemaReference] = (),
        schema_id: int | None = None,
        version: int | None = None,
    ) -> int:
        """Register ``schema_text`` under ``subject``; the schema's global id.

        A schema the subject already has (live) answers its id and writes nothing. Stored is Avro's
        own text of the schema (``canonical_json``), as Confluent stores it, with or without
        ``normalize``. References resolve on the caught-up state, inside the decision. An explicit
        ``schema_id`` or ``version`` (Confluent's import) needs IMPORT.
        """
        early = None if references else self._parse(schema_text, schema_type, ())
        if early is not None and (known := await self._registered(subject, early)) is not None:
            return known

        def decide() -> tuple[list[Record], int]:
            parsed = early or self._parse(schema_text, schema_type, references)
            if schema_id is not None or version is not None:
                records, given_id, _ = self._plan_import(subject, parsed, schema_id, version)
                return records, given_id
            records, new_id, _ = self._plan(subject, schema_text, parsed, normalize=normalize)
            return records, new_id

        return await self._log.transact(decide)

    async def _registered(self, subject: str, parsed: _Parsed) -> int | None:
        """The id of ``parsed`` if ``subject`` has it live on state caught up with the log.

        Then registering writes nothing, so it need not take the writer nor open a transaction
        (Confluent answers the id the same way). The state is caught up first because another
        instance may have deleted the version meanwhile; a schema this instance does not know in
        the subject is left to ``transact``, which catches up anyway.
        """
        canonical, refs = canonical_json(parsed.schema), parsed.references
        if self._state.lookup(subject, canonical, references=refs) is None:
            return None
        await self._log.sync()
        found = self._state.lookup(subject, canonical, references=refs)
        return None if found is None else found.schema_id

    def plan_register(
        self, subject: str, schema_text: str, *, normalize: bool = False
    ) -> tuple[list[Record], int, int]:
        """What registering ``schema_text`` under ``subject`` writes: records, id and version.

        Pure: call it inside a ``StateLog.transact`` decision (on caught-up state) and write the
        records in the same transaction, so other writes (a connector's record) commit with them.
        A schema the subject already has (live) plans no records and answers its id and version.
        """
        parsed = self._parse(schema_text, AVRO, ())
        return self._plan(subject, schema_text, parsed, normalize=normalize)

    def _plan(
        self, subject: str, schema_text: str, parsed: _Parsed, *, normalize: bool
    ) -> tuple[list[Record], int, int]:
        state = self._state
        canonical = canonical_json(parsed.schema)
        refs = parsed.references
        if (existing := state.lookup(subject, canonical, references=refs)) is not None:
            return [], existing.schema_id, existing.version
        self._require_mode(subject, READWRITE, "read-write")
        live = [self._checkable(v) for v in self._live(subject)]
        reasons = check(self._level(subject), parsed.checkable, live)
        if reasons:
            raise IncompatibleSchema(
                "Schema being registered is incompatible with an earlier schema for subject "
                f'"{subject}", details: [{"; ".join(reasons)}]',
                reasons=reasons,
            )
        schema_id = state.id_for(canonical, references=refs)
        stored = None if schema_id is None else state.schema_by_id(schema_id)
        if schema_id is None or (
            stored is not None
            and (canonical_form(stored.schema) != canonical or stored.references != refs)
        ):
            schema_id, stored = state.next_id(), None  # a new id is stored with this schema's text
        # One id, one text: the first registration's (older logs may hold a text as sent).
        text = canonical if stored is None else stored.schema
        # Versions only grow, past soft-deleted ones too (Confluent's rule).
        number = max(state.versions(subject, deleted=True), default=0) + 1
        version = SchemaVersion(subject, number, schema_id, text, references=refs)
        return [schema_record(version)], schema_id, number

    def _plan_import(
        self, subject: str, parsed: _Parsed, schema_id: int | None, version: int | None
    ) -> tuple[list[Record], int, int]:
        """Confluent's import: the schema under the id and version it had elsewhere, unchecked
        for compatibility; an id or version already taken by another schema is refused."""
        state = self._state
        self._require_mode(subject, IMPORT, "import")
        canonical = canonical_json(parsed.schema)
        refs = parsed.references
        if schema_id is None:
            known = state.id_for(canonical, references=refs)
            schema_id = state.next_id() if known is None else known
        stored = state.schema_by_id(schema_id)
        if stored is not None and (
            canonical_form(stored.schema) != canonical or stored.references != refs
        ):
            raise OperationNotPermitted(
                f"Overwrite new schema with id {schema_id} is not permitted."
            )
        number = version or max(state.versions(subject, deleted=True), default=0) + 1
        taken = state.get_version(subject, number, deleted=True)
        if taken is not None:
            if taken.schema_id == schema_id:
                return [], schema_id, number
            raise OperationNotPermitted(
                f"Overwrite new schema with version {number} is not permitted."
            )
        text = canonical if stored is None else stored.schema
        record = schema_record(SchemaVersion(subject, number, schema_id, text, references=refs))
        return [record], schema_id, number

    async def lookup(
        self,
        subject: str,
        schema_text: str,
        schema_type: str = AVRO,
        *,
        deleted: bool = False,
        references: Sequence[SchemaReference] = (),
    ) -> SchemaVersion:
        """The version of ``subject`` that has this schema (with these references)."""
        early = None if references else self._parse(schema_text, schema_type, ())

        def read() -> SchemaVersion:
            self._require_subject(subject, deleted=deleted)
            parsed = early or self._parse(schema_text, schema_type, references)
            canonical = canonical_json(parsed.schema)
            refs = parsed.references
            found = self._state.lookup(subject, canonical, deleted=deleted, references=refs)
            if found is None:
                raise SchemaNotFound("Schema not found")
            return found

        return await self._read(read)

    async def subjects(self, *, deleted: bool = False, prefix: str = "") -> list[str]:
        return [s for s in self._state.subjects(deleted=deleted) if s.startswith(prefix)]

    async def schemas(
        self,
        *,
        prefix: str = "",
        deleted: bool = False,
        latest_only: bool = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[SchemaVersion]:
        """Confluent's ``GET /schemas``: versions of the subjects starting with ``prefix``, by
        subject then version (only each subject's latest with ``latest_only``), from ``offset``,
        at most ``limit`` of them when ``limit`` is positive."""
        found: list[SchemaVersion] = []
        for subject in await self.subjects(deleted=deleted, prefix=prefix):
            numbers = self._state.versions(subject, deleted=deleted)
            versions = (self._state.get_version(subject, n, deleted=True) for n in numbers)
            listed = [v for v in versions if v is not None]
            found.extend(listed[-1:] if latest_only else listed)
        end = offset + limit if limit > 0 else None
        return found[max(offset, 0) : end]

    async def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        def read() -> list[int]:
            self._require_subject(subject, deleted=deleted)
            return self._state.versions(subject, deleted=deleted)

        return await self._read(read)

    async def get_version(
        self, subject: str, version: str, *, deleted: bool = False
    ) -> SchemaVersion:
        wanted = parse_version(version)
        return await self._read(lambda: self._version(subject, wanted, deleted=deleted))

    async def referenced_by(self, subject: str, version: str) -> list[int]:
        """The ids of the schemas whose references name this version, soft-deleted referrers
        included (they still block its deletion), as Confluent lists them. A numbered version
        may be soft-deleted, as in Confluent; ``latest`` is the latest live one."""
        wanted = parse_version(version)

        def read() -> list[int]:
            found = self._version(subject, wanted, deleted=wanted != "latest")
            return self._state.referenced_by(subject, found.version)

        return await self._read(read)

    async def schema_by_id(self, schema_id: int) -> StoredSchema:
        return await self._read(lambda: self._schema_by_id(schema_id))

    async def subjects_for_id(self, schema_id: int, *, deleted: bool = False) -> list[str]:
        await self.schema_by_id(schema_id)
        return self._state.subjects_for_id(schema_id, deleted=deleted)

    async def versions_for_id(
        self, schema_id: int, *, deleted: bool = False
    ) -> list[tuple[str, int]]:
        await self.schema_by_id(schema_id)
        return self._state.versions_for_id(schema_id, deleted=deleted)

    @staticmethod
    def schema_types() -> list[str]:
        return list(SCHEMA_TYPES)

    # --- Deletes. ---

    async def delete_version(self, subject: str, version: str, *, permanent: bool = False) -> int:
        """Soft-delete a version, or permanently delete a soft-deleted one; its number."""
        wanted = parse_version(version)

        def decide() -> tuple[list[Record], int]:
            # An unknown subject is 40401 whatever the mode (Confluent checks it first).
            self._require_subject(subject, deleted=True)
            self._refuse_if_read_only(subject)
            # "latest" is the latest live version; a number may name a soft-deleted one.
            found = self._state.get_version(subject, wanted, deleted=wanted != "latest")
            if found is None:
                raise VersionNotFound(f"Version {version} not found.")
            where = f"Subject '{subject}' Version {found.version}"
            if permanent:
                if not found.deleted:
                    raise SchemaVersionNotSoftDeleted(
                        f"{where} was not deleted first before being permanently deleted"
                    )
                self._require_unreferenced(subject, [found.version])
                return [schema_tombstone(subject, found.version)], found.version
            if found.deleted:
                raise SchemaVersionSoftDeleted(
                    f"{where} was soft deleted. Set permanent=true to delete permanently"
                )
            self._require_unreferenced(subject, [found.version])
            records = [schema_record(msgspec.structs.replace(found, deleted=True))]
            if self._state.versions(subject) == [found.version]:
                records += self._forget_subject_level(subject)
            return records, found.version

        return await self._log.transact(decide)

    async def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete every live version, or permanently delete a soft-deleted subject."""
        return await self._log.transact(
            lambda: self.plan_delete_subject(subject, permanent=permanent)
        )

    def plan_delete_subject(
        self, subject: str, *, permanent: bool = False
    ) -> tuple[list[Record], list[int]]:
        """The records ``delete_subject`` writes and the versions it deletes (pure, to transact)."""
        self._require_subject(subject, deleted=True)  # 40401 first, whatever the mode
        self._refuse_if_read_only(subject)
        where = f"Subject '{subject}'"
        live = self._state.versions(subject)
        if permanent:
            if live:
                raise SubjectNotSoftDeleted(
                    f"{where} was not deleted first before being permanently deleted"
                )
            every = self._state.versions(subject, deleted=True)
            self._require_unreferenced(subject, every)
            return [schema_tombstone(subject, n) for n in every], every
        if not live:
            raise SubjectSoftDeleted(
                f"{where} was soft deleted. Set permanent=true to delete permanently"
            )
        self._require_unreferenced(subject, live)
        records = [
            delete_subject_record(subject, live[-1]),
            *self._forget_subject_level(subject),
        ]
        return records, live

    # --- Compatibility levels. ---

    async def get_config(
        self, subject: str | None = None, *, default_to_global: bool = False
    ) -> CompatibilityLevel:
        if subject is None:
            return self._global_level()

        def read() -> CompatibilityLevel:
            level = self._state.subject_level(subject)
            if level is not None:
                return parse_level(level)
            if default_to_global:
                return self._global_level()
            raise SubjectCompatibilityNotConfigured(
                f"Subject '{subject}' does not have subject-level compatibility configured"
            )

        return await self._read(read)

    async def set_config(self, level: str, subject: str | None = None) -> CompatibilityLevel:
        parsed = parse_level(level)

        def decide() -> tuple[list[Record], CompatibilityLevel]:
            self._refuse_if_read_only(subject)
            return [config_record(subject, parsed.value)], parsed

        return await self._log.transact(decide)

    async def delete_config(self, subject: str | None = None) -> CompatibilityLevel:
        """Remove a level (the global one reverts to the default); the level it had."""

        def decide() -> tuple[list[Record], CompatibilityLevel]:
            self._refuse_if_read_only(subject)
            if subject is None:
                return [config_record(None, None)], self._global_level()
            level = self._state.subject_level(subject)
            if level is None:
                self._require_subject(subject, deleted=True)
                raise SubjectCompatibilityNotConfigured(
                    f"Subject '{subject}' does not have subject-level compatibility configured"
                )
            return [config_record(subject, None)], parse_level(level)

        return await self._log.transact(decide)

    async def test_compatibility(
        self,
        subject: str,
        version: str | None,
        schema_text: str,
        schema_type: str = AVRO,
        *,
        verbose: bool = False,
        references: Sequence[SchemaReference] = (),
    ) -> tuple[bool, list[str]]:
        """Could ``schema_text`` be registered after ``version`` (all live versions when None)?

        The reasons come back only when ``verbose``. ``latest`` means every live version, so that
        transitive levels check them all, as registering would; a subject without versions is
        compatible with anything (Confluent's answer), but a numbered version it lacks is 40402.
        """
        early = None if references else self._parse(schema_text, schema_type, ())
        wanted = None if version is None else parse_version(version)

        def read() -> tuple[_Parsed, list[object]]:
            parsed = early or self._parse(schema_text, schema_type, references)
            if wanted is None or wanted == "latest":
                targets = self._live(subject)
            else:
                found = self._state.get_version(subject, wanted)
                if found is None:
                    raise VersionNotFound(f"Version {wanted} not found.")
                targets = [found]
            return parsed, [self._checkable(v) for v in targets]

        parsed, existing = await self._read(read)
        reasons = check(self._level(subject), parsed.checkable, existing)
        return not reasons, reasons if verbose else []

    # --- Modes. ---

    async def get_mode(self, subject: str | None = None, *, default_to_global: bool = False) -> str:
        if subject is None:
            return self._global_mode()

        def read() -> str:
            mode = self._state.subject_mode(subject)
            if mode is not None:
                return mode
            if default_to_global:
                return self._global_mode()
            raise SubjectModeNotConfigured(
                f"Subject '{subject}' does not have subject-level mode configured"
            )

        return await self._read(read)

    async def set_mode(self, mode: str, subject: str | None = None, *, force: bool = False) -> str:
        """Set the mode of ``subject`` (or the global one). Entering IMPORT where schemas exist
        needs ``force``, as in Confluent: imported ids must not meet ids given here."""
        wanted = mode.upper()
        if wanted not in MODES:
            raise InvalidMode(f"Invalid mode. Valid values are {', '.join(MODES)}")

        def decide() -> tuple[list[Record], str]:
            current = self._global_mode() if subject is None else self._state.subject_mode(subject)
            if wanted == IMPORT and current != IMPORT and not force:
                existing = self._state.subjects() if subject is None else self._live(subject)
                if existing:
                    raise OperationNotPermitted("Cannot import since found existing subjects")
            return [mode_record(subject, wanted)], wanted

        return await self._log.transact(decide)

    async def delete_mode(self, subject: str) -> str:
        """Remove ``subject``'s own mode (it follows the global one again); the mode it had."""

        def decide() -> tuple[list[Record], str]:
            mode = self._state.subject_mode(subject)
            if mode is None:
                raise SubjectNotFound(f"Subject '{subject}' not found.")
            return [mode_record(subject, None)], mode

        return await self._log.transact(decide)

    # --- Helpers. ---

    def _global_mode(self) -> str:
        return self._state.global_mode() or READWRITE

    def _mode(self, subject: str | None) -> str:
        mode = None if subject is None else self._state.subject_mode(subject)
        return mode or self._global_mode()

    def _refuse_if_read_only(self, subject: str | None) -> None:
        if self._mode(subject) == READONLY:
            where = "Subject " + subject if subject is not None else "The registry"
            raise OperationNotPermitted(f"{where} is in read-only mode")

    def _require_mode(self, subject: str, mode: str, spelled: str) -> None:
        """Confluent's register rules: nothing in READONLY; an explicit id only in IMPORT, and
        none but an explicit one there."""
        self._refuse_if_read_only(subject)
        if self._mode(subject) != mode:
            raise OperationNotPermitted(f"Subject {subject} is not in {spelled} mode")

    async def _read(self, read: Callable[[], T]) -> T:
        """``read()`` on the local state; when it finds nothing, again once the state has caught
        up with the log (``StateUnavailable`` if it cannot): a fresh instance, or one that is
        behind another's write, never answers 404 for what the log already holds."""
        try:
            return read()
        except _NOT_FOUND:
            await confirm_absent(self._log)
            return read()

    def _parse(
        self, schema_text: str, schema_type: str, references: Sequence[SchemaReference]
    ) -> _Parsed:
        """``schema_text`` parsed with its references resolved on the current state."""
        refs, documents = self._resolve(references)
        return _Parsed(_parse_avro(schema_text, schema_type, documents), refs, documents)

    def _resolve(
        self, references: Sequence[SchemaReference]
    ) -> tuple[References, tuple[object, ...]]:
        """The references with ``-1`` (latest) made a number, and the schemas they resolve to,
        references of references first, each version once. Soft-deleted versions resolve, as in
        Confluent: they still describe the data written with them."""
        documents: list[object] = []
        seen: set[tuple[str, int]] = set()

        def visit(subject: str, number: int | Latest, depth: int) -> SchemaVersion:
            if depth > _MAX_REFERENCE_DEPTH:
                raise InvalidSchema("Invalid schema: references nested too deeply")
            found = self._state.get_version(subject, number, deleted=number != "latest")
            if found is None:
                raise UnresolvedReference(
                    f'Invalid schema: No schema reference found for subject "{subject}" '
                    f"and version {-1 if number == 'latest' else number}"
                )
            if (found.subject, found.version) not in seen:
                seen.add((found.subject, found.version))
                for inner in found.references:
                    visit(inner.subject, inner.version, depth + 1)
                documents.append(json.loads(found.schema))
            return found

        resolved = []
        for ref in references:
            found = visit(ref.subject, "latest" if ref.version == -1 else ref.version, 0)
            resolved.append(SchemaReference(ref.name, ref.subject, found.version))
        return tuple(resolved), tuple(documents)

    def _checkable(self, version: SchemaVersion) -> object:
        """A stored version as ``registry.compat`` takes it: with its references resolved."""
        return _Parsed(json.loads(version.schema), *self._resolve(version.references)).checkable

    def _require_unreferenced(self, subject: str, versions: Sequence[int]) -> None:
        for number in versions:
            if self._state.referenced_by(subject, number):
                raise ReferenceExists(
                    "One or more references exist to the schema "
                    f"{{magic=1,keytype=SCHEMA,subject={subject},version={number}}}."
                )

    def _schema_by_id(self, schema_id: int) -> StoredSchema:
        found = self._state.schema_by_id(schema_id)
        if found is None:
            raise SchemaNotFound(f"Schema {schema_id} not found")
        return found

    def _require_subject(self, subject: str, *, deleted: bool = False) -> None:
        if not self._state.versions(subject, deleted=deleted):
            raise SubjectNotFound(f"Subject '{subject}' not found.")

    def _version(
        self, subject: str, version: int | Latest, *, deleted: bool = False
    ) -> SchemaVersion:
        self._require_subject(subject, deleted=deleted)
        found = self._state.get_version(subject, version, deleted=deleted)
        if found is None:
            raise VersionNotFound(f"Version {version} not found.")
        return found

    def _live(self, subject: str) -> list[SchemaVersion]:
        versions = (self._state.get_version(subject, n) for n in self._state.versions(subject))
        return [v for v in versions if v is not None]

    def _global_level(self) -> CompatibilityLevel:
        level = self._state.global_level()
        return DEFAULT_LEVEL if level is None else parse_level(level)

    def _level(self, subject: str) -> CompatibilityLevel:
        level = self._state.subject_level(subject)
        return self._global_level() if level is None else parse_level(level)

    def _forget_subject_level(self, subject: str) -> list[Record]:
        # Confluent drops a subject's level together with its last live version.
        if self._state.subject_level(subject) is None:
            return []
        return [config_record(subject, None)]


def _parse_avro(schema_text: str, schema_type: str, documents: Sequence[object]) -> object:
    """The parsed JSON of a valid Avro schema, or ``InvalidSchema`` saying what is wrong.

    ``documents`` are the schemas its references resolve to, dependencies first.
    """
    if not schema_text:
        raise InvalidSchema("Empty schema")
    if schema_type != AVRO:
        raise InvalidSchema(f"Unsupported schema type {schema_type!r}: this registry supports AVRO")
    try:
        parsed: object = json.loads(schema_text)
        check_avro(parsed, documents)  # what Avro Java refuses and fastavro lets through
        named: dict[str, object] = {}
        for document in documents:
            fastavro.parse_schema(document, named_schemas=named)  # type: ignore[arg-type]
        fastavro.parse_schema(parsed, named_schemas=named)  # type: ignore[arg-type]
        # What is stored must stay checkable: later registrations parse it with the checker.
        checkable = WithReferences(parsed, tuple(documents)) if documents else parsed
        reader_writer_problems(checkable, checkable)
    except (
        SchemaParseException,
        UnknownType,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
    ) as exc:
        raise InvalidSchema(f"Invalid schema: {exc}") from exc
    except RecursionError:  # json and fastavro recurse in Python, as the checker does
        raise InvalidSchema("Invalid Avro schema: nested too deeply") from None
    return parsed
