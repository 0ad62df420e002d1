"""The registry service: the Confluent-compatible schema registry and the admin API.

State is the fold of compacted topics (``_schemas``, ``_inlet_connectors``, ``_inlet_pipelines``,
and ``_inlet_samples`` and ``_inlet_pipeline_status``, which the workers write), read by this
instance's ``KafkaStateLog``; the registry's own writes go through its fenced transactional writer.
With ``schema_registry_url`` set, schemas live in that registry instead
(``registry/remote_schemas.py``): ``_schemas`` is neither read nor written, and Confluent's paths
here answer where the schemas are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from inlet.health import health
from inlet.kafka import KafkaHealth
from inlet.logs import silence_server_access_log
from inlet.model.connectors import ConnectorState
from inlet.model.pipelines import PipelineState, PipelineStatusState
from inlet.model.samples import SampleState
from inlet.model.schemas import SchemaState
from inlet.schema_lookup import schema_lookup, schema_topics
from inlet.sealing import secret_box
from inlet.settings import Settings, load_settings
from inlet.statelog.fold import StateFold
from inlet.statelog.kafka import KafkaStateLog
from inlet.tokens import ensure_admin_token, token_hash
from inlet.topics import (
    CONNECTORS_TOPIC,
    PIPELINE_STATUS_TOPIC,
    PIPELINES_TOPIC,
    SAMPLES_TOPIC,
)
from registry._http_errors import EXCEPTION_HANDLERS
from registry.auth import admin_guard
from registry.connector_api import ConnectorController
from registry.connector_service import ConnectorService
from registry.pipeline_api import PipelineController
from registry.pipeline_service import PipelineService
from registry.records_api import RecordReader, RecordsController
from registry.remote_schemas import RemoteSchemaStore
from registry.replay import RejectedReplayer
from registry.sample_service import SampleService
from registry.samples_api import SamplesController
from registry.schema_api import SchemaRegistryController, schemas_elsewhere
from registry.schema_store import LocalSchemaStore, SchemaStore
from registry.schemas import SchemaRegistry
from registry.topic_admin import KafkaTopicAdmin


class RegistryService:
    """Everything one registry instance holds: the folded state, the log, the services."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema_state = SchemaState()
        self.connector_state = ConnectorState()
        self.sample_state = SampleState()
        self.pipeline_state = PipelineState(secret_box(settings))
        self.pipeline_status_state = PipelineStatusState()
        # With an external schema registry, Inlet neither writes nor reads ``_schemas``.
        self.remote_schemas = (
            RemoteSchemaStore.from_settings(settings) if settings.schema_registry_url else None
        )
        self.log = KafkaStateLog(
            settings,
            StateFold(
                self.schema_state,
                self.connector_state,
                self.sample_state,
                self.pipeline_state,
                self.pipeline_status_state,
            ),
            [
                *schema_topics(settings),
                CONNECTORS_TOPIC,
                SAMPLES_TOPIC,
                PIPELINES_TOPIC,
                PIPELINE_STATUS_TOPIC,
            ],
        )
        self.schema_registry = SchemaRegistry(self.schema_state, self.log)
        self.schemas: SchemaStore = self.remote_schemas or LocalSchemaStore(self.schema_registry)
        self.connector_service = ConnectorService(
            settings,
            self.connector_state,
            self.schemas,
            self.log,
            KafkaTopicAdmin(settings),
            pipelines_of=self.pipeline_state.ids_of_connector,
        )
        self.sample_service = SampleService(self.connector_state, self.sample_state, self.log)
        self.pipeline_service = PipelineService(
            self.pipeline_state,
            self.pipeline_status_state,
            self.connector_state,
            self.log,
            KafkaTopicAdmin(settings),
        )
        # Records name their schemas by id; the pull feed looks them up where they are.
        self.schema_lookup = schema_lookup(settings, self.schema_state, self.log.sync)
        self.record_reader = RecordReader(settings, self.connector_state, self.schema_lookup)
        self.rejected_replayer = RejectedReplayer(settings, self.connector_state)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    silence_server_access_log()
    service = RegistryService(settings)
    admin_token, _ = ensure_admin_token(settings.admin_token, Path(settings.data_dir))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        kafka_health = KafkaHealth(settings)
        await kafka_health.start_checked()
        app.state.kafka_health = kafka_health
        await service.log.start()
        try:
            yield
        finally:
            await service.log.stop()
            await service.schemas.close()
            await service.schema_lookup.close()
            await kafka_health.stop()

    app = Litestar(
        route_handlers=[
            health,
            (
                SchemaRegistryController
                if service.remote_schemas is None
                else schemas_elsewhere(service.remote_schemas.registry.url)
            ),
            ConnectorController,
            SamplesController,
            PipelineController,
            RecordsController,
        ],
        dependencies={
            "schema_registry": Provide(lambda: service.schema_registry, sync_to_thread=False),
            "connector_service": Provide(lambda: service.connector_service, sync_to_thread=False),
            "sample_service": Provide(lambda: service.sample_service, sync_to_thread=False),
            "pipeline_service": Provide(lambda: service.pipeline_service, sync_to_thread=False),
            "record_reader": Provide(lambda: service.record_reader, sync_to_thread=False),
            "rejected_replayer": Provide(lambda: service.rejected_replayer, sync_to_thread=False),
            "registry_service": Provide(lambda: service, sync_to_thread=False),
        },
        guards=[admin_guard],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        logging_config=None,  # Inlet's JSON logging is set up once, by the CLI
        openapi_config=OpenAPIConfig(title="Inlet registry and admin API", version="1"),
    )
    app.state.admin_token_hash = token_hash(admin_token)
    return app
