"""The gateway's Litestar app: the private ingest URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from inlet.health import health
from inlet.kafka import KafkaHealth
from inlet.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        kafka_health = KafkaHealth(settings)
        await kafka_health.start_checked()
        app.state.kafka_health = kafka_health
        try:
            yield
        finally:
            await kafka_health.stop()

    return Litestar(route_handlers=[health], lifespan=[lifespan])
