"""The schema builder's form (``registry/console/builder_form.py``): inputs named by the API's
problem paths, into the API's body and back, and problems placed beside their inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inlet.errors import InvalidConnector, Problem
from inlet.model.connectors import Connector
from inlet.model.dedup import Dedup, DedupRequest
from inlet.model.fields import FieldSpec
from inlet.model.verify import StoredSecret, Verify
from registry.console.builder_form import (
    Draft,
    Row,
    add_row,
    anchors_of,
    changes_body,
    connector_changes,
    create_body,
    delete_row,
    draft_from_form,
    draft_of,
    example_media_type,
    new_connector,
    place_problems,
    rows_of,
)
from registry.console.issued_token import hand_over, take_over

EVERY_TYPE = [
    FieldSpec(name="id", type="string"),
    FieldSpec(name="n", type="integer"),
    FieldSpec(name="f", type="float", nullable=True),
    FieldSpec(name="ok", type="boolean"),
    FieldSpec(name="day", type="date"),
    FieldSpec(name="at", type="datetime"),
    FieldSpec(name="t", type="time"),
    FieldSpec(name="total", type="decimal", precision=10, scale=2),
    FieldSpec(name="u", type="uuid"),
    FieldSpec(name="status", type="enum", symbols=["NEW", "PAID"]),
    FieldSpec(name="tags", type="array", items="string"),
    FieldSpec(
        name="address",
        type="object",
        nullable=True,
        fields=[
            FieldSpec(name="city", type="string"),
            FieldSpec(name="geo", type="object", fields=[FieldSpec(name="lat", type="float")]),
        ],
    ),
]


def _form(draft: Draft) -> list[tuple[str, str]]:
    """What a browser posts for ``draft``: checkboxes only when checked, as forms do."""
    items = [
        ("_csrf_token", "x"),
        ("name", draft.name),
        ("description", draft.description),
        ("key_field", draft.key_field),
        ("on_delete", draft.on_delete),
        ("envelope", draft.envelope),
        ("rate_limit_per_s", draft.rate_limit_per_s),
        ("partitions", draft.partitions),
        ("replication_factor", draft.replication_factor),
    ]
    items += [(flag, "on") for flag in ("atomic", "reject_unknown_fields") if getattr(draft, flag)]

    def rows(level: list[Row], prefix: str) -> None:
        for index, row in enumerate(level):
            at = f"{prefix}fields[{index}]"
            items.extend(
                (f"{at}.{name}", getattr(row, name))
                for name in ("name", "type", "precision", "scale", "symbols", "items")
            )
            if row.nullable:
                items.append((f"{at}.nullable", "on"))
            rows(row.fields, f"{at}.")

    rows(draft.rows, "")
    return items


def test_every_type_goes_through_the_form_into_the_api_body_unchanged() -> None:
    draft = Draft(name="orders", rows=rows_of(EVERY_TYPE), key_field="id", atomic=True)

    new = new_connector(draft_from_form(_form(draft)))

    assert new.fields == EVERY_TYPE
    assert (new.name, new.key_field, new.atomic, new.reject_unknown_fields) == (
        "orders",
        "id",
        True,
        False,
    )
    assert (new.partitions, new.replication_factor, new.rate_limit_per_s) == (None, None, None)


def test_rows_are_ordered_by_index_with_gaps_closed() -> None:
    # JavaScript renumbers, but a form edited by hand (or a row deleted without it) may not.
    form = [
        ("fields[5].name", "b"),
        ("fields[0].name", "a"),
        ("fields[0].type", "object"),
        ("fields[0].fields[3].name", "inner"),
        ("fields[12].name", "c"),
    ]

    rows = draft_from_form(form).rows

    assert [r.name for r in rows] == ["a", "b", "c"]
    assert [r.name for r in rows[0].fields] == ["inner"]


def test_only_what_a_type_takes_is_sent() -> None:
    row = Row(name="x", type="string", precision="10", symbols="A", items="integer")
    row.fields = [Row(name="ignored")]

    assert create_body(Draft(name="c", rows=[row]))["fields"] == [{"name": "x", "type": "string"}]


def test_symbols_are_split_on_commas_only() -> None:
    row = Row(name="s", type="enum", symbols=" NEW, PAID  LATER,,SHIPPED ")

    assert create_body(Draft(name="c", rows=[row]))["fields"][0]["symbols"] == [
        "NEW",
        "PAID  LATER",
        "SHIPPED",
    ]


def test_a_value_of_the_wrong_kind_is_refused_where_the_api_decoder_refuses_it() -> None:
    draft = Draft(name="c", rows=[Row(name="a"), Row(name="p", type="decimal", precision="ten")])

    with pytest.raises(InvalidConnector) as refused:
        new_connector(draft)

    [problem] = refused.value.problems
    assert problem.field == "fields[1].precision"
    assert "int" in problem.reason


def test_an_unknown_type_is_refused_by_the_decoder_too() -> None:
    with pytest.raises(InvalidConnector) as refused:
        new_connector(Draft(name="c", rows=[Row(name="a", type="money")]))

    assert refused.value.problems[0].field == "fields[0].type"


def test_edit_body_leaves_the_topic_alone_and_clears_what_is_emptied() -> None:
    draft = Draft(name="c", rows=[Row(name="a")], partitions="3", replication_factor="1")

    body = changes_body(draft)
    changes = connector_changes(draft)

    assert "partitions" not in body
    assert "replication_factor" not in body
    assert (changes.rate_limit_per_s, changes.key_field, changes.envelope) == (None, None, None)


def test_a_connector_comes_back_as_the_form_it_was_made_from() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    connector = Connector(
        id="con_1",
        name="orders",
        description="d",
        fields=EVERY_TYPE,
        key_field="id",
        topic="t",
        rejected_topic="r",
        subject="s",
        record_name="orders",
        schema_id=1,
        schema_version=1,
        token_hash="h",
        reject_unknown_fields=True,
        atomic=False,
        rate_limit_per_s=2.5,
        partitions=3,
        replication_factor=1,
        on_delete="keep",
        envelope="firehose",
        created_at=now,
        updated_at=now,
    )

    changes = connector_changes(draft_from_form(_form(draft_of(connector))))

    assert changes.fields == EVERY_TYPE
    assert (changes.rate_limit_per_s, changes.on_delete, changes.envelope) == (
        2.5,
        "keep",
        "firehose",
    )
    assert (changes.key_field, changes.reject_unknown_fields) == ("id", True)


def test_add_and_delete_rows_without_javascript() -> None:
    rows = [Row(name="a"), Row(name="obj", type="object", fields=[Row(name="x")]), Row(name="c")]

    add_row(rows, "fields[1]")
    add_row(rows, "")
    delete_row(rows, "fields[0]")
    delete_row(rows, "fields[0].fields[0]")
    delete_row(rows, "fields[9]")  # not there: nothing happens
    add_row(rows, "nonsense")

    assert [r.name for r in rows] == ["obj", "c", ""]
    assert [r.name for r in rows[0].fields] == [""]


def test_problems_go_beside_the_input_their_path_names() -> None:
    rows = [Row(name="a"), Row(name="e", type="enum"), Row(name="o", type="object")]
    problems = [
        Problem(field="name", reason="taken"),
        Problem(field="fields[1].symbols[2]", reason="'a b' is not an Avro name"),
        Problem(field="fields[2].fields", reason="at least one field is required"),
        Problem(field="fields[0].precision", reason="only allowed on decimal fields"),
        Problem(field="fields", reason="incompatible"),
        Problem(field="verify.secrets[0]", reason="must be the endpoint's signing secret"),
        Problem(field="dedup.pointer", reason="not a JSON Pointer"),
        Problem(field="token", reason="no input for it"),
    ]

    placed = place_problems(problems, anchors_of(rows))

    assert placed == {
        "name": ["taken"],
        "fields[1].symbols": ["[2]: 'a b' is not an Avro name"],
        "fields[2].fields": ["at least one field is required"],
        "fields[0].precision": ["only allowed on decimal fields"],
        "fields": ["incompatible"],
        "verify.secrets[0]": ["must be the endpoint's signing secret"],
        "dedup.pointer": ["not a JSON Pointer"],
        "": ["token: no input for it"],
    }


def test_a_problem_for_a_row_not_shown_goes_to_the_list_of_fields() -> None:
    placed = place_problems([Problem(field="fields[7].name", reason="x")], anchors_of([Row()]))

    assert placed == {"fields": ["[7].name: x"]}


@pytest.mark.parametrize(
    ("example", "media_type"),
    [
        ('{"a": 1}', "application/json"),
        ('{\n  "a": 1,\n  "b": 2\n}', "application/json"),
        ('[{"a": 1}, {"a": 2}]', "application/json"),
        ('{"a": 1}\n{"a": 2}\n', "application/x-ndjson"),
        ("a,b\n1,2\n", "text/csv"),
    ],
)
def test_an_example_is_read_by_its_look(example: str, media_type: str) -> None:
    assert example_media_type(example, "auto") == media_type


def test_an_example_is_read_as_chosen() -> None:
    assert example_media_type('{"a": 1}', "csv") == "text/csv"


def test_an_issued_token_is_taken_once() -> None:
    session: dict[str, object] = {}
    hand_over(session, "con_1", "inlet_ingest_a")
    hand_over(session, "con_2", "inlet_ingest_b")

    assert take_over(session, "con_1") == "inlet_ingest_a"
    assert take_over(session, "con_1") is None
    assert take_over(session, "con_2") == "inlet_ingest_b"
    assert session == {}


def test_a_signature_scheme_and_its_one_secret_go_into_the_create_body() -> None:
    form = [
        ("name", "hooks"),
        ("fields[0].name", "id"),
        ("verify.scheme", "stripe"),
        ("verify.secrets[0]", "whsec_abc"),
        ("verify.tolerance_s", "600"),
        # A recipe typed for hmac, then another scheme chosen: hidden, so not sent.
        ("verify.header", "X-Sig"),
    ]

    new = new_connector(draft_from_form(form))

    assert new.verify is not None
    assert (new.verify.scheme, new.verify.secrets, new.verify.tolerance_s) == (
        "stripe",
        ["whsec_abc"],
        600,
    )
    assert new.verify.header is None


def test_the_hmac_recipe_is_sent_for_hmac() -> None:
    form = [
        ("name", "hooks"),
        ("verify.scheme", "hmac"),
        ("verify.secrets[0]", "s3cret"),
        ("verify.header", " X-Sig "),
        ("verify.algorithm", "sha512"),
        ("verify.encoding", "base64"),
        ("verify.prefix", "sha512="),
        ("verify.signed", "body"),
        ("verify.timestamp_header", ""),
    ]

    body = create_body(draft_from_form(form))

    assert body["verify"] == {
        "scheme": "hmac",
        "secrets": ["s3cret"],
        "header": "X-Sig",
        "algorithm": "sha512",
        "encoding": "base64",
        "prefix": "sha512=",
        "signed": "body",
    }


def test_no_scheme_no_verify_and_an_empty_secret_is_the_decoders_to_name() -> None:
    assert "verify" not in create_body(draft_from_form([("name", "a")]))
    with pytest.raises(InvalidConnector) as refused:
        new_connector(draft_from_form([("name", "a"), ("verify.scheme", "github")]))
    assert [p.field for p in refused.value.problems] == ["verify.secrets[0]"]


def test_dedup_is_sent_when_on_with_what_was_typed_and_presets_for_the_rest() -> None:
    off = [("name", "a"), ("dedup.header", "Idempotency-Key")]
    assert create_body(draft_from_form(off))["dedup"] is None

    preset = create_body(draft_from_form([("name", "a"), ("dedup", "on"), ("dedup.pointer", " ")]))
    assert preset["dedup"] == {}

    typed = [
        ("dedup", "on"),
        ("dedup.header", "Idempotency-Key"),
        ("dedup.pointer", "/id"),
        ("dedup.envelope", "on"),
        ("dedup.window_s", "3600"),
    ]
    new = new_connector(draft_from_form([("name", "a"), *typed]))
    assert new.dedup == DedupRequest(
        header="Idempotency-Key", pointer="/id", envelope=True, window_s=3600
    )


def test_a_window_that_is_no_number_is_refused_beside_its_input() -> None:
    with pytest.raises(InvalidConnector) as refused:
        new_connector(draft_from_form([("name", "a"), ("dedup", "on"), ("dedup.window_s", "x")]))
    placed = place_problems(refused.value.problems, anchors_of([]))
    assert list(placed) == ["dedup.window_s"]


def test_an_edit_keeps_verify_and_shows_dedup_as_stored() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    secret = StoredSecret(sealed="x", fingerprint="f" * 16, added_at=now)
    connector = Connector(
        id="con_1",
        name="orders",
        fields=[FieldSpec(name="id", type="string")],
        topic="t",
        rejected_topic="r",
        subject="s",
        record_name="orders",
        schema_id=1,
        schema_version=1,
        token_hash="h",
        partitions=1,
        replication_factor=1,
        verify=Verify(scheme="stripe", secrets=[secret]),
        dedup=Dedup(pointer="/id", window_s=600),
        created_at=now,
        updated_at=now,
    )

    draft = draft_of(connector)
    body = changes_body(draft_from_form([*_form(draft), *_dedup_form(draft)]))

    assert draft.verify.scheme == "stripe"
    assert "verify" not in body
    assert body["dedup"] == {"pointer": "/id", "window_s": 600}
    assert changes_body(draft_from_form(_form(draft)))["dedup"] is None  # unchecked: removed


def _dedup_form(draft: Draft) -> list[tuple[str, str]]:
    items = [("dedup.header", draft.dedup.header), ("dedup.pointer", draft.dedup.pointer)]
    items.append(("dedup.window_s", draft.dedup.window_s))
    items += [("dedup", "on")] if draft.dedup.on else []
    items += [("dedup.envelope", "on")] if draft.dedup.envelope else []
    return items
