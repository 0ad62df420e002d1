"""Whether a worker needs its dedup reader, from its connectors' fold: said once when the first
connector with ``dedup`` appears, and once when the last one goes (deleted, turned off, or
unreadable)."""

from __future__ import annotations

import msgspec
import pytest

from gateway.dedup_demand import DedupDemand
from inlet.model.connectors import ConnectorState, connector_record_value
from inlet.model.dedup import Dedup
from inlet.statelog.fold import CorruptRecord, StateFold
from inlet.topics import CONNECTORS_TOPIC, PIPELINES_TOPIC
from tests.unit.test_state_folds import _connector


def _folded() -> tuple[StateFold, list[bool]]:
    connectors, said = ConnectorState(), list[bool]()
    return StateFold(connectors, DedupDemand(connectors, said.append)), said


def _value(connector_id: str, *, dedup: bool) -> bytes:
    connector = _connector(connector_id, f"h-{connector_id}")
    if dedup:
        connector = msgspec.structs.replace(connector, dedup=Dedup(header="webhook-id"))
    return connector_record_value(connector)


def test_the_first_dedup_connector_and_the_last_one_gone_are_said_once_each() -> None:
    fold, said = _folded()
    fold.apply(CONNECTORS_TOPIC, b"con_plain", _value("con_plain", dedup=False))
    assert said == []
    fold.apply(CONNECTORS_TOPIC, b"con_1", _value("con_1", dedup=True))
    fold.apply(CONNECTORS_TOPIC, b"con_2", _value("con_2", dedup=True))
    assert said == [True]
    fold.apply(CONNECTORS_TOPIC, b"con_1", None)  # deleted
    assert said == [True]
    fold.apply(CONNECTORS_TOPIC, b"con_2", _value("con_2", dedup=False))  # turned off
    assert said == [True, False]
    fold.apply(CONNECTORS_TOPIC, b"con_2", _value("con_2", dedup=True))  # on again
    assert said == [True, False, True]


def test_a_dedup_connector_whose_record_cannot_be_read_is_gone_for_the_demand_too() -> None:
    fold, said = _folded()
    fold.apply(CONNECTORS_TOPIC, b"con_1", _value("con_1", dedup=True))
    with pytest.raises(CorruptRecord):  # the reader counts and skips it
        fold.apply(CONNECTORS_TOPIC, b"con_1", b"not json")
    assert said == [True, False]


def test_other_topics_are_not_connectors() -> None:
    fold, said = _folded()
    fold.apply(PIPELINES_TOPIC, b"con_1", _value("con_1", dedup=True))
    assert said == []
