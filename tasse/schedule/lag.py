"""How late the event loop wakes up: the delay every fire (and every answer) suffers.

A task on the loop sleeps a short tick and notes how much later than asked it woke;
`/health` turns unhealthy while the worst lag of the last few seconds passes a limit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

#: seconds between measurements, and how many recent ones count
TICK, KEPT = 0.1, 50


class LoopLag:
    """Measures the event loop's lag in the background while started."""

    def __init__(self) -> None:
        self._recent: collections.deque[float] = collections.deque(maxlen=KEPT)
        self._task: asyncio.Task[None] | None = None
        #: when the tick now due began (a loop stuck in it lags by more than it measured)
        self._started: float | None = None

    def start(self) -> None:
        """Start measuring on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._measure())

    async def stop(self) -> None:
        """Stop measuring."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def worst(self) -> float:
        """The worst lag of the last few seconds, in seconds (the tick now due included)."""
        overdue = 0.0
        if self._started is not None:
            overdue = max(0.0, time.monotonic() - self._started - TICK)
        return max([overdue, *self._recent])

    async def _measure(self) -> None:
        while True:
            self._started = time.monotonic()
            await asyncio.sleep(TICK)
            self._recent.append(max(0.0, time.monotonic() - self._started - TICK))
