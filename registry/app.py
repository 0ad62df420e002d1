"""The registry service: the Confluent-compatible schema registry and the admin API.

State is the fold of two compacted topics (``_schemas``, ``_inlet_connectors``), read by this
instance's ``KafkaStateLog``; writes go through its fenced transactional writer.
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
from inlet.settings import Settings, load_settings
from inlet.tokens import ensure_admin_token, token_hash
from inlet.topics import CONNECTORS_TOPIC, SCHEMAS_TOPIC
from registry._http_errors import EXCEPTION_HANDLERS
from registry.auth import admin_guard
from registry.connector_api import ConnectorController
from registry.connector_service import ConnectorService
from registry.connectors import ConnectorState
from registry.kafka_log import KafkaStateLog
from registry.log import StateFold
from registry.schema_api import SchemaRegistryController
from registry.schema_state import SchemaState
from registry.schemas import SchemaRegistry
from registry.topic_admin import KafkaTopicAdmin


class RegistryService:
    """Everything one registry instance holds: the folded state, the log, the services."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema_state = SchemaState()
        self.connector_state = ConnectorState()
        self.log = KafkaStateLog(
            settings,
            StateFold(self.schema_state, self.connector_state),
            [SCHEMAS_TOPIC, CONNECTORS_TOPIC],
        )
        self.schema_registry = SchemaRegistry(self.schema_state, self.log)
        self.connector_service = ConnectorService(
            settings,
            self.connector_state,
            self.schema_registry,
            self.log,
            KafkaTopicAdmin(settings),
        )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
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
            await kafka_health.stop()

    app = Litestar(
        route_handlers=[health, SchemaRegistryController, ConnectorController],
        dependencies={
            "schema_registry": Provide(lambda: service.schema_registry, sync_to_thread=False),
            "connector_service": Provide(lambda: service.connector_service, sync_to_thread=False),
            "registry_service": Provide(lambda: service, sync_to_thread=False),
        },
        guards=[admin_guard],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="Inlet registry and admin API", version="1"),
    )
    app.state.admin_token_hash = token_hash(admin_token)
    return app
