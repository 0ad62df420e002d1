"""The OpenAPI document an app serves: ``/schema/openapi.json``, and no pages.

Litestar's documentation pages (Swagger UI, ReDoc, Stoplight Elements, RapiDoc, Scalar) load their
scripts from CDNs, without integrity checks, and do not work offline; Inlet serves none of them.
The document itself is all a tool needs (Swagger UI or Redoc run locally, Postman, Insomnia,
an editor's OpenAPI viewer, a client generator).
"""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

OPENAPI_PATH = "/schema"


def openapi_config(title: str, version: str) -> OpenAPIConfig:
    """``title``'s document, as JSON at ``/schema/openapi.json`` (and at ``/schema``)."""
    return OpenAPIConfig(
        title=title, version=version, path=OPENAPI_PATH, render_plugins=[JsonRenderPlugin()]
    )
