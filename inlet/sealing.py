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
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inlet.settings import Settings
from inlet.tokens import SECRET_KEY_BYTES, ensure_secret_key

SEALED_PREFIX = "sealed:v1:"
_NONCE_BYTES = 12


class SealBroken(ValueError):
    """A sealed text that this key cannot open: another key sealed it, or it was altered."""


class SecretBox:
    """Seals with the first key; opens with any (older keys, during a rotation)."""

    def __init__(self, *keys: bytes) -> None:
        if not keys:
            raise ValueError("a secret box needs a key")
        for key in keys:
            if len(key) != SECRET_KEY_BYTES:
                raise ValueError(f"a secret key is {SECRET_KEY_BYTES} bytes, not {len(key)}")
        self._aeads = [AESGCM(key) for key in keys]
        self._sealing_key = keys[0]

    def derive_key(self, purpose: bytes) -> bytes:
        """A 32-byte key for ``purpose`` (another use than sealing), derived from the sealing key:
        the same in every process and across restarts, as the sealing key is, and telling nothing
        of it (HMAC-SHA256 of the purpose, keyed with it)."""
        return hmac.new(
            self._sealing_key, b"inlet derived key\0" + purpose, hashlib.sha256
        ).digest()

    def seal(self, text: str, *, belongs_to: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[0].encrypt(nonce, text.encode(), belongs_to.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, text: str, *, belongs_to: str) -> str:
        if not is_sealed(text):
            return text
        try:
            raw = base64.urlsafe_b64decode(text[len(SEALED_PREFIX) :])
        except (binascii.Error, ValueError) as exc:
            raise SealBroken("not a sealed text") from exc
        for aead in self._aeads:
            try:
                opened = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], belongs_to.encode())
            except (InvalidTag, ValueError):
                continue
            return opened.decode()
        raise SealBroken("sealed with another secret key (INLET_SECRET_KEY)")


def is_sealed(text: str) -> bool:
    return text.startswith(SEALED_PREFIX)


def secret_box(settings: Settings) -> SecretBox:
    """The box of ``INLET_SECRET_KEY``: one key, or, to rotate, ``new,old[,older…]`` (the new
    one seals, every one opens; a pipeline is sealed anew with each write of it)."""
    keys = ensure_secret_key(settings.secret_key, Path(settings.data_dir))
    try:
        raw = [base64.urlsafe_b64decode(key.strip()) for key in keys.split(",")]
    except (binascii.Error, ValueError) as exc:
        raise ValueError("INLET_SECRET_KEY is not URL-safe base64") from exc
    return SecretBox(*raw)
