"""An unknown ingest token is a 404 only on state caught up with the log; else a 503."""

from __future__ import annotations

import pytest

from gateway.connector_lookup import ConnectorLookup
from gateway.errors import UnknownToken
from inlet.errors import StateUnavailable
from inlet.model.connectors import ConnectorState, connector_record_value
from inlet.statelog.fold import ReaderStatus
from inlet.tokens import token_hash
from inlet.topics import CONNECTORS_TOPIC
from tests.unit.test_state_folds import _connector


class FakeReader:
    """A reader whose sync folds what the "log" has (``pending``), or fails when told to."""

    def __init__(self, connectors: ConnectorState) -> None:
        self.connectors = connectors
        self.pending: list[tuple[bytes, bytes | None]] = []
        self.folded = 0
        self.syncs = 0
        self.down = False

    def status(self) -> ReaderStatus:
        return ReaderStatus(
            name="gateway",
            alive=not self.down,
            caught_up=not self.down,
            lag=0,
            caught_up_s_ago=0.0,
            restarts=0,
            corrupt_records=0,
            error=None,
        )

    async def sync(self, timeout_s: float = 10.0) -> None:
        self.syncs += 1
        if self.down:
            raise StateUnavailable("the reader is restarting")
        for key, value in self.pending:
            self.connectors.apply(CONNECTORS_TOPIC, key, value)
            self.folded += 1
        self.pending.clear()

    def write(self, connector_id: str, token: str | None) -> None:
        value = (
            None
            if token is None
            else connector_record_value(_connector(connector_id, token_hash(token)))
        )
        self.pending.append((connector_id.encode(), value))


@pytest.fixture
def reader() -> FakeReader:
    return FakeReader(ConnectorState())


async def test_a_connector_the_fold_has_not_seen_yet_is_found_after_a_sync(
    reader: FakeReader,
) -> None:
    lookup = ConnectorLookup(reader.connectors, reader)
    reader.write("con_1", "tok-1")  # committed, not yet folded here
    assert (await lookup.connector_for("tok-1")).id == "con_1"
    assert reader.syncs == 1
    assert (await lookup.connector_for("tok-1")).id == "con_1"
    assert reader.syncs == 1  # a known token never waits


async def test_an_unknown_token_is_404_once_caught_up_and_then_remembered(
    reader: FakeReader,
) -> None:
    lookup = ConnectorLookup(reader.connectors, reader)
    for _ in range(100):
        with pytest.raises(UnknownToken):
            await lookup.connector_for("nobody")
    assert reader.syncs == 1  # a flood of one unknown token makes one sync
    reader.write("con_2", "nobody")  # a new record: the token is checked again
    await reader.sync()
    assert (await lookup.connector_for("nobody")).id == "con_2"


async def test_a_deleted_token_is_refused(reader: FakeReader) -> None:
    lookup = ConnectorLookup(reader.connectors, reader)
    reader.write("con_1", "tok-1")
    assert (await lookup.connector_for("tok-1")).id == "con_1"
    reader.write("con_1", None)
    await reader.sync()
    with pytest.raises(UnknownToken):
        await lookup.connector_for("tok-1")


async def test_without_caught_up_state_an_unknown_token_is_503_never_404(
    reader: FakeReader,
) -> None:
    lookup = ConnectorLookup(reader.connectors, reader)
    with pytest.raises(UnknownToken):
        await lookup.connector_for("nobody")
    reader.down = True
    for token in ("nobody", "someone"):  # nor from what it remembered on fresher state
        with pytest.raises(StateUnavailable) as raised:
            await lookup.connector_for(token)
        assert raised.value.retryable


async def test_no_token_is_unknown_without_a_sync(reader: FakeReader) -> None:
    lookup = ConnectorLookup(reader.connectors, reader)
    for token in (None, ""):
        with pytest.raises(UnknownToken):
            await lookup.connector_for(token)
    assert reader.syncs == 0
