"""What the gateway takes from a request's headers into records, logs and answers — bounded.

A header value is the client's to choose, up to whatever the HTTP server accepts (hundreds of
kilobytes): whatever Inlet copies is multiplied by the records of the request on Kafka and written
to the access log. So the request id is kept only when it is short and plain (else the gateway
makes one, and answers with it), and the content type and encoding, which the rejected records
and the 415 answers quote, are refused beyond a length no real media type reaches.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from inlet.codec.errors import UnsupportedMediaType
from inlet.tokens import ADMIN_PREFIX, INGEST_PREFIX

# The request ids a client may choose: what tracing ids, UUIDs and ULIDs look like, and nothing
# that needs escaping in a log line, a header or a URL.
MAX_REQUEST_ID = 128
_PLAIN_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID}}}")
# Media types name a type and a subtype of at most 127 characters each (RFC 6838 4.2); with a
# charset parameter they stay far below this.
MAX_COPIED_HEADER = 256
# uuid4's version and variant bits: a request id has ``uuid4().hex``'s form (32 hex digits).
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def new_request_id() -> str:
    """``uuid.uuid4().hex``, without building a ``UUID`` object per request (~2 µs → ~1 µs)."""
    bits = int.from_bytes(os.urandom(16))
    return f"{bits & _UUID4_CLEAR | _UUID4_SET:032x}"


def request_id_of(presented: str | None) -> str:
    """The client's ``X-Request-Id`` if it is at most 128 of ``[A-Za-z0-9._:-]``, else a new one.

    One that looks like an Inlet token is replaced too: the access log, the answer and every record
    would show it (a client that put its ingest token there by mistake).
    """
    if (
        presented
        and _PLAIN_REQUEST_ID.fullmatch(presented)
        and not presented.startswith((INGEST_PREFIX, ADMIN_PREFIX))
    ):
        return presented
    return new_request_id()


def copied_header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]`` (``content-type`` or ``content-encoding``), or UnsupportedMediaType
    when it is longer than ``MAX_COPIED_HEADER``: no media type or coding Inlet reads is."""
    value = headers.get(name)
    if value is not None and len(value) > MAX_COPIED_HEADER:
        raise UnsupportedMediaType(
            f"the {name} header is {len(value)} characters long; "
            f"Inlet reads none longer than {MAX_COPIED_HEADER}"
        )
    return value
