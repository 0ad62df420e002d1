"""The console's routes as the registry app serves them: the pages of ``CONSOLE_CONTROLLERS``
behind the session guard, with the session and CSRF middleware and the console's headers, and the
static files, which need no session. None of it is API: it stays out of the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ControllerRouterHandler

from registry.console._headers import console_headers
from registry.console.pages import CONSOLE_CONTROLLERS
from registry.console.session import (
    ConsoleKeys,
    csrf_middleware,
    session_middleware,
    signed_in_guard,
)

_HERE = Path(__file__).parent
STATIC_NAME = "console-static"  # pages link /console/static/<file>


def console_routes(keys: ConsoleKeys, session_hours: int) -> list[ControllerRouterHandler]:
    pages = Router(
        path="/",
        route_handlers=CONSOLE_CONTROLLERS,
        guards=[signed_in_guard(session_hours)],
        middleware=[
            console_headers,
            session_middleware(keys, session_hours),
            csrf_middleware(keys),
        ],
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/console/static",
        directories=[_HERE / "static"],
        name=STATIC_NAME,
        middleware=[console_headers],
        include_in_schema=False,
    )
    return [pages, static]


def console_templates() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=_HERE / "templates", engine=JinjaTemplateEngine)
