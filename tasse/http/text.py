"""Logs as text a browser shows: UTF-8 always, never taken for a file to download.

A run's output is whatever bytes its program wrote: Latin-1, a stray binary byte, a
UTF-16 byte-order mark. Sent as they are under `charset=utf-8`, a browser may decode them
otherwise (a BOM wins over the header) or sniff them as binary and download them. The
text view decodes them (invalid bytes as U+FFFD, characters never split between chunks);
the bytes as written stay downloadable (`?raw=true`).
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator

#: the text views' type; `nosniff` keeps a browser from taking odd bytes for a download
TEXT_TYPE = "text/plain; charset=utf-8"
TEXT_HEADERS = {"X-Content-Type-Options": "nosniff"}


async def as_text(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks as valid UTF-8: invalid bytes replaced, a character split across chunks kept."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    async for chunk in chunks:
        if text := decoder.decode(chunk):
            yield text.encode("utf-8")
    if tail := decoder.decode(b"", final=True):
        yield tail.encode("utf-8")


def raw_headers(filename: str) -> dict[str, str]:
    """Headers of the bytes as written, saved as `filename` by a browser."""
    return {"Content-Disposition": f'attachment; filename="{filename}"', **TEXT_HEADERS}
