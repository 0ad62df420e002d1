"""The web console: server-rendered pages under ``/console/`` on the registry/admin app.

Each area of the console is a controller module here with its templates in its own directory
under ``templates/`` and its scripts in ``static/``; ``CONSOLE_CONTROLLERS`` lists the
controllers, one line each, and ``routes.py`` serves them behind the console's session. The
pages call the services the JSON API calls (the app's dependencies). See ``README.md``.
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from registry.console.auth_pages import AuthPages
from registry.console.list_pages import ListPages
from registry.console.pipeline_pages import PipelinePages

# Paths are full (``/console/...``): the router they are served in is at ``/``.
CONSOLE_CONTROLLERS: list[ControllerRouterHandler] = [
    AuthPages,
    ListPages,
    PipelinePages,
]
