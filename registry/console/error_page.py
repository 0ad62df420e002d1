"""The page a person's browser is shown when a console URL fails: the problem in HTML.

Console paths answer errors as the admin API does, ``application/problem+json``
(``registry/_http_errors.py``), and the pages' scripts read that. A browser that navigates (a
link, the address bar, a form) asks for ``text/html`` instead, and a JSON body would be all it
shows; so it gets this page: the same status, the problem's title and detail (and its
``problems``), and a way back. The error table decides when (``asks_for_html``); this only renders.

The page carries the console's CSP itself: an error raised before the console's routes (a path no
route matches) never passes their middleware, and the app-wide ``default-src 'none'`` would stop
the page from loading its stylesheet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from litestar.response import Template

from inlet.errors import Problem
from inlet.problems import problem_body
from inlet.security_headers import CONSOLE_CSP

_PIPELINES = "/console/pipelines"


def back_link(path: str) -> tuple[str, str]:
    """Where the page's link goes: the list of the area the failed URL belongs to."""
    if path == _PIPELINES or path.startswith(_PIPELINES + "/"):
        return _PIPELINES, "Back to the pipelines"
    return "/console/", "Back to the connectors"


def error_page(
    path: str,
    status: int,
    code: str,
    detail: str,
    *,
    problems: Sequence[Problem] = (),
    headers: Mapping[str, str] | None = None,
) -> Template:
    href, label = back_link(path)
    return Template(
        template_name="error.html",
        context={"problem": problem_body(status, code, detail, problems), "back": (href, label)},
        status_code=status,
        headers={**(headers or {}), "content-security-policy": CONSOLE_CSP.decode()},
    )
