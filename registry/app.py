"""The registry service on Kafka: the Confluent-compatible schema registry and the admin API.

State is the fold of compacted topics (``_schemas``, ``_inlet_connectors``, ``_inlet_pipelines``,
and ``_inlet_samples`` and ``_inlet_pipeline_status``, which the workers write), read by this
instance's ``KafkaStateLog``; the registry's own writes go through its fenced transactional writer.
With ``schema_registry_url`` set, schemas live in that registry instead
(``registry/remote_schemas.py``): ``_schemas`` is neither read nor written, and Confluent's paths
here answer where the schemas are.

This module makes the parts that reach Kafka and the external registry, and starts and stops
them; the services and the HTTP app are built from them by ``registry/wiring.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar

from inlet.kafka import KafkaHealth
from inlet.logs import silence_server_access_log
from inlet.schema_lookup import schema_lookup
from inlet.settings import Settings, load_settings
from inlet.statelog.kafka import KafkaStateLog
from inlet.tokens import ensure_admin_token, token_hash
from registry.records_api import RecordReader
from registry.remote_schemas import RemoteSchemaStore
from registry.replay import RejectedReplayer
from registry.topic_admin import KafkaTopicAdmin
from registry.wiring import RegistryParts, RegistryState, Services, build_app, state_topics


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    silence_server_access_log()
    state = RegistryState(settings)
    log = KafkaStateLog(settings, state.fold(), state_topics(settings))
    # Records name their schemas by id; the pull feed looks them up where they are.
    lookup = schema_lookup(settings, state.schemas, log.sync)
    services = Services(
        settings,
        state,
        RegistryParts(
            log=log,
            topics=KafkaTopicAdmin(settings),
            # With an external schema registry, Inlet neither writes nor reads ``_schemas``.
            remote_schemas=(
                RemoteSchemaStore.from_settings(settings) if settings.schema_registry_url else None
            ),
            record_reader=RecordReader(settings, state.connectors, lookup, log),
            replayer=RejectedReplayer(settings, state.connectors, log),
        ),
    )
    admin_token, _ = ensure_admin_token(settings.admin_token, Path(settings.data_dir))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        kafka_health = KafkaHealth(settings)
        await kafka_health.start_checked()
        app.state.kafka_health = kafka_health
        await log.start()
        watching = app.state.metrics.state_readers.watch(log.reader)
        app.state.state_readers = [log.reader]
        try:
            yield
        finally:
            watching.cancel()
            await log.stop()
            await services.schemas.close()
            await lookup.close()
            await kafka_health.stop()

    return build_app(services, admin_token_hash=token_hash(admin_token), lifespan=[lifespan])
