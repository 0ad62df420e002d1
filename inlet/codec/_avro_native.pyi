"""Types of the C Avro writer (``_avro_native.c``); ``_avro_writer`` builds its programs."""

from collections.abc import Callable
from typing import Any, final

@final
class Writer:
    """Encodes records of one Avro record schema."""

    def __new__(
        cls,
        program: tuple[Any, ...],
        header: bytes,
        astuple: Callable[[Any], tuple[Any, ...]],
        max_depth: int,
    ) -> Writer:
        """ValueError when a node of ``program`` is deeper than ``max_depth`` (the root at 0)."""
    def encode(self, record: Any, /) -> bytes:
        """The header, then the record's Avro body; ValueError when a value does not fit."""
