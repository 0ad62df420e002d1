"""The ingest token never comes back: not in an answer, a log line or a metric (issue #10, item 7).

``POST $INGEST_URL?mode=bogus`` answered a 400 whose detail quoted the path, token included. Here
bad requests of every kind go to a connector's URL on ``inlet gateway`` as shipped (2 workers,
real Kafka, every log line on, at DEBUG), and the token is looked for in every answer's status
line, headers and body, in ``/metrics``, and in every line the gateway's processes wrote.
"""

from __future__ import annotations

import base64
import gzip
import uuid
from pathlib import Path

import httpx
import msgspec
import pytest

from inlet.process import listening_socket
from inlet.settings import Settings
from registry.app import create_app as create_registry
from tests.gateway_processes import gateway_with_two_workers
from tests.servers import serve

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

ADMIN = "inlet_admin_token-echo-test"
MAX_BODY = 65_536
JSON = {"content-type": "application/json"}
GOOD = b'[{"id": "a"}]'


def _bad_requests(url: str, token: str) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, URL, headers, body): every way in, every kind of refusal, and a few successes."""
    base = url.removesuffix("/" + token)  # .../v1/ingest
    bearer = {**JSON, "authorization": f"Bearer {token}"}
    basic = {**JSON, "authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}
    bomb = gzip.compress(b"[" + b" " * (MAX_BODY * 4) + b"]")
    return [
        ("POST", url + "?mode=bogus", JSON, GOOD),
        ("POST", url + "?mode=" + "x" * 3000, JSON, GOOD),
        ("POST", url + "?mode=atomic&mode=bogus&other=1", JSON, GOOD),
        ("POST", url + "?mode=%ff%fe", JSON, GOOD),
        ("POST", url + "?mode=" + token, JSON, GOOD),
        ("POST", base + "?mode=bogus", bearer, GOOD),
        ("POST", base + "?mode=bogus", basic, GOOD),
        ("POST", url, {"content-type": "text/plain"}, GOOD),
        ("POST", url, {}, GOOD),
        ("POST", url, {"content-type": "application/" + "x" * 5000}, GOOD),
        ("POST", url, {**JSON, "content-encoding": "br"}, GOOD),
        ("POST", url, {**JSON, "content-encoding": "gzip"}, b"not gzip"),
        ("POST", url, JSON, b'[{"id": '),
        ("POST", url, JSON, b'[{"id": 1}]'),  # every record invalid
        ("POST", url + "?mode=atomic", JSON, b'[{"id": "a"}, {"id": 2}]'),
        ("POST", url, JSON, b"[" * 5000),
        ("POST", url, JSON, b"[" + b" " * MAX_BODY + b"]"),  # 413
        ("POST", url, {**JSON, "content-encoding": "gzip"}, bomb),  # 413 after decompression
        ("POST", url + "x", JSON, GOOD),  # an unknown token
        ("POST", url[:-3], JSON, GOOD),
        ("POST", url + "/", JSON, GOOD),
        ("POST", url + "/more", JSON, GOOD),
        ("POST", url + "//", JSON, GOOD),
        ("POST", url, {**JSON, "host": "a b"}, GOOD),
        ("POST", url, {**JSON, "x-request-id": token}, GOOD),
        ("POST", url, {**JSON, "x-request-id": "r" * 1000}, GOOD),
        ("GET", url, {}, b""),
        ("PUT", url, JSON, GOOD),
        ("PATCH", url, JSON, GOOD),
        ("DELETE", url, {}, b""),
        ("HEAD", url, {}, b""),
        ("OPTIONS", url, {}, b""),
        ("GET", base, {"authorization": f"Bearer {token}"}, b""),
        ("POST", url, JSON, GOOD),  # 200s too: their answers and access lines
        ("POST", base, bearer, GOOD),
    ]


def _shows(token: str, response: httpx.Response) -> list[str]:
    """Where ``response`` shows ``token``: status line, header names and values, body."""
    found = [f"reason {response.reason_phrase!r}"] if token in response.reason_phrase else []
    found += [f"header {name}" for name, value in response.headers.multi_items() if token in name]
    found += [f"header {name}" for name, value in response.headers.multi_items() if token in value]
    if token.encode() in response.content:
        found.append("body")
    return found


def _connector(registry: str) -> tuple[str, str]:
    """A new connector's token and ingest URL."""
    with httpx.Client(
        base_url=registry, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
    ) as admin:
        created = admin.post(
            "/v1/connectors",
            json={
                "name": f"echo-{uuid.uuid4().hex[:8]}",
                "fields": [{"name": "id", "type": "string"}],
                "rate_limit_per_s": 1000,
            },
        )
    assert created.status_code == 201, created.text
    token, url = created.json()["token"], created.json()["ingest_url"]
    assert url.endswith("/" + token)
    return token, url


def _send(gateway: str, token: str, url: str) -> tuple[dict[int, int], list[str]]:
    """Every request of ``_bad_requests`` and a few scrapes: the statuses, and where the token
    showed. A new connection per request, so that both workers answer."""
    statuses: dict[int, int] = {}
    shown: list[str] = []
    for method, target, headers, body in _bad_requests(url, token):
        with httpx.Client(timeout=60) as client:
            response = client.request(method, target, headers=headers, content=body)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        shown += [f"{method} {target[:80]}: {where}" for where in _shows(token, response)]
    for _ in range(6):
        with httpx.Client(timeout=60) as client:
            metrics = client.get(f"{gateway}/metrics")
        assert metrics.status_code == 200
        shown += [f"GET /metrics: {where}" for where in _shows(token, metrics)]
    return statuses, shown


@pytest.mark.timeout(300)  # a gateway start on a busy machine
def test_no_answer_log_line_or_metric_shows_the_token(settings: Settings, tmp_path: Path) -> None:
    listening = listening_socket()
    port = listening.getsockname()[1]
    settings = msgspec.structs.replace(settings, admin_token=ADMIN, gateway_port=port)
    stderr = tmp_path / "gateway.log"
    with (
        serve(create_registry(settings)) as registry,
        gateway_with_two_workers(
            settings,
            listening,
            stderr=stderr,
            extra_env={
                "INLET_LOG_LEVEL": "DEBUG",
                "INLET_LOG_FORMAT": "json",
                "INLET_MAX_BODY_BYTES": str(MAX_BODY),
            },
        ),
    ):
        token, url = _connector(registry)
        statuses, shown = _send(f"http://127.0.0.1:{port}", token, url)
    # The gateway has stopped: every line its processes wrote is in the file.
    lines = stderr.read_text(errors="replace").splitlines()
    shown += [f"log line: {line[:300]}" for line in lines if token in line]
    assert shown == [], "\n".join(shown)
    # The requests did what they are there for: refusals of each kind, some answered and logged.
    assert {400, 404, 405, 413, 415, 422, 200} <= set(statuses), statuses
    assert sum('"msg":"ingest"' in line for line in lines) >= statuses[200]
