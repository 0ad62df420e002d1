"""The fold of ``_schemas``: Confluent's record format, deletes, global ids, levels, determinism."""

from __future__ import annotations

import json

import pytest

from inlet.model.schemas import (
    SchemaReference,
    SchemaState,
    SchemaVersion,
    StoredSchema,
    canonical_form,
    config_record,
    delete_subject_record,
    schema_record,
    schema_tombstone,
)
from inlet.statelog.fold import CorruptRecord, Record
from inlet.topics import SCHEMAS_TOPIC

STRING = '"string"'
RECORD = '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}'
RECORD_REORDERED = '{"fields":[{"type":"int","name":"a"}],"name":"R","type":"record"}'


def _fold(records: list[Record]) -> SchemaState:
    state = SchemaState()
    for record in records:
        state.apply(record.topic, record.key, record.value)
    return state


def _snapshot(state: SchemaState) -> object:
    """Every query's answer, for comparing two states."""
    answers: list[object] = [state.subjects(), state.subjects(deleted=True), state.next_id()]
    answers += [state.global_level()]
    for subject in state.subjects(deleted=True):
        answers += [
            state.versions(subject),
            state.versions(subject, deleted=True),
            state.get_version(subject, "latest"),
            state.get_version(subject, "latest", deleted=True),
            state.subject_level(subject),
        ]
        answers += [state.get_version(subject, n, deleted=True) for n in range(1, 6)]
    for schema_id in range(1, state.next_id()):
        answers += [
            state.schema_by_id(schema_id),
            state.subjects_for_id(schema_id),
            state.subjects_for_id(schema_id, deleted=True),
            state.versions_for_id(schema_id, deleted=True),
        ]
    return answers


def _version(subject: str, version: int, schema_id: int, schema: str = RECORD) -> SchemaVersion:
    return SchemaVersion(subject, version, schema_id, schema)


def test_keys_and_values_have_confluents_exact_bytes() -> None:
    record = schema_record(_version("inlet.a-value", 2, 7, STRING))
    assert record.topic == SCHEMAS_TOPIC
    assert record.key == b'{"keytype":"SCHEMA","subject":"inlet.a-value","version":2,"magic":1}'
    assert json.loads(record.value or b"") == {
        "subject": "inlet.a-value",
        "version": 2,
        "id": 7,
        "schema": STRING,
        "deleted": False,
    }
    assert schema_tombstone("s", 1) == Record(
        SCHEMAS_TOPIC, b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}', None
    )
    assert config_record(None, "FULL") == Record(
        SCHEMAS_TOPIC,
        b'{"keytype":"CONFIG","subject":null,"magic":0}',
        b'{"compatibilityLevel":"FULL"}',
    )
    assert config_record("s", None).key == b'{"keytype":"CONFIG","subject":"s","magic":0}'
    assert delete_subject_record("s", 3) == Record(
        SCHEMAS_TOPIC,
        b'{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}',
        b'{"subject":"s","version":3}',
    )


def test_same_key_is_the_same_bytes_whatever_the_value() -> None:
    live = schema_record(_version("s", 1, 1))
    deleted = schema_record(SchemaVersion("s", 1, 1, RECORD, deleted=True))
    assert live.key == deleted.key == schema_tombstone("s", 1).key


def test_reads_keys_in_any_field_order_and_non_avro_types() -> None:
    key = b'{"magic":1,"subject":"s","version":1,"keytype":"SCHEMA"}'
    value = {"subject": "s", "version": 1, "id": 3, "schema": '"x"', "schemaType": "PROTOBUF"}
    state = SchemaState()
    state.apply(SCHEMAS_TOPIC, key, json.dumps(value).encode())
    found = state.get_version("s", 1)
    assert found == SchemaVersion("s", 1, 3, '"x"', deleted=False, schema_type="PROTOBUF")
    assert json.loads(schema_record(found).value or b"")["schemaType"] == "PROTOBUF"


def test_versions_and_latest() -> None:
    state = _fold(
        [
            schema_record(_version("s", n, n, f'{{"type":"fixed","name":"F","size":{n}}}'))
            for n in (1, 2, 3)
        ]
    )
    assert state.subjects() == ["s"]
    assert state.versions("s") == [1, 2, 3]
    latest = state.get_version("s", "latest")
    assert latest is not None
    assert latest.version == 3
    assert state.get_version("s", -1) == latest
    assert state.get_version("s", 4) is None
    assert state.get_version("nope", "latest") is None
    assert state.next_id() == 4


def test_a_soft_deleted_version_is_hidden_unless_asked_for() -> None:
    state = _fold(
        [
            schema_record(_version("s", 1, 1, STRING)),
            schema_record(_version("s", 2, 2)),
            schema_record(SchemaVersion("s", 2, 2, RECORD, deleted=True)),
        ]
    )
    assert state.versions("s") == [1]
    assert state.versions("s", deleted=True) == [1, 2]
    assert state.get_version("s", 2) is None
    deleted = state.get_version("s", 2, deleted=True)
    assert deleted is not None
    assert deleted.deleted
    latest = state.get_version("s", "latest")
    assert latest is not None
    assert latest.version == 1
    # A soft-deleted schema keeps its id: it is still served by id.
    assert state.schema_by_id(2) == StoredSchema(2, RECORD)
    assert state.subjects_for_id(2) == []
    assert state.subjects_for_id(2, deleted=True) == ["s"]


def test_delete_subject_soft_deletes_up_to_its_version() -> None:
    state = _fold(
        [
            schema_record(_version("s", 1, 1, STRING)),
            schema_record(_version("s", 2, 2)),
            delete_subject_record("s", 1),
        ]
    )
    assert state.versions("s") == [2]
    state.apply(*delete_subject_record("s", 2))
    assert state.subjects() == []
    assert state.subjects(deleted=True) == ["s"]
    assert state.get_version("s", "latest") is None


def test_tombstone_permanently_deletes_and_keeps_the_id_for_the_same_schema() -> None:
    state = _fold(
        [
            schema_record(_version("s", 1, 1)),
            schema_record(_version("s", 2, 2, STRING)),
            schema_record(SchemaVersion("s", 2, 2, STRING, deleted=True)),
            schema_tombstone("s", 2),
        ]
    )
    assert state.versions("s", deleted=True) == [1]
    assert state.schema_by_id(2) is None
    assert state.id_for(canonical_form(STRING)) == 2  # for the same schema registered again
    assert state.next_id() == 3  # ids only grow
    state.apply(*schema_tombstone("s", 1))
    assert state.subjects(deleted=True) == []
    assert state.schema_by_id(1) is None
    # A tombstone for something that is not there changes nothing.
    state.apply(*schema_tombstone("s", 9))
    assert state.next_id() == 3


def test_ids_are_global_and_schemas_compared_canonically() -> None:
    state = _fold(
        [
            schema_record(_version("a", 1, 1, RECORD)),
            schema_record(_version("b", 1, 1, RECORD)),
        ]
    )
    assert state.id_for(canonical_form(RECORD_REORDERED)) == 1
    assert state.subjects_for_id(1) == ["a", "b"]
    assert state.versions_for_id(1) == [("a", 1), ("b", 1)]
    found = state.lookup("b", canonical_form(RECORD_REORDERED))
    assert found is not None
    assert found.version == 1
    assert state.lookup("b", canonical_form(STRING)) is None
    # The id stays while any subject still uses it.
    state.apply(*schema_tombstone("a", 1))
    assert state.schema_by_id(1) == StoredSchema(1, RECORD)
    assert state.subjects_for_id(1) == ["b"]


def test_lookup_finds_the_latest_matching_version() -> None:
    state = _fold(
        [
            schema_record(_version("s", 1, 1, RECORD)),
            schema_record(SchemaVersion("s", 1, 1, RECORD, deleted=True)),
            schema_record(_version("s", 2, 1, RECORD)),
        ]
    )
    found = state.lookup("s", canonical_form(RECORD))
    assert found is not None
    assert found.version == 2
    state.apply(*schema_record(SchemaVersion("s", 2, 1, RECORD, deleted=True)))
    assert state.lookup("s", canonical_form(RECORD)) is None
    found = state.lookup("s", canonical_form(RECORD), deleted=True)
    assert found is not None
    assert found.version == 2


def test_config_records_set_and_remove_levels() -> None:
    state = _fold([config_record(None, "FULL"), config_record("s", "NONE")])
    assert state.global_level() == "FULL"
    assert state.subject_level("s") == "NONE"
    assert state.subject_level("t") is None
    assert state.subjects() == []  # a level alone does not make a subject
    state.apply(*config_record("s", None))
    state.apply(*config_record(None, None))
    assert state.subject_level("s") is None
    assert state.global_level() is None


def test_ignores_other_topics_and_noops(caplog: pytest.LogCaptureFixture) -> None:
    state = SchemaState()
    state.apply(
        "other", schema_record(_version("s", 1, 1)).key, schema_record(_version("s", 1, 1)).value
    )
    state.apply(SCHEMAS_TOPIC, b'{"keytype":"NOOP","magic":0}', None)
    assert state.subjects(deleted=True) == []
    assert not caplog.records


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"not json", b"{}"),
        (b'{"keytype":"MYSTERY","magic":0}', b"{}"),
        (b'{"subject":"s","version":1,"magic":1}', b"{}"),
        (b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}', b"not json"),
        (b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}', b'{"subject":"s"}'),
        (
            b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}',
            b'{"subject":"s","version":1,"id":1,"schema":"{not json","deleted":false}',
        ),
        (
            b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}',
            b'{"subject":"t","version":1,"id":1,"schema":"\\"int\\"","deleted":false}',
        ),
        (b'{"keytype":"CONFIG","subject":null,"magic":0}', b'{"compatibility":"FULL"}'),
        (b'{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}', None),
        (b"\xff\xfe not utf-8", b"{}"),
    ],
)
def test_unreadable_records_are_refused_and_change_nothing(key: bytes, value: bytes | None) -> None:
    # The reader counts and skips them (inlet/statelog/kafka.py); the fold only says so.
    state = _fold([schema_record(_version("s", 1, 1, STRING))])
    before = _snapshot(state)
    with pytest.raises(CorruptRecord):
        state.apply(SCHEMAS_TOPIC, key, value)
    assert _snapshot(state) == before
    state.apply(*schema_record(_version("s", 2, 2, RECORD)))
    assert _snapshot(state) != before  # the fold goes on


def test_two_states_fed_the_same_records_answer_identically() -> None:
    records = [
        config_record(None, "FULL"),
        schema_record(_version("b", 1, 1, RECORD)),
        schema_record(_version("a", 1, 2, STRING)),
        schema_record(_version("a", 2, 1, RECORD)),
        config_record("a", "NONE"),
        delete_subject_record("a", 1),
        schema_record(_version("c", 1, 3, '"long"')),
        schema_record(SchemaVersion("c", 1, 3, '"long"', deleted=True)),
        schema_tombstone("c", 1),
        schema_record(_version("b", 2, 2, STRING)),
        config_record("a", None),
    ]
    first, second = _fold(records), _fold(records)
    assert _snapshot(first) == _snapshot(second)
    # And the answers are what the records say.
    assert first.subjects() == ["a", "b"]
    assert first.versions("a", deleted=True) == [1, 2]
    assert first.versions("a") == [2]
    assert first.versions_for_id(2, deleted=True) == [("a", 1), ("b", 2)]
    assert first.schema_by_id(3) is None
    assert first.next_id() == 4
    assert first.subject_level("a") is None
    assert first.global_level() == "FULL"


def _raw_schema_record(subject: str, version: int, value: dict[str, object]) -> Record:
    key = {"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}
    return Record(SCHEMAS_TOPIC, json.dumps(key).encode(), json.dumps(value).encode())


def test_references_are_read_from_old_and_confluent_records_and_written_only_when_present() -> None:
    ref = SchemaReference("com.acme.Address", "address", 1)
    value = {"subject": "order", "version": 1, "id": 2, "schema": RECORD, "deleted": False}
    records = [
        schema_record(_version("address", 1, 1)),
        _raw_schema_record("order", 1, value),  # before references existed: no key
        _raw_schema_record("order", 2, value | {"version": 2, "references": []}),  # Confluent's
        _raw_schema_record("order", 3, value | {"version": 3, "references": None}),
        _raw_schema_record(
            "order",
            4,
            value
            | {
                "version": 4,
                "id": 3,
                "references": [{"name": ref.name, "subject": "address", "version": 1}],
            },
        ),
    ]
    state = _fold(records)
    assert [state.get_version("order", n).references for n in (1, 2, 3)] == [(), (), ()]  # type: ignore[union-attr]
    assert state.get_version("order", 4).references == (ref,)  # type: ignore[union-attr]
    assert state.schema_by_id(3) == StoredSchema(3, RECORD, references=(ref,))
    assert b"references" not in (schema_record(_version("order", 1, 2)).value or b"")
    with_refs = schema_record(SchemaVersion("order", 4, 3, RECORD, references=(ref,)))
    assert json.loads(with_refs.value or b"")["references"] == [
        {"name": "com.acme.Address", "subject": "address", "version": 1}
    ]


def test_the_same_text_with_other_references_is_another_schema() -> None:
    ref = SchemaReference("com.acme.Address", "address", 1)
    state = _fold([schema_record(SchemaVersion("order", 1, 7, RECORD, references=(ref,)))])
    canonical = canonical_form(RECORD)
    assert state.id_for(canonical, references=(ref,)) == 7
    assert state.id_for(canonical) is None
    assert state.lookup("order", canonical) is None
    assert state.lookup("order", canonical, references=(ref,)) is not None


def test_referrers_count_until_permanently_deleted() -> None:
    ref = SchemaReference("com.acme.Address", "address", 1)
    order = SchemaVersion("order", 1, 2, RECORD, references=(ref,))
    state = _fold([schema_record(_version("address", 1, 1)), schema_record(order)])
    assert state.referenced_by("address", 1) == [2]
    state = _fold(
        [
            schema_record(_version("address", 1, 1)),
            schema_record(order),
            schema_record(SchemaVersion("order", 1, 2, RECORD, deleted=True, references=(ref,))),
            delete_subject_record("order", 1),
        ]
    )
    assert state.referenced_by("address", 1) == [2]
    state.apply(SCHEMAS_TOPIC, schema_tombstone("order", 1).key, None)
    assert state.referenced_by("address", 1) == []
