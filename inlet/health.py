"""``GET /health`` for every HTTP service: 200 when it can serve, 503 while Kafka is unreachable."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State


@get("/health", sync_to_thread=False, include_in_schema=False)
def health(state: State) -> Response[dict[str, object]]:
    # The app starts serving only after its lifespan (log readers caught up) has run, so Kafka's
    # reachability is the one thing left to tell.
    ok = bool(state.kafka_health.ok)
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", "kafka": ok}
    return Response(
        body, status_code=200 if ok else 503, headers={} if ok else {"Retry-After": "1"}
    )
