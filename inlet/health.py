"""Health for every HTTP service: ``/health/live``, ``/health/ready`` and ``/health`` (= ready).

Live: the process's event loop turns (it answered). Ready: it can serve correct answers now —
Kafka answers, and every state reader of the process (``app.state.state_readers``) is alive and
caught up with its log (``LogReader.status``). A supervisor restarts what is not live; a load
balancer sends nothing to what is not ready.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State

from inlet.statelog.fold import ReaderStatus


@get("/health/live", sync_to_thread=False, include_in_schema=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get(["/health", "/health/ready"], sync_to_thread=False, include_in_schema=False)
def ready(state: State) -> Response[dict[str, object]]:
    # Before its lifespan has run the app serves nothing, so both are set by the time of a call.
    kafka = bool(state.kafka_health.ok)
    readers: list[ReaderStatus] = [r.status() for r in state.get("state_readers", [])]
    ok = kafka and all(r.caught_up for r in readers)
    body: dict[str, object] = {
        "status": "ok" if ok else "unavailable",
        "kafka": kafka,
        "state": {r.name: r for r in readers},
    }
    return Response(
        body, status_code=200 if ok else 503, headers={} if ok else {"Retry-After": "1"}
    )


HEALTH_ROUTES = [live, ready]
