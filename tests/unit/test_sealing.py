"""Secrets at rest: sealed with the secret key, bound to their owner, one key per data dir."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
import pytest

from inlet.model.pipelines import Pipeline, PipelineState, PostgresSink, pipeline_record
from inlet.sealing import SealBroken, SecretBox, secret_box
from inlet.settings import Settings, load_settings
from inlet.tokens import ensure_secret_key, new_secret_key
from tests.unit.test_pipeline_api import AT, DSN


def box(key: str | None = None) -> SecretBox:
    return secret_box(Settings(secret_key=key or new_secret_key()))


def test_seal_and_open() -> None:
    sealer = box()
    sealed = sealer.seal(DSN, belongs_to="pip_1")
    assert sealed.startswith("sealed:v1:")
    assert "s3cret" not in sealed
    assert sealed != sealer.seal(DSN, belongs_to="pip_1")  # a new nonce each time
    assert sealer.open(sealed, belongs_to="pip_1") == DSN
    assert sealer.open(DSN, belongs_to="pip_1") == DSN  # written before sealing: as it is


def test_another_key_or_owner_or_an_altered_text_cannot_open() -> None:
    sealer = box()
    sealed = sealer.seal(DSN, belongs_to="pip_1")
    with pytest.raises(SealBroken):
        box().open(sealed, belongs_to="pip_1")
    with pytest.raises(SealBroken):
        sealer.open(sealed, belongs_to="pip_2")  # moved to another pipeline's record
    altered = sealed[:30] + ("A" if sealed[30] != "A" else "B") + sealed[31:]
    with pytest.raises(SealBroken):
        sealer.open(altered, belongs_to="pip_1")


def test_keys_rotate_new_seals_and_old_still_opens() -> None:
    old, new = new_secret_key(), new_secret_key()
    sealed_before = box(old).seal(DSN, belongs_to="pip_1")
    rotating = box(f"{new}, {old}")
    assert rotating.open(sealed_before, belongs_to="pip_1") == DSN
    sealed_after = rotating.seal(DSN, belongs_to="pip_1")
    assert box(new).open(sealed_after, belongs_to="pip_1") == DSN  # sealed with the new key
    with pytest.raises(SealBroken):
        box(old).open(sealed_after, belongs_to="pip_1")


def test_the_key_is_made_once_per_data_dir_even_by_processes_starting_together(
    tmp_path: Path,
) -> None:
    keys: list[str] = []
    threads = [
        threading.Thread(target=lambda: keys.append(ensure_secret_key(None, tmp_path)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert (tmp_path / "secret-key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret-key"]  # no drafts left behind
    assert ensure_secret_key("configured", tmp_path) == "configured"


def test_a_bad_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        box("c2hvcnQ=")
    with pytest.raises(ValueError, match="base64"):
        box("not base64!")


def test_the_secret_key_never_shows_in_repr() -> None:
    key = new_secret_key()
    assert key not in repr(load_settings({"INLET_SECRET_KEY": key}))


def _pipeline(dsn: str) -> Pipeline:
    sink = PostgresSink(dsn=dsn, table="t")
    return Pipeline(
        id="pip_1",
        name="p",
        connector_id="con_1",
        sink=sink,
        dlq_topic="d",
        created_at=AT,
        updated_at=AT,
    )


def test_pipelines_are_stored_sealed_and_folded_open() -> None:
    sealer = box()
    record = pipeline_record(_pipeline(DSN), sealer)
    assert record.value is not None
    assert b"s3cret" not in record.value
    state = PipelineState(sealer)
    state.apply(record.topic, record.key, record.value)
    assert state.by_id["pip_1"] == _pipeline(DSN)
    # A record written before sealing existed still folds.
    plain = msgspec.json.encode(_pipeline(DSN))
    state.apply(record.topic, record.key, plain)
    assert state.by_id["pip_1"] == _pipeline(DSN)


def test_a_pipeline_sealed_with_another_key_stays_listed_and_sealed() -> None:
    record = pipeline_record(_pipeline(DSN), box())
    state = PipelineState(box())
    state.apply(record.topic, record.key, record.value)
    stored = state.by_id["pip_1"].sink
    assert isinstance(stored, PostgresSink)
    assert stored.dsn.startswith("sealed:v1:")  # its sink refuses it, saying why
