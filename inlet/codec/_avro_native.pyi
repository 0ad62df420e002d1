"""Types of the C Avro writer (``_avro_native.c``); ``_avro_writer`` builds its programs."""

from collections.abc import Callable
from typing import Any, final

@final
class Writer:
    """Encodes records of one Avro record schema."""

    def __new__(
        cls, program: tuple[Any, ...], header: bytes, astuple: Callable[[Any], tuple[Any, ...]]
    ) -> Writer: ...
    def encode(self, record: Any, /) -> bytes:
        """The header, then the record's Avro body; ValueError when a value does not fit."""
