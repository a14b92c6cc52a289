"""A run's output as text for a live page: the end of a big log first, then whole lines as
they are written, each piece with the byte offset after it (to resume exactly there).

The log is bytes: it is decoded as UTF-8 (invalid bytes become U+FFFD) without ever
splitting a character between two pieces. A line is sent once its newline arrives; one
without a newline (a prompt, a progress bar) waits at most `PARTIAL_WAIT` before it is
sent anyway. While output keeps coming, it goes at most once per `GAP`: each send costs a
system call on the loop (a third of a millisecond on a loaded machine), and a task
printing a thousand lines a second must not cost a thousand of them per page.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tasse.runs.logs import CHUNK, RunLogWriter

#: how much of a bigger log a page gets first
TAIL = 256 * 1024
#: seconds an unfinished line waits for its newline before it is sent anyway
PARTIAL_WAIT = 0.05
#: seconds at least between two sends while output keeps coming
GAP = 0.025


@dataclass(frozen=True)
class Truncated:
    """The log was bigger than `TAIL`: what follows starts at `offset` of `size` bytes."""

    size: int
    offset: int


@dataclass(frozen=True)
class Text:
    """A piece of the output; `offset` is the byte offset just after it."""

    text: str
    offset: int


#: what `follow_text` yields: a piece, the note that the start was left out, or None when
#: nothing happened for `idle` seconds (time for a heartbeat)
Piece = Text | Truncated | None


def tail_start(path: Path) -> tuple[int, int]:
    """Where a page starts (0, or the first line begun in the last `TAIL` bytes), and the size."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            if size <= TAIL:
                return 0, size
            file.seek(size - TAIL)
            head = file.read(CHUNK)
    except FileNotFoundError:
        return 0, 0
    newline = head.find(b"\n")
    if newline >= 0:
        return size - TAIL + newline + 1, size
    # One very long line: start within it, but not inside a character.
    skip = next((i for i, byte in enumerate(head[:4]) if byte & 0xC0 != 0x80), 0)
    return size - TAIL + skip, size


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class _Follower:
    """Reads on from an offset, holding back what is not ready to send (see the module)."""

    def __init__(self, path: Path, offset: int):
        self.path = path
        self._file: BinaryIO | None = None  # kept open: a wake costs one read, not four calls
        self.read_to = offset  # bytes read from the file
        self.pending = b""  # read, not sent yet
        self.pending_since: float | None = None  # when an unfinished line began to wait
        self.sent_at = float("-inf")
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read(self) -> int:
        """Read what the file has beyond what was read; how many bytes that was."""
        if self._file is None:
            try:
                self._file = self.path.open("rb")
            except FileNotFoundError:  # a run waiting for its turn has no log yet
                return 0
            self._file.seek(self.read_to)
        chunk = self._file.read(CHUNK)
        self.read_to += len(chunk)
        self.pending += chunk
        return len(chunk)

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()

    def too_soon(self, now: float, read: int) -> float:
        """Seconds to gather more output first: the last send was less than `GAP` ago."""
        if 0 < read < CHUNK:  # (a whole chunk: it is catching up, so it goes on at once)
            return max(0.0, self.sent_at + GAP - now)
        return 0.0

    def ready(self, now: float, final: bool) -> Text | None:
        """What is ready to send: whole lines, or everything once it waited long enough."""
        if not self.pending and not (final and self._decoder.getstate()[0]):
            return None
        cut = self.pending.rfind(b"\n") + 1
        if final or len(self.pending) >= CHUNK:
            cut = len(self.pending)
        elif cut == 0:
            if self.pending_since is None:
                self.pending_since = now
            if now - self.pending_since < PARTIAL_WAIT:
                return None
            cut = len(self.pending)
        piece, self.pending = self.pending[:cut], self.pending[cut:]
        self.pending_since = None
        text = self._decoder.decode(piece, final)
        held = len(self._decoder.getstate()[0])  # the start of a character still arriving
        return Text(text, self.read_to - len(self.pending) - held) if text else None

    def wait_for(self, now: float, idle: float) -> float:
        """Seconds to wait for the next write: the rest of a partial line's wait, or `idle`."""
        if self.pending_since is None:
            return idle
        return max(0.0, self.pending_since + PARTIAL_WAIT - now)


async def follow_text(
    path: Path,
    writer: RunLogWriter | None,
    offset: int | None,
    stop: asyncio.Event,
    idle: float,
) -> AsyncIterator[Piece]:
    """Yield the run's output from `offset` (None: the tail) until the run ends or `stop`."""
    if offset is None:
        offset, size = tail_start(path)
        if offset:
            yield Truncated(size, offset)
    follower = _Follower(path, min(offset, _size(path)))
    try:
        async for piece in _follow(follower, writer, stop, idle):
            yield piece
    finally:
        follower.close()


async def _follow(
    follower: _Follower, writer: RunLogWriter | None, stop: asyncio.Event, idle: float
) -> AsyncIterator[Piece]:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        finished = writer is None or writer.closed
        changed = writer.changed if writer is not None else None  # taken before reading
        more = follower.read()
        if not finished and (pause := follower.too_soon(loop.time(), more)):
            await asyncio.sleep(pause)
            continue
        text = follower.ready(loop.time(), final=finished and not more)
        if text is not None:
            follower.sent_at = loop.time()
            yield text
        if more:
            continue
        if finished or changed is None:
            return
        wait = follower.wait_for(loop.time(), idle)
        if not await _first(changed, stop, wait) and follower.pending_since is None:
            yield None  # quiet for `idle` seconds


async def _first(changed: asyncio.Event, stop: asyncio.Event, timeout: float) -> bool:
    """Wait for a write or the stop; False if neither came within `timeout` seconds."""
    waits = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stop.wait())]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        # Also when the page went away (cancelled): a wait left behind lives until the
        # server stops.
        for waiting in waits:
            waiting.cancel()
    return bool(done)
