"""Pagination cursors: opaque to clients, a small msgspec Struct to the service that made them.

A cursor is the Struct as JSON, URL-safe base64 without padding. Anything that does not decode to
the Struct (damaged, made up, another endpoint's) is ``InvalidCursor``, naming the ``cursor``
parameter, so a client learns to start over rather than getting a wrong page.
"""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

import msgspec

from inlet.errors import InvalidCursor, Problem

T = TypeVar("T", bound=msgspec.Struct)


def invalid_cursor(reason: str = "not a next_cursor this API returned") -> InvalidCursor:
    return InvalidCursor("invalid cursor", problems=[Problem(field="cursor", reason=reason)])


class CursorCodec(Generic[T]):
    def __init__(self, struct: type[T]) -> None:
        self._decoder = msgspec.json.Decoder(struct)

    def encode(self, position: T) -> str:
        return base64.urlsafe_b64encode(msgspec.json.encode(position)).rstrip(b"=").decode()

    def decode(self, cursor: str) -> T:
        try:
            return self._decoder.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
            raise invalid_cursor() from exc
