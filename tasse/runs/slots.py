"""`--max-concurrent-runs`: how many runs may be alive over all tasks; the rest wait in order."""

from __future__ import annotations

import asyncio
from collections import deque


class RunSlots:
    """A counting semaphore that can also be taken without waiting.

    asyncio.Semaphore has no non-blocking acquire; a run request must know at once whether
    its run starts or is `queued`, so the answer (and the stored row) says which.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits for one."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot in the same moment it stopped waiting
            else:
                waiter.cancel()
            raise

    def release(self) -> None:
        """Give a slot back: to the first in line still waiting, or to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
