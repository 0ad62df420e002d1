"""Both OpenAPI documents say what the services answer: schemathesis against the real apps.

The registry (admin API and Confluent-compatible API) and the gateway run on real Kafka, as
``inlet up`` serves them; schemathesis reads each one's ``/schema/openapi.json`` and sends what it
generates from it, valid and invalid, with every check on: no 5xx, every status, content type and
body as documented, valid input accepted, invalid input refused. The gateway's path carries a
real connector's token, so its valid requests reach Kafka. A short stateful run follows the
document's links (create a connector, then read, change and delete it).

The example counts are small and the seed fixed: the run is reproducible and takes about a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Litestar

from gateway.app import build_app as build_gateway
from gateway.metrics import GatewayMetrics
from inlet.openapi import openapi_document
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from inlet.tokens import new_secret_key
from tests.registry_app import InMemoryRegistry
from tests.servers import serve_inlet

pytestmark = [
    pytest.mark.kafka,
    # Raised by schemathesis' own strategies (4.32), not by anything here.
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

ADMIN_TOKEN = "inlet_admin_openapi-conformance"
SEED = 20261201
MAX_EXAMPLES = 3
# One nullable field and unknown fields ignored: any JSON object is a valid record of it.
CONNECTOR = {
    "name": "conformance",
    "fields": [{"name": "z_note", "type": "string", "nullable": True}],
}


@dataclass(frozen=True)
class Stack:
    registry: str
    gateway: str
    token: str  # the ingest token of a connector the gateway knows


def _wait_until_known(gateway: str, token: str, timeout_s: float = 30.0) -> None:
    """Until the gateway's fold has the connector: its URL answers something other than 404."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = httpx.post(f"{gateway}/v1/ingest/{token}", json={})
        if answer.status_code != 404:
            return
        time.sleep(0.1)
    raise AssertionError("the gateway did not learn the connector's token in time")


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("openapi-data")),
        admin_token=ADMIN_TOKEN,
        topic_partitions=1,
    )
    with serve_inlet(settings) as (registry, gateway, _):
        created = httpx.post(
            f"{registry}/v1/connectors",
            json=CONNECTOR,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        _wait_until_known(gateway, token)
        yield Stack(registry, gateway, token)


# Inputs whose rules no JSON Schema states: the Avro text of a Confluent schema, a cursor the API
# handed out, fields that must name each other (``key_field``) or stay unique after mapping, a
# pipeline's connector, a mode that depends on what the registry holds (IMPORT only where no
# schemas are, without ``force``). Valid by the document, such a request may still be refused as
# documented (422 ``invalid_schema`` 42201, 400 ``invalid_cursor``, 422 ``invalid_connector`` /
# ``invalid_pipeline``, 422 42205): the positive-data check accepts that answer there, and only
# there.
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
_REFUSED_AS_DOCUMENTED = {
    "POST /subjects/{subject}/versions": "422",
    "POST /subjects/{subject}": "422",
    "POST /compatibility/subjects/{subject}/versions": "422",
    "POST /compatibility/subjects/{subject}/versions/{version}": "422",
    "PUT /mode": "422",
    "PUT /mode/{subject}": "422",
    "GET /v1/connectors": "400",
    "GET /v1/connectors/{connector_id}/records": "400",
    "POST /v1/connectors": "422",
    "PATCH /v1/connectors/{connector_id}": "422",
    "POST /v1/connectors/{connector_id}/duplicate": "422",
    "POST /v1/pipelines": "422",
    "POST /v1/pipelines/preview": "422",
}


# NDJSON and CSV bodies are text that JSON Schema cannot describe: records made here, as a
# sender would write them (any JSON object is a record of the connector above).
_OBJECTS = st.lists(
    st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=8), st.integers() | st.text()),
    min_size=1,
    max_size=4,
)
schemathesis.openapi.media_type(
    "application/x-ndjson",
    _OBJECTS.map(lambda records: "".join(json.dumps(r) + "\n" for r in records).encode()),
)
schemathesis.openapi.media_type(
    "text/csv",
    st.lists(st.text("abc,xyz 123", max_size=10), min_size=1, max_size=4).map(
        lambda rows: ("z_note\n" + "".join(f'"{row}"\n' for row in rows)).encode()
    ),
)


def _config(**project: Any) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            # Every check schemathesis has, on.
            "checks": {"enabled": True},
            "operations": [
                {
                    "include-name": name,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, status]}
                    },
                }
                for name, status in _REFUSED_AS_DOCUMENTED.items()
            ],
            **project,
        }
    )


def _registry_document() -> dict[str, Any]:
    """The registry's document as ``registry/wiring.py`` builds it (in memory: no Kafka here)."""
    settings = Settings(
        admin_token=ADMIN_TOKEN, secret_key=new_secret_key(), data_dir="/nonexistent"
    )
    app = InMemoryRegistry(settings, InMemoryStateLog).app
    return openapi_document(app)


@asynccontextmanager
async def _no_lifespan(_app: Litestar) -> AsyncIterator[None]:
    yield


def _gateway_document() -> dict[str, Any]:
    settings = Settings(data_dir="/nonexistent", gateway_fast_path=False)
    app = build_gateway(settings, GatewayMetrics(), _no_lifespan)
    assert isinstance(app, Litestar)
    return openapi_document(app)


# Loaded when the module is: schemathesis makes one test per operation. The tests check first
# that the services serve this very document.
REGISTRY_DOCUMENT = _registry_document()
GATEWAY_DOCUMENT = _gateway_document()
registry = schemathesis.openapi.from_dict(
    REGISTRY_DOCUMENT, config=_config(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
)
gateway = schemathesis.openapi.from_dict(GATEWAY_DOCUMENT, config=_config())


def test_services_serve_the_documents_tested(stack: Stack) -> None:
    assert httpx.get(f"{stack.registry}/schema/openapi.json").json() == REGISTRY_DOCUMENT
    assert httpx.get(f"{stack.gateway}/schema/openapi.json").json() == GATEWAY_DOCUMENT


@registry.parametrize()
def test_registry_answers_as_documented(case: Any, stack: Stack) -> None:
    try:
        case.call_and_validate(base_url=stack.registry)
    finally:
        _restore_modes(case, stack)


def _restore_modes(case: Any, stack: Stack) -> None:
    """Back to READWRITE after a mode was set: a READONLY or IMPORT left behind would refuse the
    writes of the operations tested after it (42205), valid as they are."""
    if case.method != "PUT" or not case.path.startswith("/mode"):
        return
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if case.path == "/mode":
        answer = httpx.put(f"{stack.registry}/mode", json={"mode": "READWRITE"}, headers=headers)
        assert answer.status_code == 200, answer.text
    else:
        subject = quote(case.path_parameters["subject"], safe="")
        answer = httpx.delete(f"{stack.registry}/mode/{subject}", headers=headers)
        assert answer.status_code in (200, 404), answer.text


@gateway.parametrize()
def test_gateway_answers_as_documented(case: Any, stack: Stack) -> None:
    if "token" in case.path_parameters:
        case.path_parameters["token"] = stack.token
    case.call_and_validate(
        base_url=stack.gateway, headers={"Authorization": f"Bearer {stack.token}"}
    )


def test_connector_lifecycle_follows_the_links(stack: Stack) -> None:
    base = registry.include(path_regex="^/v1/connectors").as_state_machine()

    class Lifecycle(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": stack.registry}

    Lifecycle.run(
        settings=hypothesis_settings(
            Lifecycle.TestCase.settings,
            max_examples=5,
            stateful_step_count=4,
            derandomize=True,
            database=None,
        )
    )
