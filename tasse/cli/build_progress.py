"""The installer's output on the terminal as it is written, while an environment builds.

The build writes it to its log file (`EnvCache.log_file`), as it does for the server; a
thread tails that file meanwhile. A log older than this build (the last attempt's) is not
shown: only a file written since the build began, from its start.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from tasse.cli.tailing import FileTail

#: seconds between looks at the log
POLL = 0.05
#: how each line of the installer's output is set off from the task's own
PREFIX = "  | "
#: seconds a file's mtime may lag behind `time.time()` taken before it was written
MTIME_SLACK = 0.1


@contextmanager
def build_progress(log: Path, stream: TextIO = sys.stderr) -> Iterator[None]:
    """Show what is written to `log` on `stream`, line by line, until the block ends."""
    started = time.time()
    done = threading.Event()
    printer = _LinePrinter(stream)
    tail = FileTail(log)

    def follow() -> None:
        while not done.is_set():
            if _written_since(log, started):
                printer.add(tail.read())
            done.wait(POLL)

    thread = threading.Thread(target=follow, name="build-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if _written_since(log, started):
            printer.add(tail.read_all())
        printer.flush()


def _written_since(log: Path, started: float) -> bool:
    try:
        # The kernel stamps files with a coarse clock, a few milliseconds behind time().
        return log.stat().st_mtime >= started - MTIME_SLACK
    except OSError:
        return False


class _LinePrinter:
    """Prints whole lines as they complete (a progress bar's half line waits for its end)."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._pending = ""

    def add(self, text: str) -> None:
        if not text:
            return
        *lines, self._pending = (self._pending + text).replace("\r", "\n").split("\n")
        for line in lines:
            if line.strip():
                print(f"{PREFIX}{line}", file=self._stream, flush=True)

    def flush(self) -> None:
        if self._pending.strip():
            print(f"{PREFIX}{self._pending}", file=self._stream, flush=True)
        self._pending = ""
