"""A run's output: written to its log files as it comes, and read back live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from tasse.store.log_files import LogLayout

CHUNK = 64 * 1024
#: a line longer than this goes to log.txt in pieces
MAX_LINE = 64 * 1024
#: bytes of the newest output kept to name a failure by its last line
TAIL = 1024
#: characters of that line a run's error takes
LAST_LINE = 200


def _timestamp() -> bytes:
    return datetime.now().astimezone().isoformat(timespec="milliseconds").encode()


class RunLogWriter:
    """Writes a run's output as it arrives: raw to its run log, timestamped lines to log.txt."""

    def __init__(self, layout: LogLayout, task: str, run_id: str):
        self.path = layout.run_log(task, run_id)
        self._layout = layout
        self._task = task
        self._task_log_path = layout.task_log(task)
        self._room = layout.max_run_log_bytes  # bytes of output this run may still keep
        #: output beyond the run's limit: counted, not kept
        self.dropped = 0
        self._prefix = f" [{run_id}] ".encode()
        #: an unfinished last line, held back until its newline arrives
        self._partial = bytearray()
        self._run_file: BinaryIO | None = None
        self._task_file: BinaryIO | None = None
        self._changed = asyncio.Event()
        self.closed = False
        #: Tasse's notes from before the files are opened (a run waiting for its turn
        #: holds no files, so a thousand of them do not exhaust descriptors)
        self._early_notes: list[bytes] = []
        self._tail = b""

    def open(self) -> None:
        """Create the folders and open both files for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._layout.rotate_task_log(self._task)
        self._run_file = self.path.open("ab")
        self._task_file = self._task_log_path.open("ab")
        self._write_early_notes()

    def _write_early_notes(self) -> None:
        if self._early_notes and self._task_file is not None:
            self._task_file.write(b"".join(self._early_notes))
            self._task_file.flush()
            self._early_notes.clear()

    def write(self, chunk: bytes) -> None:
        """Append a chunk of output; complete lines go to log.txt with a timestamp each."""
        assert self._run_file is not None
        assert self._task_file is not None
        self._tail = (self._tail + chunk[-TAIL:])[-TAIL:]
        if len(chunk) > self._room:
            chunk = self._keep_within_limit(chunk)
            if not chunk:
                return
        if self._room >= 0:
            self._room -= len(chunk)
        self._run_file.write(chunk)
        self._run_file.flush()
        end = chunk.rfind(b"\n")
        if end < 0:
            # No newline (a progress bar): keep collecting, but never without bound.
            self._partial += chunk
            if len(self._partial) >= MAX_LINE:
                self._write_lines([bytes(self._partial)])
                self._partial.clear()
        else:
            lines = (bytes(self._partial) + chunk[:end]).split(b"\n")
            self._partial[:] = chunk[end + 1 :]
            self._write_lines(lines)
        self._notify()

    @property
    def last_line(self) -> str:
        """The output's last line that is not blank, shortened (a failure's likely reason)."""
        lines = self._tail.decode("utf-8", "replace").splitlines()
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        return last if len(last) <= LAST_LINE else last[: LAST_LINE - 1] + "…"

    def _keep_within_limit(self, chunk: bytes) -> bytes:
        # A flood of output must not fill the disk: keep the first part, count the rest.
        if self.dropped == 0 and self._room >= 0:
            kept = chunk[: self._room]
            self.dropped = len(chunk) - len(kept)
            marker = (
                f"\n[tasse] output beyond {self._layout.max_run_log_bytes} bytes is dropped "
                "(counted in the run's last log.txt line)\n"
            ).encode()
            self._room = -1  # from now on everything is dropped
            return kept + marker
        self.dropped += len(chunk)
        return b""

    def _write_lines(self, lines: list[bytes]) -> None:
        assert self._task_file is not None
        stamp = _timestamp() + self._prefix
        self._task_file.write(b"".join(stamp + line + b"\n" for line in lines))
        self._task_file.flush()

    def note(self, message: str) -> None:
        """A line of Tasse's own in log.txt (run started, run ended); held until it is open."""
        line = _timestamp() + self._prefix + b"-- " + message.encode() + b"\n"
        if self._task_file is None:
            self._early_notes.append(line)
            return
        self._task_file.write(line)
        self._task_file.flush()

    def close(self) -> None:
        """Flush a last line without newline and close both files; followers then stop."""
        try:
            if self._early_notes and self._task_file is None:
                # It never started (cancelled while it waited): log.txt still tells its story.
                with contextlib.suppress(OSError):
                    self._task_log_path.parent.mkdir(parents=True, exist_ok=True)
                    self._task_file = self._task_log_path.open("ab")
                    self._write_early_notes()
            if self._partial and self._task_file is not None:
                # The task's last line had no newline: log.txt gets the line, the raw log
                # stays exactly what the task printed.
                self._write_lines([bytes(self._partial)])
                self._partial.clear()
        finally:
            for file in (self._run_file, self._task_file):
                if file is not None:
                    with contextlib.suppress(OSError):
                        file.close()
            self.closed = True
            self._notify()

    @property
    def changed(self) -> asyncio.Event:
        """An event set at the next write or close (take it before reading, to miss nothing)."""
        return self._changed

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


async def follow(path: Path, writer: RunLogWriter | None) -> AsyncIterator[bytes]:
    """Yield a run log's content, then new output as it is written, until the run ends."""
    offset = 0
    while True:
        finished = writer is None or writer.closed
        changed = writer.changed if writer else None
        chunk = read_chunk(path, offset)
        if chunk:
            offset += len(chunk)
            yield chunk
        elif finished or changed is None:
            return
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=1.0)


def read_chunk(path: Path, offset: int) -> bytes:
    """Up to CHUNK bytes of a file from `offset`; empty when there is no more (or no file)."""
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read(CHUNK)
    except FileNotFoundError:
        return b""
