"""Where pipelines may deliver: files below the root only, databases on the allowed hosts only."""

from __future__ import annotations

from pathlib import Path

import pytest

from inlet.settings import Settings, SettingsError
from inlet.sink_rules import SinkRefused, SinkRules, parse_sink_hosts


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    return root


@pytest.fixture
def rules(root: Path) -> SinkRules:
    return SinkRules(root, None)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("orders", "orders"),
        ("lake/orders/", "lake/orders"),
        ("./lake//orders/.", "lake/orders"),
    ],
)
def test_relative_directories_are_below_the_root(
    rules: SinkRules, root: Path, given: str, stored: str
) -> None:
    assert rules.stored_directory(given) == stored
    assert rules.directory(given) == root.resolve() / stored


def test_an_absolute_directory_inside_the_root_is_stored_relative(
    rules: SinkRules, root: Path
) -> None:
    assert rules.stored_directory(str(root / "lake" / "orders")) == "lake/orders"


def test_a_symlink_inside_the_root_is_resolved(rules: SinkRules, root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    # One directory, one spelling: two pipelines cannot share it under two names.
    assert rules.stored_directory("alias/orders") == "real/orders"


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        ".",
        "..",
        "../elsewhere",
        "lake/../../elsewhere",
        "lake/../orders",  # ".." is refused wherever it is
        "/etc",
        "/proc/self/cwd/orders",
        "/",
        "orders\x00.parquet",
        "line\nbreak",
        "x" * 256,
        "a/" * 600,
    ],
)
def test_paths_that_leave_the_root_or_cannot_be_written_are_refused(
    rules: SinkRules, given: str
) -> None:
    with pytest.raises(SinkRefused) as refused:
        rules.directory(given)
    assert refused.value.problem.field == "sink.directory"
    assert rules.directory_problems(given) == [refused.value.problem]


def test_the_root_itself_and_symlinks_out_of_it_are_refused(
    rules: SinkRules, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    for given in ("escape", "escape/orders", str(root), str(root / "escape" / "x")):
        assert [p.field for p in rules.directory_problems(given)] == ["sink.directory"], given


def test_a_root_that_is_a_symlink_takes_both_spellings(tmp_path: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    link = tmp_path / "root-link"
    link.symlink_to(real)
    rules = SinkRules(link, None)
    assert rules.stored_directory(str(link / "orders")) == "orders"
    assert rules.stored_directory(str(real / "orders")) == "orders"


def test_files_root_defaults_inside_the_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=str(tmp_path)).files_root_dir == str(tmp_path / "files")
    assert Settings(data_dir=str(tmp_path), files_root="/srv/lake").files_root_dir == "/srv/lake"


# --- Hosts. ---

HOSTS = "db.internal, *.pg.example.com, 10.1.0.0/16, ::1, /var/run/postgresql"


@pytest.mark.parametrize(
    "params",
    [
        {"host": "db.internal"},
        {"host": "DB.Internal."},
        {"host": "eu.pg.example.com"},
        {"host": "10.1.2.3"},
        {"host": "::1"},
        {"host": "/var/run/postgresql/"},
        {"host": "db.internal,10.1.9.9", "port": "5432,5433"},
        {"host": "db.internal", "hostaddr": "10.1.0.5"},
    ],
)
def test_allowed_hosts(tmp_path: Path, params: dict[str, str]) -> None:
    SinkRules(tmp_path, parse_sink_hosts(HOSTS)).check_hosts(params)


@pytest.mark.parametrize(
    "params",
    [
        {"host": "evil.example"},
        {"host": "pg.example.com.evil"},
        {"host": "10.2.0.1"},
        {"host": "127.0.0.1"},
        {"host": "/tmp"},
        {"host": "db.internal,evil.example"},
        {"host": "db.internal", "hostaddr": "192.0.2.1"},  # libpq connects to hostaddr
        {"hostaddr": "192.0.2.1"},
        {"dbname": "x"},  # no host: libpq's default, which the list cannot vouch for
        {"host": "db.internal", "service": "other"},  # pg_service.conf may name any host
    ],
)
def test_hosts_not_allowed_are_refused(tmp_path: Path, params: dict[str, str]) -> None:
    rules = SinkRules(tmp_path, parse_sink_hosts(HOSTS))
    problems = rules.host_problems(params)
    assert [p.field for p in problems] == ["sink.dsn"]


def test_any_host_without_a_list(tmp_path: Path) -> None:
    SinkRules(tmp_path, None).check_hosts({"host": "anything.example", "service": "x"})


@pytest.mark.parametrize("text", ["", " , ", "bad host!", "10.0.0.0/33", "db internal"])
def test_a_bad_host_list_is_a_settings_error(text: str) -> None:
    with pytest.raises(ValueError, match="INLET_SINK_HOSTS"):
        parse_sink_hosts(text)
    with pytest.raises(SettingsError, match="INLET_SINK_HOSTS"):
        Settings(sink_hosts=text)
