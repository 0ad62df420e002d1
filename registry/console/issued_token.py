"""A new ingest token, handed from the page that made it to the one page that shows it.

Create and duplicate (the builder) make a token; the connector's page (``/console/connectors/{id}``)
shows it once. In between it travels in the session (the signed, encrypted, HttpOnly cookie), never
in a URL, a log or the browser's history, and the first render of that page takes it out: a
reload shows the URL with the token masked, as the API shows it only in the answer that made it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

SESSION_KEY: Final = "issued_tokens"  # connector id -> the token made for it, not yet shown


def hand_over(session: MutableMapping[str, Any], connector_id: str, token: str) -> None:
    """Keep ``token`` for the next render of ``connector_id``'s page."""
    issued = dict(session.get(SESSION_KEY) or {})
    issued[connector_id] = token
    session[SESSION_KEY] = issued


def take_over(session: MutableMapping[str, Any], connector_id: str) -> str | None:
    """The token made for ``connector_id`` and not yet shown, removed from the session; or None."""
    issued = dict(session.get(SESSION_KEY) or {})
    token = issued.pop(connector_id, None)
    if token is None:
        return None
    if issued:
        session[SESSION_KEY] = issued
    else:
        session.pop(SESSION_KEY, None)
    return str(token)
