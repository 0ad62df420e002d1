"""Secrets kept at rest, such as a pipeline's database password on a Kafka topic: sealed with
AES-256-GCM, so reading the topic is not enough to read them.

The key is ``INLET_SECRET_KEY`` (32 random bytes, URL-safe base64), else the ``secret-key`` file in
the data dir, made on first use (``inlet up`` makes it before it starts the services and hands it
to them, as it does the admin token). Every process that reads or writes pipelines needs the same
key: the registry and the pipeline workers.

A sealed text is ``sealed:v1:`` + base64(nonce + ciphertext + tag); what it belongs to (a pipeline
id) is bound in as associated data, so a sealed value cannot be moved to another record. Texts
without the prefix open as they are: records written before sealing existed stay readable and are
sealed on their next write.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inlet.settings import Settings

SEALED_PREFIX = "sealed:v1:"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_KEY_FILE = "secret-key"


class SealBroken(ValueError):
    """A sealed text that this key cannot open: another key sealed it, or it was altered."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"a secret key is {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, text: str, *, belongs_to: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode(), belongs_to.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, text: str, *, belongs_to: str) -> str:
        if not is_sealed(text):
            return text
        try:
            raw = base64.urlsafe_b64decode(text[len(SEALED_PREFIX) :])
            opened = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], belongs_to.encode())
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SealBroken("sealed with another secret key (INLET_SECRET_KEY)") from exc
        return opened.decode()


def is_sealed(text: str) -> bool:
    return text.startswith(SEALED_PREFIX)


def new_secret_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def ensure_secret_key(configured: str | None, data_dir: Path) -> str:
    """The configured key, else the one stored in ``data_dir``, else a new one stored there.

    The file appears whole or not at all (written aside, then linked into place), so processes
    starting together agree on one key.
    """
    if configured:
        return configured
    path = data_dir / _KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
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


def secret_box(settings: Settings) -> SecretBox:
    key = ensure_secret_key(settings.secret_key, Path(settings.data_dir))
    try:
        raw = base64.urlsafe_b64decode(key)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("INLET_SECRET_KEY is not URL-safe base64") from exc
    return SecretBox(raw)
