"""The journal: records the store could not take yet, kept on the local disk until it can.

One append-only file of JSON lines, fsync'd after each append, so a server killed while
its store is down loses nothing: the next start writes what the journal holds before
anything else. The writer truncates it once every record in it is in the store. A torn
last line (the process died in the middle of an append) is skipped on reading.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: default cap on the journal's size: well beyond hours of outage for thousands of tasks
MAX_JOURNAL_BYTES = 256 * 1024 * 1024


class JournalFullError(OSError):
    """The journal reached its size limit (or the disk is full): records stay in memory."""


class Journal:
    """Appends entries durably, reads them back in order, and is emptied when written."""

    def __init__(self, path: Path, max_bytes: int = MAX_JOURNAL_BYTES):
        self.path = path
        self.max_bytes = max_bytes
        #: entries in the file now
        self.count = 0
        self.size = 0

    def open(self) -> list[dict[str, Any]]:
        """Read what a previous process left (at start); the entries, oldest first."""
        entries = list(self._read())
        self.count = len(entries)
        with contextlib.suppress(FileNotFoundError):
            self.size = self.path.stat().st_size
        return entries

    def append(self, entries: Iterable[dict[str, Any]]) -> None:
        """Add entries at the end and make them durable; JournalFullError past the cap."""
        lines = [json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries]
        data = "".join(lines).encode()
        if not data:
            return
        if self.size + len(data) > self.max_bytes:
            raise JournalFullError(f"the journal {self.path} reached its limit of {self.max_bytes}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.path, "ab") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
        except OSError as error:
            # A part of the lines may be in the file: the torn line is skipped on reading,
            # and the whole batch stays in memory to be journaled or written again.
            self.size = self._size_on_disk()
            problem = f"the journal {self.path} could not be written: {error}"
            raise JournalFullError(problem) from None
        self.count += len(lines)
        self.size += len(data)

    def clear(self) -> None:
        """Every entry is in the store now: empty the file."""
        if self.count == 0 and self.size == 0:
            return
        with open(self.path, "wb") as file:
            os.fsync(file.fileno())
        self.count = self.size = 0

    def _size_on_disk(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _read(self) -> Iterator[dict[str, Any]]:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return
        for number, line in enumerate(text.splitlines(), 1):
            try:
                entry = json.loads(line)
            except ValueError:
                logger.warning("journal %s: line %d is torn: skipped", self.path, number)
                continue
            if isinstance(entry, dict):
                yield entry
