"""`SharedState`: what one node of a cluster learns from the store that another node
changed — tasks defined, replaced or deleted through its API or seed file, and pauses.

Every node schedules every task (a standby must be ready to take over) and decides on
pauses from memory, so each keeps its memory in step with the store: it reads the
store's mark of both tables every second (`store/revisions.py`, one cheap query) and the
changed table only when the mark moved. A change made through any node so takes effect
on the scheduler within about a second; folder tasks need none of it (every node
watches the same, or identical, folders), nor do workers (a job carries its task).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tasse.errors import StoreUnavailableError
from tasse.runs.pauses import PausedTasks
from tasse.store.pauses import PauseTable
from tasse.store.revisions import Revision, SharedRevisions
from tasse.store.runs import RunStore
from tasse.tasks.catalog import Catalog

logger = logging.getLogger(__name__)

#: seconds between two reads of the store's mark
FOLLOW_EVERY = 1.0


class SharedState:
    """Follows the defined tasks and the pauses other nodes write to the store."""

    def __init__(self, store: RunStore, catalog: Catalog, pauses: PausedTasks):
        self._store = store
        self._catalog = catalog
        self._pauses = pauses
        self._revisions = SharedRevisions(store)
        self._pause_table = PauseTable(store)
        #: the mark this node's memory is in step with (None: not known, read everything)
        self._followed: Revision | None = None
        self._loop: asyncio.Task[None] | None = None

    async def mark(self) -> None:
        """Note the store's mark before the tasks and pauses are loaded at start: what
        changes after it is followed, nothing is read twice."""
        with contextlib.suppress(StoreUnavailableError):  # then all is read once, later
            self._followed = await self._read_mark()

    def start(self) -> None:
        """Follow from now on (once the tasks and pauses are loaded)."""
        self._loop = asyncio.get_running_loop().create_task(self._follow_forever())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # said when it ended
                await self._loop

    async def _follow_forever(self) -> None:
        while True:
            await asyncio.sleep(FOLLOW_EVERY)
            try:
                await self.follow()
            except StoreUnavailableError as error:  # tried again in a second
                logger.debug("what other nodes changed cannot be read now: %s", error)
            except Exception:  # a bug must not end the following: said, and tried again
                logger.exception("what other nodes changed could not be taken in")

    async def follow(self) -> None:
        """Take in what changed in the store since the last time (once; the loop's step)."""
        revision, followed = await self._read_mark(), self._followed
        if followed is None or revision.tasks != followed.tasks:
            changed, gone = await self._catalog.follow_store()
            for name in changed:
                logger.info("task %s defined or replaced through another node", name)
            for name in gone:
                logger.info("task %s deleted through another node", name)
        if followed is None or revision.pauses != followed.pauses:
            stored = await self._store.off_loop(self._pause_table.load, "reading the pauses")
            for name in self._pauses.follow(stored):
                how = "paused" if self._pauses.is_paused(name) else "resumed"
                logger.info("task %s %s through another node", name, how)
        # Only now: a read that failed above is tried again at the next step.
        self._followed = revision

    async def _read_mark(self) -> Revision:
        return await self._store.off_loop(self._revisions.read, "reading the store's mark")
