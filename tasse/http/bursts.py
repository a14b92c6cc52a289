"""`BurstLog`: an event that comes in bursts is logged once, then counted.

When the process runs out of file descriptors, CPython 3.11's selector loop reports every
failed accept() — up to `backlog` of them per wake-up, as it does not stop at the first
(cpython #151615) — through the loop's exception handler: 92,056 lines in 10 s. The
handler `quiet_accept_errors` makes one line of the burst, and one count a minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: how asyncio's selector loop names an accept() that failed for lack of descriptors
ACCEPT_ERROR = "socket.accept() out of system resource"
#: after the first event of a burst is logged, the ones that follow are counted this long
BURST_WINDOW = 60.0

LoopExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class BurstLog:
    """Log the first event of a kind at once; then, once a window, how many followed."""

    def __init__(self, log: logging.Logger = logger, window: float = BURST_WINDOW) -> None:
        self.log = log
        self.window = window
        self._counts: dict[str, int] = {}

    def note(self, kind: str, level: int, message: str, *args: object) -> None:
        """Log `message` unless a `kind` event was logged in this window; count it then."""
        if kind in self._counts:
            self._counts[kind] += 1
            return
        self._counts[kind] = 0
        self.log.log(level, message, *args)
        asyncio.get_running_loop().call_later(self.window, self._sum_up, kind, level)

    def _sum_up(self, kind: str, level: int) -> None:
        more = self._counts.pop(kind)
        if more:  # the burst goes on: say so, and keep counting
            self.log.log(level, "%d more %s in the last %g s", more, kind, self.window)
            self._counts[kind] = 0
            asyncio.get_running_loop().call_later(self.window, self._sum_up, kind, level)


def quiet_accept_errors(bursts: BurstLog, open_files: int) -> LoopExceptionHandler:
    """A loop exception handler that logs accept errors once per burst, the rest as usual."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if context.get("message") != ACCEPT_ERROR or not isinstance(error, OSError):
            loop.default_exception_handler(context)
            return
        bursts.note(
            "accept errors",
            logging.WARNING,
            "cannot accept connections: %s (open-file limit %d); asyncio retries each "
            "second, and later failures are counted, not logged",
            error.strerror or error,
            open_files,
        )

    return handle
