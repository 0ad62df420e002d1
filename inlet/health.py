"""``GET /health`` for every HTTP service: 200 when it can serve, 503 while Kafka is unreachable."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State


@get("/health", sync_to_thread=False, include_in_schema=False)
def health(state: State) -> Response[dict[str, object]]:
    kafka_ok = bool(state.kafka_health.ok)
    ready = kafka_ok and bool(state.get("ready", True))
    body: dict[str, object] = {"status": "ok" if ready else "unavailable", "kafka": kafka_ok}
    return Response(
        body, status_code=200 if ready else 503, headers={} if ready else {"Retry-After": "1"}
    )
