"""Secrets: tokens made with a recognisable prefix, stored as a hash, checked in constant time;
the secret key that seals secrets at rest (inlet/sealing.py), made once per data dir."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

ADMIN_PREFIX = "inlet_admin_"
SECRET_KEY_BYTES = 32  # the key that seals secrets at rest (inlet/sealing.py)
SECRET_KEY_FILE = "secret-key"  # noqa: S105 - a file name, not a secret
INGEST_PREFIX = "inlet_ingest_"


def new_token(prefix: str) -> str:
    """160 random bits, URL-safe, prefixed so a leaked token is recognisable (secret scanners)."""
    return prefix + secrets.token_urlsafe(20)


def token_hash(token: str) -> str:
    # Tokens are high-entropy random strings, so a fast unsalted hash is enough to make a
    # stored hash useless to whoever reads it; a password KDF would only slow the hot path.
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, expected_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), expected_hash)


def ensure_admin_token(configured: str | None, data_dir: Path) -> tuple[str, bool]:
    """The admin token: the configured one, else the one stored in ``data_dir``, else a new one.

    Returns the token and whether it was created now.
    """
    if configured:
        return configured, False
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    token = new_token(ADMIN_PREFIX)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token, True


def new_secret_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_KEY_BYTES)).decode()


def ensure_secret_key(configured: str | None, data_dir: Path) -> str:
    """The configured key, else the one stored in ``data_dir``, else a new one stored there.

    The file appears whole or not at all (written aside, then linked into place), so processes
    starting together agree on one key.
    """
    if configured:
        return configured
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_secret_key() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process was first: its key it is
        finally:
            draft.unlink()
    return path.read_text().strip()


def presented_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization`` header: Bearer, or the password of Basic (any user)."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None
