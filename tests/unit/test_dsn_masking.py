"""DSNs as libpq reads them: every form a password can be written in is masked, and what is shown
reads back (``conninfo_to_dict``) as the same parameters but the secrets."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from inlet.model.pipeline_sinks import MASK, dsn_secrets, mask_dsn, scrub

# (DSN, the secrets in it as libpq reads them, as they are written if written otherwise)
FORMS: list[tuple[str, list[str]]] = [
    ("postgresql://u:s3cret@h:5432/db", ["s3cret"]),
    ("postgresql://u:pa#ss@h/db", ["pa#ss"]),  # libpq takes "#" into the password
    ("postgresql://u:pa?ss@h/db", ["pa?ss"]),  # ... and "?" (urlsplit thought it a query)
    ("postgresql://u:p%40s%2Fw%20x%23y@h/db", ["p@s/w x#y", "p%40s%2Fw%20x%23y"]),
    ("postgres://u@h/db?password=qs-secret&sslmode=require", ["qs-secret"]),
    ("postgresql://u@h/db?sslmode=require&password=q%23s%3Fx", ["q#s?x", "q%23s%3Fx"]),
    ("postgresql://u:multi-pw@h1:5432,h2:5433/db", ["multi-pw"]),
    ("postgresql://u:v6-pw@[::1]:5432/db", ["v6-pw"]),
    ("postgresql:///db?host=/var/run/postgresql&password=sock-pw", ["sock-pw"]),
    ("host=h password=plain-pw dbname=db", ["plain-pw"]),
    ("host=h password='with space # ? @ /' dbname=db", ["with space # ? @ /"]),
    (r"host=h password='it\'s-pw' dbname=db", ["it's-pw"]),
    ("host=h password=a=b=c dbname=db", ["a=b=c"]),
    ("host=h sslkey=/k.pem sslpassword=key-pw dbname=db", ["key-pw"]),
    ("dbname=postgresql://u:nested-pw@h/db", ["nested-pw"]),
    ("dbname='postgres://u:nested#pw@h/db' host=x", ["nested#pw"]),
    ("host=x dbname='host=h password=kv-nested-pw'", ["kv-nested-pw"]),
    ("dbname='dbname=\\'postgresql://u:deep-pw@h/db\\''", ["deep-pw"]),
]


@pytest.mark.parametrize(("dsn", "secrets"), FORMS)
def test_no_form_of_a_password_is_shown(dsn: str, secrets: list[str]) -> None:
    masked = mask_dsn(dsn)
    for secret in secrets:
        assert secret not in masked
    assert MASK in masked


@pytest.mark.parametrize(("dsn", "secrets"), FORMS)
def test_the_masked_dsn_reads_back_as_the_same_parameters(dsn: str, secrets: list[str]) -> None:
    def masked_params(text: str) -> dict[str, str]:
        params = {k: str(v) for k, v in conninfo_to_dict(text).items()}
        for key in ("password", "sslpassword"):
            if key in params:
                params[key] = MASK
        return params

    given, shown = masked_params(dsn), masked_params(mask_dsn(dsn))
    given_db, shown_db = given.pop("dbname", ""), shown.pop("dbname", "")
    assert shown == given
    if "=" in given_db or given_db.startswith("postgres"):
        assert MASK in shown_db  # a nested connection string, masked the same way
    else:
        assert shown_db == given_db


@pytest.mark.parametrize(("dsn", "secrets"), FORMS)
def test_messages_are_scrubbed_of_every_spelling(dsn: str, secrets: list[str]) -> None:
    message = f"failed: {' and '.join(secrets)} in {dsn!r}"
    scrubbed = scrub(message, dsn_secrets(dsn))
    for secret in secrets:
        assert secret not in scrubbed


@pytest.mark.parametrize(
    "dsn",
    [
        "host=h dbname=db",
        "postgresql://u@h/db",
        "passfile=/run/secrets/pgpass host=h dbname=db",  # a path, not a secret: shown
    ],
)
def test_a_dsn_without_secrets_keeps_its_parameters(dsn: str) -> None:
    assert conninfo_to_dict(mask_dsn(dsn)) == conninfo_to_dict(dsn)
    assert MASK not in mask_dsn(dsn)


def test_an_unreadable_dsn_is_not_shown_at_all() -> None:
    assert mask_dsn("host=h password secret-word") == MASK
