"""Contract: Avro schema references and Avro-strict parsing, as Confluent Schema Registry behaves.

Black-box over HTTP on real Kafka, with Confluent's own Python client where it has a call for it.
What is pinned (Confluent's documented behaviour, docs "Schema references" and the API reference):

* a reference ``{"name", "subject", "version"}`` names a type another subject's version defines;
  register, lookup and compatibility resolve it; ``GET /schemas/ids/{id}`` and
  ``/subjects/{s}/versions/{v}`` return the ``references``; ``.../referencedby`` lists the ids of
  the referring schemas; a referenced version cannot be deleted (422, 42206) until every referring
  version is permanently deleted; the same text with other references is another schema (id);
* ``AvroSerializer`` / ``AvroDeserializer`` resolve the references through the registry;
* schemas Avro Java's parser refuses answer 422 with error_code 42201 and the reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaReference,
    SchemaRegistryClient,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from inlet.settings import Settings
from registry.app import create_app
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_test-token"
ADDRESS = json.dumps(
    {
        "type": "record",
        "name": "Address",
        "namespace": "com.acme",
        "fields": [{"name": "city", "type": "string"}],
    }
)
ADDRESS_V2 = json.dumps(
    {
        "type": "record",
        "name": "Address",
        "namespace": "com.acme",
        "fields": [
            {"name": "city", "type": "string"},
            {"name": "zip", "type": ["null", "string"], "default": None},
        ],
    }
)


def _order(*extra: dict[str, Any]) -> str:
    fields = [
        {"name": "id", "type": "string"},
        {"name": "ship_to", "type": "com.acme.Address"},
        *extra,
    ]
    return json.dumps(
        {"type": "record", "name": "Order", "namespace": "com.acme", "fields": fields}
    )


def _settings(settings: Settings, tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=str(tmp_path),
        admin_token=TOKEN,
    )


def _client(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "basic.auth.user.info": f"any:{TOKEN}"})


def _http(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, auth=("any", TOKEN), timeout=30)


def test_references_register_resolve_check_and_serialise(
    settings: Settings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    address_subject, order_subject = f"com.acme.Address-{run}", f"orders-{run}-value"
    with (
        serve(create_app(_settings(settings, tmp_path))) as url,
        _http(url) as http,
        _client(url) as client,
    ):
        address_id = client.register_schema(address_subject, Schema(ADDRESS, "AVRO"))
        refs = [SchemaReference("com.acme.Address", address_subject, 1)]
        order = Schema(_order(), "AVRO", refs)
        order_id = client.register_schema(order_subject, order)
        assert order_id != address_id
        assert client.register_schema(order_subject, order) == order_id  # the same schema

        # Without its reference the type is unknown: Confluent's 42201.
        alone = http.post(f"/subjects/{order_subject}-x/versions", json={"schema": _order()})
        assert alone.status_code == 422
        assert alone.json()["error_code"] == 42201
        missing = [{"name": "com.acme.Address", "subject": f"nothing-{run}", "version": 1}]
        unknown = http.post(
            f"/subjects/{order_subject}/versions", json={"schema": _order(), "references": missing}
        )
        assert (unknown.status_code, unknown.json()["error_code"]) == (422, 42201)
        assert "No schema reference found" in unknown.json()["message"]

        # Stored with the schema, returned where Confluent returns them.
        wire_refs = [{"name": "com.acme.Address", "subject": address_subject, "version": 1}]
        by_id = http.get(f"/schemas/ids/{order_id}").json()
        assert by_id["references"] == wire_refs
        assert "references" not in http.get(f"/schemas/ids/{address_id}").json()
        version = http.get(f"/subjects/{order_subject}/versions/1").json()
        assert version["references"] == wire_refs
        assert client.get_schema(order_id).references[0].subject == address_subject
        found = client.lookup_schema(order_subject, order)
        assert (found.schema_id, found.version) == (order_id, 1)
        body = {"schema": _order(), "references": wire_refs}
        assert http.post(f"/subjects/{order_subject}", json=body).json()["id"] == order_id
        without = http.post(f"/subjects/{order_subject}", json={"schema": _order()})
        assert without.status_code == 422  # the type cannot be resolved without the reference

        # Same text, other references: another schema, another id (Confluent's identity).
        client.register_schema(address_subject, Schema(ADDRESS_V2, "AVRO"))
        refs_v2 = [SchemaReference("com.acme.Address", address_subject, 2)]
        other_id = client.register_schema(f"{order_subject}-2", Schema(_order(), "AVRO", refs_v2))
        assert other_id != order_id
        assert http.get(f"/subjects/{address_subject}/versions/1/referencedby").json() == [order_id]
        assert http.get(f"/subjects/{address_subject}/versions/2/referencedby").json() == [other_id]
        assert http.get(f"/subjects/{order_subject}/versions/1/referencedby").json() == []
        nowhere = http.get(f"/subjects/nothing-{run}/versions/1/referencedby")
        assert nowhere.json()["error_code"] == 40401

        # Compatibility, with the references of both the new and the existing schemas resolved.
        note = {"name": "note", "type": ["null", "string"], "default": None}
        assert client.test_compatibility(order_subject, Schema(_order(note), "AVRO", refs))
        breaking = {"name": "count", "type": "int"}
        assert not client.test_compatibility(order_subject, Schema(_order(breaking), "AVRO", refs))
        with pytest.raises(SchemaRegistryError) as incompatible:
            client.register_schema(order_subject, Schema(_order(breaking), "AVRO", refs))
        assert incompatible.value.http_status_code == 409
        # Moving to the referenced type's next version is compatible (the field has a default).
        v2_id = client.register_schema(order_subject, Schema(_order(), "AVRO", refs_v2))
        assert v2_id == other_id  # the same schema as in the other subject: its id

        # Confluent's serializer and deserializer resolve the references through the registry.
        serializer = AvroSerializer(
            client,
            conf={"auto.register.schemas": False, "use.latest.version": True},
        )
        deserializer = AvroDeserializer(client)
        ctx = SerializationContext(order_subject.removesuffix("-value"), MessageField.VALUE)
        value = {"id": "o-1", "ship_to": {"city": "Lyon", "zip": "69001"}}
        payload = serializer(value, ctx)
        assert payload is not None
        assert int.from_bytes(payload[1:5], "big") == v2_id
        assert deserializer(payload, ctx) == value
        pinned = AvroSerializer(
            client, Schema(_order(), "AVRO", refs), conf={"auto.register.schemas": False}
        )
        old = pinned({"id": "o-2", "ship_to": {"city": "Nice"}}, ctx)
        assert old is not None
        assert int.from_bytes(old[1:5], "big") == order_id
        assert deserializer(old, ctx) == {"id": "o-2", "ship_to": {"city": "Nice"}}

        # A referenced version cannot be deleted, soft or permanently, version or subject.
        for path in (f"/subjects/{address_subject}/versions/1", f"/subjects/{address_subject}"):
            refused = http.delete(path)
            assert refused.status_code == 422
            assert refused.json() == {
                "error_code": 42206,
                "message": "One or more references exist to the schema "
                f"{{magic=1,keytype=SCHEMA,subject={address_subject},version=1}}.",
            }
        # A soft-deleted referrer still counts; once permanently deleted, the reference is gone.
        assert http.delete(f"/subjects/{order_subject}/versions/1").status_code == 200
        assert http.delete(f"/subjects/{address_subject}/versions/1").json()["error_code"] == 42206
        gone = http.delete(f"/subjects/{order_subject}/versions/1", params={"permanent": "true"})
        assert gone.status_code == 200
        assert http.get(f"/subjects/{address_subject}/versions/1/referencedby").json() == []
        assert http.delete(f"/subjects/{address_subject}/versions/1").json() == 1


def test_references_survive_a_restart(settings: Settings, tmp_path: Path) -> None:
    """What a fresh instance folds from the log has the references: ids, lookups, protection."""
    run = uuid.uuid4().hex[:8]
    address_subject, order_subject = f"address-{run}", f"order-{run}"
    refs = [{"name": "com.acme.Address", "subject": address_subject, "version": 1}]
    with serve(create_app(_settings(settings, tmp_path))) as url, _http(url) as http:
        http.post(f"/subjects/{address_subject}/versions", json={"schema": ADDRESS})
        body = {"schema": _order(), "references": refs}
        order_id = http.post(f"/subjects/{order_subject}/versions", json=body).json()["id"]
    with serve(create_app(_settings(settings, tmp_path / "again"))) as url, _http(url) as http:
        assert http.post(f"/subjects/{order_subject}", json=body).json()["id"] == order_id
        assert http.get(f"/schemas/ids/{order_id}").json()["references"] == refs
        again = http.post(f"/subjects/{order_subject}/versions", json=body)
        assert again.json()["id"] == order_id
        assert http.get(f"/subjects/{order_subject}/versions").json() == [1]
        assert http.delete(f"/subjects/{address_subject}").json()["error_code"] == 42206


STRICT_REFUSALS = {
    "duplicate field names": (
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}] * 2},
        "Duplicate field a",
    ),
    "a record name with -": (
        {"type": "record", "name": "my-record", "fields": []},
        "Illegal type name 'my-record'",
    ),
    "a field name with -": (
        {"type": "record", "name": "R", "fields": [{"name": "a-b", "type": "int"}]},
        "Illegal field name 'a-b'",
    ),
    "a union of two arrays": (
        ["null", {"type": "array", "items": "int"}, {"type": "array", "items": "long"}],
        "Duplicate in union: array",
    ),
    "a union inside a union": (["null", ["int", "string"]], "Nested union"),
    "a default of the wrong type": (
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": "x"}]},
        "Invalid default for field a",
    ),
}


@pytest.mark.parametrize(("schema", "reason"), STRICT_REFUSALS.values(), ids=STRICT_REFUSALS.keys())
def test_schemas_avro_java_refuses_answer_42201(
    registry_url: str, schema: object, reason: str
) -> None:
    subject = f"strict-{uuid.uuid4().hex[:8]}"
    with _http(registry_url) as http:
        for path in (
            f"/subjects/{subject}/versions",
            f"/compatibility/subjects/{subject}/versions",
        ):
            answer = http.post(path, json={"schema": json.dumps(schema)})
            assert answer.status_code == 422
            assert answer.json()["error_code"] == 42201
            assert reason in answer.json()["message"]
        assert http.get(f"/subjects/{subject}/versions").json()["error_code"] == 40401


@pytest.fixture(scope="module")
def registry_url(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("strict")),
        admin_token=TOKEN,
    )
    with serve(create_app(settings)) as url:
        yield url


def test_references_to_subjects_with_slashes_under_modes(
    settings: Settings, tmp_path: Path
) -> None:
    """References meet the rest of Confluent's API: a referenced subject named with ``/``
    (``com/acme/Order``), READONLY before the reference check, Avro's text as identity, and the
    old id back for a referring schema registered again after a permanent delete."""
    run = uuid.uuid4().hex[:8]
    order_subject, shipment_subject = f"com/acme/Order-{run}", f"shipments/{run}-value"
    order_path, shipment_path = quote(order_subject, safe=""), quote(shipment_subject, safe="")
    order = json.dumps(
        {
            "type": "record",
            "name": "Order",
            "namespace": "com.acme",
            "fields": [{"name": "id", "type": "string"}],
        }
    )
    shipment = {
        "type": "record",
        "name": "Shipment",
        "namespace": "com.acme",
        "fields": [{"name": "order", "type": "com.acme.Order"}],
    }
    refs = [{"name": "com.acme.Order", "subject": order_subject, "version": 1}]
    with (
        serve(create_app(_settings(settings, tmp_path))) as url,
        _http(url) as http,
        _client(url) as client,
    ):
        order_id = client.register_schema(order_subject, Schema(order, "AVRO"))
        shipment_id = client.register_schema(
            shipment_subject,
            Schema(
                json.dumps(shipment), "AVRO", [SchemaReference("com.acme.Order", order_subject, 1)]
            ),
        )
        assert client.get_schema(shipment_id).references[0].subject == order_subject
        latest = http.get(f"/subjects/{shipment_path}/versions/latest").json()
        assert latest["references"] == refs
        assert http.get(f"/subjects/{order_path}/versions/1/referencedby").json() == [shipment_id]
        listed = http.get("/schemas", params={"subjectPrefix": "com/acme/"}).json()
        assert [(s["subject"], s["id"]) for s in listed] == [(order_subject, order_id)]
        # Another spelling of the same schema, with the same references: the same schema.
        spelled = json.dumps({k: shipment[k] for k in reversed(list(shipment))}, indent=2)
        body = {"schema": spelled, "references": refs}
        assert http.post(f"/subjects/{shipment_path}", json=body).json()["id"] == shipment_id
        assert http.post(f"/subjects/{shipment_path}/versions", json=body).json()["id"] == (
            shipment_id
        )
        compat = http.post(f"/compatibility/subjects/{shipment_path}/versions/latest", json=body)
        assert compat.json() == {"is_compatible": True}

        # READONLY is checked before the references: the mode's 42205, as Confluent's
        # deleteSchemaVersion does; without it, the reference's 42206.
        assert http.put(f"/mode/{order_path}", json={"mode": "READONLY"}).status_code == 200
        refused = http.delete(f"/subjects/{order_path}/versions/1")
        assert (refused.status_code, refused.json()["error_code"]) == (422, 42205)
        assert http.delete(f"/mode/{order_path}").json() == {"mode": "READONLY"}
        assert http.delete(f"/subjects/{order_path}").json()["error_code"] == 42206

        # The referring schema goes (permanently) and comes back with its old id.
        assert http.delete(f"/subjects/{shipment_path}").json() == [1]
        assert http.delete(f"/subjects/{shipment_path}?permanent=true").json() == [1]
        assert http.get(f"/subjects/{order_path}/versions/1/referencedby").json() == []
        again = http.post(f"/subjects/{shipment_path}/versions", json=body)
        assert again.json() == {"id": shipment_id}
        # Now referenced again: the Order subject cannot go.
        assert http.delete(f"/subjects/{order_path}").json()["error_code"] == 42206


def test_referenced_by_lists_soft_deleted_referrers_whatever_deleted_says(
    registry_url: str,
) -> None:
    """Confluent's ``getReferencedBy`` takes no ``deleted``: it looks the version up soft-deleted
    included and lists every referrer that still blocks its deletion, soft-deleted ones too. So
    ``?deleted=true`` and ``?deleted=false`` answer the same, and so does a soft-deleted version."""
    run = uuid.uuid4().hex[:8]
    address_subject, order_subject = f"rb-address-{run}", f"rb-order-{run}"
    refs = [{"name": "com.acme.Address", "subject": address_subject, "version": 1}]
    with _http(registry_url) as http:
        http.post(f"/subjects/{address_subject}/versions", json={"schema": ADDRESS})
        http.post(f"/subjects/{address_subject}/versions", json={"schema": ADDRESS_V2})
        order = {"schema": _order(), "references": refs}
        order_id = http.post(f"/subjects/{order_subject}/versions", json=order).json()["id"]
        assert http.delete(f"/subjects/{order_subject}/versions/1").json() == 1
        referenced_by = f"/subjects/{address_subject}/versions/1/referencedby"
        for params in ({}, {"deleted": "true"}, {"deleted": "false"}):
            assert http.get(referenced_by, params=params).json() == [order_id], params
        # An unreferenced version soft-deleted: found all the same (Confluent: [] not 40402).
        assert http.delete(f"/subjects/{address_subject}/versions/2").json() == 2
        soft = f"/subjects/{address_subject}/versions/2/referencedby"
        assert http.get(f"/subjects/{address_subject}/versions/2").json()["error_code"] == 40402
        for params in ({}, {"deleted": "true"}):
            answer = http.get(soft, params=params)
            assert (answer.status_code, answer.json()) == (200, []), params
        # Still 40402 for a version that never was, 40401 for an unknown subject.
        assert http.get(f"/subjects/{address_subject}/versions/3/referencedby").json() == {
            "error_code": 40402,
            "message": "Version 3 not found.",
        }
        unknown = f"/subjects/nothing-{run}/versions/1/referencedby"
        nowhere = http.get(unknown, params={"deleted": "true"})
        assert nowhere.json()["error_code"] == 40401


def test_an_unresolvable_reference_is_42201_on_every_path(registry_url: str) -> None:
    """Register, lookup and compatibility answer a reference to a version the registry does not
    have with 422 / 42201 (Confluent's ``InvalidSchemaException``): asked of state caught up with
    the log, so a registry that is merely behind does not say so."""
    run = uuid.uuid4().hex[:8]
    address_subject, order_subject = f"ur-address-{run}", f"ur-order-{run}"
    with _http(registry_url) as http:
        http.post(f"/subjects/{address_subject}/versions", json={"schema": ADDRESS})
        own = {"type": "record", "name": f"Own{run}", "fields": []}  # an id no other test has
        http.post(f"/subjects/{order_subject}/versions", json={"schema": json.dumps(own)})
        for subject, version in ((address_subject, 2), (f"nothing-{run}", 1)):
            refs = [{"name": "com.acme.Address", "subject": subject, "version": version}]
            body = {"schema": _order(), "references": refs}
            for path in (
                f"/subjects/{order_subject}/versions",
                f"/subjects/{order_subject}",
                f"/compatibility/subjects/{order_subject}/versions/latest",
            ):
                answer = http.post(path, json=body)
                assert answer.status_code == 422, (path, answer.text)
                assert answer.json() == {
                    "error_code": 42201,
                    "message": f'Invalid schema: No schema reference found for subject "{subject}"'
                    f" and version {version}",
                }
