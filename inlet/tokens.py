"""Secrets: generation with a recognisable prefix, storage as a hash, constant-time checks."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

ADMIN_PREFIX = "inlet_admin_"
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
