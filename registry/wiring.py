"""The registry app's wiring: its state, services and HTTP app, from the parts that do the I/O.

``create_app`` (``registry/app.py``) makes those parts on Kafka (the state log, topic admin, pull
feed reader and replayer) and on the external schema registry, if one is set; unit tests hand the
same functions an in-memory log and fakes (``tests/registry_app.py``), so what they drive is the
app production runs: the same services, controllers, guard, error table and OpenAPI document.
Nothing here opens a connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Litestar
from litestar.di import Provide

from inlet.health import HEALTH_ROUTES
from inlet.http_allow import allow_every_method
from inlet.model.connectors import ConnectorState, utc_now
from inlet.model.pipelines import PipelineState, PipelineStatusState
from inlet.model.samples import SampleState
from inlet.model.schemas import SchemaState
from inlet.openapi import openapi_config
from inlet.schema_lookup import schema_topics
from inlet.sealing import secret_box
from inlet.security_headers import add_security_headers
from inlet.settings import Settings
from inlet.sink_rules import SinkRules
from inlet.statelog.fold import StateFold, StateLog
from inlet.topics import CONNECTORS_TOPIC, PIPELINE_STATUS_TOPIC, PIPELINES_TOPIC, SAMPLES_TOPIC
from registry._http_errors import EXCEPTION_HANDLERS
from registry._media import answer_in_accepted_type
from registry._openapi import complete as complete_openapi
from registry._request import RegistryRequest
from registry._subject_paths import keep_subjects_encoded
from registry.auth import admin_guard
from registry.connector_api import ConnectorController
from registry.connector_service import ConnectorService
from registry.console.routes import console_routes, console_templates
from registry.console.session import console_keys
from registry.metrics import MeasuredLitestar, RegistryMetrics, metrics_endpoint
from registry.pipeline_api import PipelineController
from registry.pipeline_preview import PipelinePreviewer
from registry.pipeline_service import PipelineService
from registry.records_api import RecordReader, RecordsController
from registry.remote_schemas import RemoteSchemaStore
from registry.replay import RejectedReplayer
from registry.sample_service import SampleService
from registry.samples_api import SamplesController
from registry.schema_api import SchemaRegistryController, root, schemas_elsewhere
from registry.schema_store import LocalSchemaStore, SchemaStore
from registry.schemas import SchemaRegistry
from registry.topic_admin import TopicAdmin

# Starts what the services run on before the app serves, and stops it after.
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


class RegistryState:
    """The folds one registry instance keeps: everything it knows, read from its state log."""

    def __init__(self, settings: Settings) -> None:
        self.schemas = SchemaState()
        self.connectors = ConnectorState()
        self.samples = SampleState()
        self.pipelines = PipelineState(secret_box(settings))
        self.pipeline_statuses = PipelineStatusState()

    def fold(self) -> StateFold:
        """The one folder the state log applies its records to."""
        return StateFold(
            self.schemas, self.connectors, self.samples, self.pipelines, self.pipeline_statuses
        )


def state_topics(settings: Settings) -> list[str]:
    """The topics ``RegistryState`` folds; ``_inlet_samples`` and ``_inlet_pipeline_status`` are
    written by the workers. With an external schema registry, ``_schemas`` is not among them."""
    return [
        *schema_topics(settings),
        CONNECTORS_TOPIC,
        SAMPLES_TOPIC,
        PIPELINES_TOPIC,
        PIPELINE_STATUS_TOPIC,
    ]


@dataclass(frozen=True, kw_only=True)
class RegistryParts:
    """What the services reach the outside through: made on Kafka by ``create_app``, in memory by
    the unit tests. ``log`` folds into the ``RegistryState`` the services are built on."""

    log: StateLog
    topics: TopicAdmin
    # Set when schemas live in another registry: then Inlet's Confluent paths say where.
    remote_schemas: RemoteSchemaStore | None
    record_reader: RecordReader
    replayer: RejectedReplayer


class Services:
    """The registry's services on one state and its parts: what the controllers are given."""

    def __init__(
        self,
        settings: Settings,
        state: RegistryState,
        parts: RegistryParts,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.box = state.pipelines.box
        self.remote_schemas = parts.remote_schemas
        self.schema_registry = SchemaRegistry(state.schemas, parts.log)
        self.schemas: SchemaStore = parts.remote_schemas or LocalSchemaStore(self.schema_registry)
        self.connectors = ConnectorService(
            settings,
            state.connectors,
            self.schemas,
            parts.log,
            parts.topics,
            clock=clock,
            pipelines_of=state.pipelines.ids_of_connector,
            box=state.pipelines.box,
        )
        self.samples = SampleService(state.connectors, state.samples, parts.log, clock=clock)
        self.pipelines = PipelineService(
            state.pipelines,
            state.pipeline_statuses,
            state.connectors,
            parts.log,
            parts.topics,
            rules=SinkRules.from_settings(settings),
            clock=clock,
        )
        self.record_reader = parts.record_reader
        self.replayer = parts.replayer
        self.pipeline_previewer = PipelinePreviewer(
            self.pipelines, self.samples, state.connectors, parts.record_reader
        )


class RegistryApp(MeasuredLitestar):
    """The registry's Litestar app: Confluent's subject paths are routed on the raw path, so a
    subject may hold any character, ``/`` included (``registry/_subject_paths.py``)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            keep_subjects_encoded(scope)
        await super().__call__(scope, receive, send)


def build_app(
    services: Services, *, admin_token_hash: str, lifespan: Sequence[Lifespan] = ()
) -> Litestar:
    """The registry's HTTP app on ``services``; ``lifespan`` starts and stops what they run on."""
    app = RegistryApp(
        route_handlers=[
            *HEALTH_ROUTES,
            metrics_endpoint,
            root,
            (
                SchemaRegistryController
                if services.remote_schemas is None
                else schemas_elsewhere(services.remote_schemas.registry.url)
            ),
            ConnectorController,
            SamplesController,
            PipelineController,
            RecordsController,
            *console_routes(
                console_keys(services.box, admin_token_hash),
                services.settings.console_session_hours,
            ),
        ],
        dependencies={
            "schema_registry": Provide(lambda: services.schema_registry, sync_to_thread=False),
            "connector_service": Provide(lambda: services.connectors, sync_to_thread=False),
            "sample_service": Provide(lambda: services.samples, sync_to_thread=False),
            "pipeline_service": Provide(lambda: services.pipelines, sync_to_thread=False),
            "record_reader": Provide(lambda: services.record_reader, sync_to_thread=False),
            "pipeline_previewer": Provide(
                lambda: services.pipeline_previewer, sync_to_thread=False
            ),
            "rejected_replayer": Provide(lambda: services.replayer, sync_to_thread=False),
        },
        guards=[admin_guard],
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=RegistryRequest,
        template_config=console_templates(),
        lifespan=list(lifespan),
        logging_config=None,  # Inlet's JSON logging is set up once, by the CLI
        openapi_config=openapi_config("Inlet registry and admin API", "1", complete_openapi),
        before_send=[add_security_headers, allow_every_method, answer_in_accepted_type],
    )
    app.state.admin_token_hash = admin_token_hash
    app.state.metrics = app.metrics = RegistryMetrics()
    return app
