"""A server-sent-event client for the tests: a stream read on a thread, its blocks parsed."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Block:
    """One blank-line-terminated block of a stream, as the server sent it."""

    #: `time.time()` when it arrived
    at: float
    event: str | None = None
    id: str | None = None
    retry: str | None = None
    #: the `data:` lines joined with "\n", as EventSource gives them; None without any
    data: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


def parse(lines: list[str], at: float) -> Block:
    """A block from its lines, by the rules of the HTML standard's EventSource."""
    block, data = Block(at), []
    for line in lines:
        if line.startswith(":"):
            block.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name in ("event", "id", "retry"):
            setattr(block, name, value)
    block.data = "\n".join(data) if data else None
    return block


class Stream:
    """GET an event stream on a thread of its own; `next` and `until` take its blocks."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        self.blocks: queue.Queue[Block | None] = queue.Queue()
        self.status: int | None = None
        self.opened = threading.Event()
        self._socket: socket.socket | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._read, args=(url, headers or {}), daemon=True)
        self._thread.start()
        assert self.opened.wait(10), f"{url} did not answer"

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self.status = response.status_code
                self._socket = response.extensions["network_stream"].get_extra_info("socket")
                self.opened.set()
                lines: list[str] = []
                for line in response.iter_lines():
                    if line:
                        lines.append(line)
                    elif lines:
                        self.blocks.put(parse(lines, time.time()))
                        lines = []
        except httpx.HTTPError:
            pass  # closed by `close`, or by the server
        finally:
            self.opened.set()
            self.blocks.put(None)

    def next(self, timeout: float = 10) -> Block | None:
        """The next block (None once the stream has ended)."""
        try:
            return self.blocks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no block within {timeout} s") from None

    def until(self, done: Any, timeout: float = 15) -> list[Block]:
        """Blocks up to and including the first for which `done(block)` is true."""
        deadline = time.monotonic() + timeout
        taken: list[Block] = []
        while True:
            block = self.next(max(0.01, deadline - time.monotonic()))
            assert block is not None, f"the stream ended; it had sent {taken}"
            taken.append(block)
            if done(block):
                return taken

    def events(self, timeout: float) -> list[Block]:
        """The blocks with data that arrive within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        taken = []
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(AssertionError):
                block = self.next(left)
                if block is None:
                    break
                if block.data is not None:
                    taken.append(block)
        return taken

    def ended(self, timeout: float = 10) -> bool:
        """Wait for the stream to end; whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Close the connection (a shutdown wakes the reading thread; close alone would not)."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._client.close()
