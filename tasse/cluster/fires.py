"""Claims every fire before it becomes a run or a record: a fire this node does not win
(another node claimed it, or this node's lease is stale) goes no further.

The scheduler's fires arrive on the loop; they are gathered while a claim is under way and
claimed together, in one transaction, on one thread of their own (so a task's fires are
claimed in order). A claim that fails leaves its fires unclaimed: the node sets its jobs
back to the last claims once the store answers again (`needs_resume`), so they come due
anew. During a takeover fires are held until the jobs have been set back, so each task's
times are decided together, oldest first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from tasse.cluster.lease import SchedulerLease
from tasse.store.claims import Fire, FireClaims

logger = logging.getLogger(__name__)

#: what a won fire is handed to: the task's name and its won times, oldest first
Deliver = Callable[[str, list[datetime]], None]


class FireClaimer:
    """Lets through only the fires this node claimed."""

    def __init__(self, claims: FireClaims, lease: SchedulerLease, deliver: Deliver):
        self._claims = claims
        self._lease = lease
        self._deliver = deliver
        self._waiting: dict[str, list[datetime]] = {}
        self._arrived = asyncio.Event()
        self._held = False
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tasse-claims")
        self._task: asyncio.Task[None] | None = None
        #: a claim failed: the fires it held must come due again once the store answers
        self.needs_resume = False

    def start(self) -> None:
        """Start claiming."""
        self._task = asyncio.get_running_loop().create_task(self._claim_forever())

    async def stop(self) -> None:
        """Stop claiming (fires not claimed yet are left to the next scheduler)."""
        if self._task is not None:
            self._task.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)

    def on_fire(self, name: str, due: list[datetime]) -> None:
        """The scheduler's callback: claim these fires, unless another node is the scheduler."""
        if not self._lease.held:
            return  # the lease's holder claims them; a standby only keeps its jobs running
        self._waiting.setdefault(name, []).extend(due)
        if not self._held:
            self._arrived.set()

    def hold(self) -> None:
        """Gather fires without claiming them (a takeover is setting the jobs back)."""
        self._held = True

    def release(self) -> None:
        """Claim what was gathered."""
        self._held = False
        self._arrived.set()

    async def _claim_forever(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if self._held or not self._waiting:
                continue
            waiting, self._waiting = self._waiting, {}
            await self._claim(waiting)

    async def _claim(self, waiting: dict[str, list[datetime]]) -> None:
        token = self._lease.token
        if token is None:
            return
        fires: list[Fire] = [(name, at) for name, times in waiting.items() for at in times]
        loop = asyncio.get_running_loop()
        try:
            # Not abandoned on a deadline: a claim that lands late still owns its fires,
            # and they must still get their records (late, by the grace time's rules).
            won = await loop.run_in_executor(
                self._thread, self._claims.claim, self._lease.node, token, fires
            )
        except Exception as error:
            logger.error("%d fire(s) could not be claimed: %s", len(fires), error)
            self.needs_resume = True
            return
        for name, times in waiting.items():
            mine = sorted({at for at in times if (name, at) in won})
            if not mine:
                continue
            try:
                self._deliver(name, mine)
            except Exception:  # one task's trouble must not cost the others their fires
                logger.exception("task %s: its claimed fires could not be handed on", name)
