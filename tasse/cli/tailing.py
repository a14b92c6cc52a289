"""Reading a file as it grows, `tail -f` style: for a run's log and an installer's output."""

from __future__ import annotations

import codecs
from pathlib import Path

#: bytes read at most per call: a huge log is shown as it is read, not after
CHUNK = 256 * 1024


class FileTail:
    """What was added to `path` since the last call, as text (UTF-8, bad bytes as U+FFFD)."""

    def __init__(self, path: Path, offset: int = 0):
        self.path = path
        self.offset = offset
        # Incremental: a character split across two reads is decoded once it is whole.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> str:
        """The new text; "" when the file has not grown (or is not there yet)."""
        try:
            with self.path.open("rb") as file:
                size = file.seek(0, 2)
                if size < self.offset:  # rewritten from the start (a new build's log)
                    self.offset = 0
                    self._decoder.reset()
                file.seek(self.offset)
                data = file.read(CHUNK)
        except FileNotFoundError:
            return ""
        self.offset += len(data)
        return self._decoder.decode(data)

    def read_all(self) -> str:
        """Everything added since the last call, however much it is."""
        pieces = []
        while piece := self.read():
            pieces.append(piece)
        return "".join(pieces)
