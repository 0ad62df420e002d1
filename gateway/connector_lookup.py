"""Which connector an ingest token opens, never answering "unknown" from state that is behind.

A token the fold knows is answered from memory (the hot path). One it does not know may be a
connector created a moment ago that this process has not folded yet, so the fold is first brought
up to date with the log (``LogReader.sync``, bounded): only then is the token unknown (404). When
the state cannot be brought up to date (the reader is behind, restarting or stopped; Kafka does
not answer) the answer is ``StateUnavailable`` (503 with ``Retry-After``): a sender told "unknown
token" disables its webhook, one told "try again" does not.

A flood of unknown tokens must not make a flood of syncs: concurrent syncs share their end-offset
requests (``LogReader``), and a token found unknown on caught-up state is remembered as unknown
until the fold moves (a new record may be its connector) or the reader's last fetch that found it
caught up is no longer recent.
"""

from __future__ import annotations

from gateway.errors import UnknownToken
from inlet.model.connectors import Connector, ConnectorState
from inlet.statelog.fold import StateReader, confirm_absent
from inlet.tokens import token_hash

# Enough for every deleted token a busy sender population keeps trying; bounded against floods.
_MAX_REMEMBERED = 10_000
# A remembered unknown token stands while the reader's last fetch that found it caught up is this
# recent (a live reader fetches every half second); older, the log may have moved unseen.
_REMEMBER_WHILE_FETCHED_WITHIN_S = 1.5


class ConnectorLookup:
    def __init__(self, connectors: ConnectorState, reader: StateReader) -> None:
        self._connectors = connectors
        self._reader = reader
        self._unknown: dict[str, int] = {}  # token hash → ``reader.folded`` when found unknown

    async def connector_for(self, token: str | None) -> Connector:
        """The connector ``token`` opens; unknown, rotated-out and deleted tokens look alike."""
        if not token:
            raise UnknownToken
        hashed = token_hash(token)
        connector = self._connectors.by_token_hash(hashed)
        if connector is not None:
            return connector
        if self._unknown.get(hashed) == self._reader.folded and self._fresh():
            raise UnknownToken
        await confirm_absent(self._reader)
        connector = self._connectors.by_token_hash(hashed)
        if connector is not None:
            return connector
        if len(self._unknown) >= _MAX_REMEMBERED:
            self._unknown.clear()
        self._unknown[hashed] = self._reader.folded
        raise UnknownToken

    def _fresh(self) -> bool:
        status = self._reader.status()
        ago = status.caught_up_s_ago
        return status.caught_up and ago is not None and ago <= _REMEMBER_WHILE_FETCHED_WITHIN_S
