"""Every console page controller, one line each: what ``routes.py`` serves.

Kept out of the package's ``__init__`` so that importing one console module (the error table
imports ``session.py``) does not import every page, and pages can import the error table.
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from registry.console.auth_pages import AuthPages
from registry.console.builder_pages import BuilderPages
from registry.console.connector_pages import ConnectorPages
from registry.console.list_pages import ListPages
from registry.console.pipeline_pages import PipelinePages

# Paths are full (``/console/...``): the router they are served in is at ``/``.
CONSOLE_CONTROLLERS: list[ControllerRouterHandler] = [
    AuthPages,
    ListPages,
    ConnectorPages,
    BuilderPages,
    PipelinePages,
]
