"""The registry's Litestar request: a JSON body nested too deeply is a bad body, not a crash.

Litestar decodes JSON bodies with msgspec, which raises ``RecursionError`` (not a decode error)
past about 1,000 levels; Litestar lets that through as a 500. Here it becomes the 400 every other
unreadable body gets (``_http_errors``: 422 on the Confluent-compatible paths, as Confluent does).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class RegistryRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError as exc:
            raise ClientException("the JSON is nested too deeply") from exc
