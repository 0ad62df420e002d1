"""Types of the C Avro reader (``_avro_native_reader.c``); ``_avro_reader`` builds its programs."""

from typing import Any, final

@final
class Reader:
    """Decodes Avro bodies of one record schema."""

    def __new__(
        cls,
        program: tuple[Any, ...],
        max_depth: int,
        errors: tuple[type[Exception], ...],
        *,
        uuid_text: bool = False,
    ) -> Reader:
        """ValueError when a node of ``program`` is deeper than ``max_depth`` (the root at 0).
        ``uuid_text``: each UUID as its text (``str(UUID(...))``), not a ``UUID``."""
    def read(self, value: bytes, offset: int, /) -> dict[str, Any]:
        """The record of ``value[offset:]``; raises what fastavro would."""
    def read_rows(
        self, values: list[bytes], offset: int, /
    ) -> tuple[list[dict[str, Any] | None], list[tuple[int, Exception]]]:
        """A record per value (None where it failed with one of ``errors``), and the failures."""
    def read_columns(
        self, values: list[bytes], offset: int, /
    ) -> tuple[tuple[list[Any], ...], list[tuple[int, Exception]]]:
        """A list per top-level field of the values that decoded, and the failures."""
