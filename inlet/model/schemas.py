"""The schema registry's state: a pure, deterministic fold of the ``_schemas`` topic.

Records use the exact key/value JSON of Confluent Schema Registry (and Karapace), so a topic written
by either can be read here and the other way round:

* ``{"keytype":"SCHEMA","subject":s,"version":n,"magic":1}`` → ``{"subject","version","id","schema",
  "deleted"}`` (``schemaType`` only when not AVRO, ``references`` only when there are some: a list
  of ``{"name","subject","version"}``); a null value permanently deletes that version.
* ``{"keytype":"CONFIG","subject":s|null,"magic":0}`` → ``{"compatibilityLevel": level}``; a null
  subject is the global level, a null value removes the level.
* ``{"keytype":"DELETE_SUBJECT","subject":s,"magic":0}`` → ``{"subject","version"}``: soft-deletes
  every version of the subject up to and including ``version``.
* ``{"keytype":"MODE","subject":s|null,"magic":0}`` → ``{"mode": mode}`` (READWRITE, READONLY,
  IMPORT); a null subject is the global mode, a null value removes the mode.
* ``{"keytype":"NOOP","magic":0}``: written by Confluent to probe the log; no effect.

Schema ids are global: one id per distinct schema (compared by Avro's own text of it,
``inlet/model/avro_text.py``, with its references), whatever the subject. An id is served as long
as any version, soft-deleted or not, refers to it; once none does, the same schema registered again
gets that id back (as a running Confluent does), while this fold remembers it. A version's
references count against deleting the versions they name until the referring version is
permanently deleted (Confluent's rule): ``referenced_by``.
"""

from __future__ import annotations

import json
from typing import Literal

import msgspec

from inlet.model.avro_text import avro_text
from inlet.statelog.fold import CorruptRecord, Record
from inlet.topics import SCHEMAS_TOPIC

AVRO = "AVRO"
Latest = Literal["latest"]


class SchemaReference(msgspec.Struct, frozen=True):
    """A named type the schema uses, defined by ``version`` of ``subject`` (Confluent's)."""

    name: str
    subject: str
    version: int


References = tuple[SchemaReference, ...]


class SchemaVersion(msgspec.Struct, frozen=True):
    """One version of a subject."""

    subject: str
    version: int
    schema_id: int
    schema: str  # the text as stored (the first registration's text for this id)
    deleted: bool = False
    schema_type: str = AVRO
    references: References = ()


class StoredSchema(msgspec.Struct, frozen=True):
    """A schema by its global id."""

    schema_id: int
    schema: str
    schema_type: str = AVRO
    references: References = ()


def canonical_json(parsed: object) -> str:
    """The identity of a parsed schema, and the text stored for it: Avro Java's own text of it
    (``avro_text``), as Confluent stores it. Key order, whitespace and attributes Avro ignores do
    not make a schema different.

    Not Avro's Parsing Canonical Form: that drops ``doc``, ``default`` and ``logicalType``, which
    would make schemas that differ in meaning share an id.
    """
    return avro_text(parsed)


def canonical_form(schema_text: str) -> str:
    """``canonical_json`` of a schema's text; raises ``ValueError`` when the text is not JSON."""
    return canonical_json(json.loads(schema_text))


# --- Record format. Keys are Structs because their field order is fixed: the same key is always
# the same bytes, which log compaction relies on (and matches what Confluent's Jackson writes). ---


class _SchemaKey(msgspec.Struct, tag_field="keytype", tag="SCHEMA"):
    subject: str
    version: int
    magic: int = 1


class _ConfigKey(msgspec.Struct, tag_field="keytype", tag="CONFIG"):
    subject: str | None = None
    magic: int = 0


class _DeleteSubjectKey(msgspec.Struct, tag_field="keytype", tag="DELETE_SUBJECT"):
    subject: str
    magic: int = 0


class _ModeKey(msgspec.Struct, tag_field="keytype", tag="MODE"):
    subject: str | None = None
    magic: int = 0


class _NoopKey(msgspec.Struct, tag_field="keytype", tag="NOOP"):
    magic: int = 0


_Key = _SchemaKey | _ConfigKey | _DeleteSubjectKey | _ModeKey | _NoopKey


class _SchemaValue(msgspec.Struct, rename={"schema_id": "id", "schema_type": "schemaType"}):
    """A ``SchemaVersion`` as a ``_schemas`` value: the same fields, under Confluent's names."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool = False
    schema_type: str = AVRO
    # Absent from records written before references; Confluent writes [] (and once wrote null).
    references: References | None = None


class _ConfigValue(msgspec.Struct, rename="camel"):
    compatibility_level: str


class _ModeValue(msgspec.Struct):
    mode: str


class _DeleteSubjectValue(msgspec.Struct):
    subject: str
    version: int


_KEY_DECODER = msgspec.json.Decoder(_Key)
_SCHEMA_VALUE_DECODER = msgspec.json.Decoder(_SchemaValue)
_CONFIG_VALUE_DECODER = msgspec.json.Decoder(_ConfigValue)
_DELETE_SUBJECT_VALUE_DECODER = msgspec.json.Decoder(_DeleteSubjectValue)
_MODE_VALUE_DECODER = msgspec.json.Decoder(_ModeValue)


def schema_record(version: SchemaVersion) -> Record:
    value: dict[str, object] = {
        "subject": version.subject,
        "version": version.version,
        "id": version.schema_id,
        "schema": version.schema,
        "deleted": version.deleted,
    }
    if version.schema_type != AVRO:  # Confluent omits the type of Avro schemas
        value["schemaType"] = version.schema_type
    if version.references:
        value["references"] = version.references
    key = _SchemaKey(version.subject, version.version)
    return Record(SCHEMAS_TOPIC, msgspec.json.encode(key), msgspec.json.encode(value))


def schema_tombstone(subject: str, version: int) -> Record:
    return Record(SCHEMAS_TOPIC, msgspec.json.encode(_SchemaKey(subject, version)), None)


def config_record(subject: str | None, level: str | None) -> Record:
    """Set (or, with ``level=None``, remove) the level of ``subject``, or the global one."""
    value = None if level is None else msgspec.json.encode(_ConfigValue(level))
    return Record(SCHEMAS_TOPIC, msgspec.json.encode(_ConfigKey(subject)), value)


def mode_record(subject: str | None, mode: str | None) -> Record:
    """Set (or, with ``mode=None``, remove) the mode of ``subject``, or the global one."""
    value = None if mode is None else msgspec.json.encode(_ModeValue(mode))
    return Record(SCHEMAS_TOPIC, msgspec.json.encode(_ModeKey(subject)), value)


def delete_subject_record(subject: str, version: int) -> Record:
    value = _DeleteSubjectValue(subject, version)
    return Record(
        SCHEMAS_TOPIC, msgspec.json.encode(_DeleteSubjectKey(subject)), msgspec.json.encode(value)
    )


class SchemaState:
    """Subjects, versions, ids and compatibility levels, as of the records applied so far."""

    def __init__(self) -> None:
        self._subjects: dict[str, dict[int, SchemaVersion]] = {}
        self._canonical: dict[tuple[str, int], str] = {}  # (subject, version) → canonical form
        self._schemas: dict[int, StoredSchema] = {}
        # (schema type, canonical form, references) → id
        self._ids: dict[tuple[str, str, References], int] = {}
        self._users: dict[int, set[tuple[str, int]]] = {}  # id → versions that use it
        # (subject, version) → the versions whose references name it
        self._referrers: dict[tuple[str, int], set[tuple[str, int]]] = {}
        self._max_id = 0
        self._global_level: str | None = None
        self._subject_levels: dict[str, str] = {}
        self._global_mode: str | None = None
        self._subject_modes: dict[str, str] = {}

    # --- The fold. ---

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic != SCHEMAS_TOPIC:
            return
        try:
            decoded = _KEY_DECODER.decode(key)
            if isinstance(decoded, _SchemaKey):
                self._apply_schema(decoded, value)
            elif isinstance(decoded, _ConfigKey):
                self._apply_config(decoded, value)
            elif isinstance(decoded, _DeleteSubjectKey):
                self._apply_delete_subject(value)
            elif isinstance(decoded, _ModeKey):
                self._apply_mode(decoded, value)
        except (msgspec.DecodeError, ValueError) as exc:
            # One bad record must not stop the registry from reading the rest of its log.
            raise CorruptRecord(f"{topic} record {key!r}: {exc}") from exc

    def _apply_schema(self, key: _SchemaKey, value: bytes | None) -> None:
        if value is None:
            self._remove_version(key.subject, key.version)
            return
        decoded = _SCHEMA_VALUE_DECODER.decode(value)
        if (decoded.subject, decoded.version) != (key.subject, key.version):
            raise ValueError(f"value is for {decoded.subject!r} version {decoded.version}")
        canonical = canonical_form(decoded.schema)
        self._remove_version(key.subject, key.version)  # a rewrite (a soft delete) replaces it
        fields = msgspec.structs.asdict(decoded) | {"references": decoded.references or ()}
        version = SchemaVersion(**fields)
        self._subjects.setdefault(version.subject, {})[version.version] = version
        self._canonical[version.subject, version.version] = canonical
        stored = StoredSchema(
            version.schema_id, version.schema, version.schema_type, version.references
        )
        self._schemas.setdefault(version.schema_id, stored)
        identity = (version.schema_type, canonical, version.references)
        self._ids.setdefault(identity, version.schema_id)
        self._users.setdefault(version.schema_id, set()).add((version.subject, version.version))
        for ref in version.references:
            referrers = self._referrers.setdefault((ref.subject, ref.version), set())
            referrers.add((version.subject, version.version))
        self._max_id = max(self._max_id, version.schema_id)

    def _remove_version(self, subject: str, number: int) -> None:
        removed = self._subjects.get(subject, {}).pop(number, None)
        if removed is None:
            return
        del self._canonical[subject, number]
        if not self._subjects[subject]:
            del self._subjects[subject]
        for ref in removed.references:
            referrers = self._referrers.get((ref.subject, ref.version), set())
            referrers.discard((subject, number))
            if not referrers:
                self._referrers.pop((ref.subject, ref.version), None)
        users = self._users[removed.schema_id]
        users.discard((subject, number))
        if not users:
            # Once no version uses an id, the id is no longer served; ``_ids`` keeps it, so the
            # same schema registered again gets it back (as a running Confluent does). No other
            # schema ever gets it: new ids come after ``_max_id``.
            del self._users[removed.schema_id]
            del self._schemas[removed.schema_id]

    def _apply_config(self, key: _ConfigKey, value: bytes | None) -> None:
        level = None if value is None else _CONFIG_VALUE_DECODER.decode(value).compatibility_level
        if key.subject is None:
            self._global_level = level
        elif level is None:
            self._subject_levels.pop(key.subject, None)
        else:
            self._subject_levels[key.subject] = level

    def _apply_mode(self, key: _ModeKey, value: bytes | None) -> None:
        mode = None if value is None else _MODE_VALUE_DECODER.decode(value).mode
        if key.subject is None:
            self._global_mode = mode
        elif mode is None:
            self._subject_modes.pop(key.subject, None)
        else:
            self._subject_modes[key.subject] = mode

    def _apply_delete_subject(self, value: bytes | None) -> None:
        if value is None:
            raise ValueError("DELETE_SUBJECT record without a value")
        decoded = _DELETE_SUBJECT_VALUE_DECODER.decode(value)
        versions = self._subjects.get(decoded.subject, {})
        for number, version in versions.items():
            if number <= decoded.version:
                versions[number] = msgspec.structs.replace(version, deleted=True)

    # --- Queries. Lists are sorted, so equal states answer identically. ---

    def subjects(self, *, deleted: bool = False) -> list[str]:
        return sorted(
            s for s, versions in self._subjects.items() if _any_visible(versions, deleted)
        )

    def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        versions = self._subjects.get(subject, {})
        return sorted(n for n, v in versions.items() if deleted or not v.deleted)

    def get_version(
        self, subject: str, version: int | Latest, *, deleted: bool = False
    ) -> SchemaVersion | None:
        """``version`` of ``subject``; ``"latest"`` (or -1) is the highest visible one."""
        if version in ("latest", -1):
            numbers = self.versions(subject, deleted=deleted)
            number = numbers[-1] if numbers else 0
        else:
            number = int(version)
        found = self._subjects.get(subject, {}).get(number)
        if found is None or (found.deleted and not deleted):
            return None
        return found

    def schema_by_id(self, schema_id: int) -> StoredSchema | None:
        return self._schemas.get(schema_id)

    def versions_for_id(self, schema_id: int, *, deleted: bool = False) -> list[tuple[str, int]]:
        users = sorted(self._users.get(schema_id, ()))
        return [(s, n) for s, n in users if deleted or not self._subjects[s][n].deleted]

    def version_of_id(self, subject: str, schema_id: int) -> int | None:
        """The version of ``subject`` with this schema: the latest if several, soft-deleted ones
        included (they still describe the records written with them)."""
        numbers = [n for s, n in self.versions_for_id(schema_id, deleted=True) if s == subject]
        return max(numbers, default=None)

    def subjects_for_id(self, schema_id: int, *, deleted: bool = False) -> list[str]:
        return sorted({s for s, _ in self.versions_for_id(schema_id, deleted=deleted)})

    def lookup(
        self,
        subject: str,
        canonical: str,
        *,
        schema_type: str = AVRO,
        deleted: bool = False,
        references: References = (),
    ) -> SchemaVersion | None:
        """The latest version of ``subject`` whose schema has the canonical form ``canonical``
        and these references."""
        for number in reversed(self.versions(subject, deleted=deleted)):
            found = self._subjects[subject][number]
            if (
                found.schema_type == schema_type
                and self._canonical[subject, number] == canonical
                and found.references == references
            ):
                return found
        return None

    def id_for(
        self, canonical: str, *, schema_type: str = AVRO, references: References = ()
    ) -> int | None:
        """The global id a schema (with these references) has, or had before its last version was
        permanently deleted."""
        return self._ids.get((schema_type, canonical, references))

    def referenced_by(self, subject: str, version: int) -> list[int]:
        """The ids of the schemas whose references name ``version`` of ``subject``, soft-deleted
        versions included (Confluent's: only a permanent delete lifts a reference)."""
        referrers = self._referrers.get((subject, version), set())
        return sorted({self._subjects[s][n].schema_id for s, n in referrers})

    def next_id(self) -> int:
        return self._max_id + 1

    def global_level(self) -> str | None:
        """The global compatibility level as written, or None when never set (or removed)."""
        return self._global_level

    def subject_level(self, subject: str) -> str | None:
        return self._subject_levels.get(subject)

    def global_mode(self) -> str | None:
        """The global mode as written, or None when never set (or removed)."""
        return self._global_mode

    def subject_mode(self, subject: str) -> str | None:
        return self._subject_modes.get(subject)


def _any_visible(versions: dict[int, SchemaVersion], deleted: bool) -> bool:
    return any(deleted or not v.deleted for v in versions.values())
