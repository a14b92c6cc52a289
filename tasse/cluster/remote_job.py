"""One run's job on a cluster's worker, as the scheduler's executor sees a process.

`RemoteRuns` (`cluster/remote.py`) makes one per run it sends and tells it what the store
says of its run; the job queues the run (trying again while the store fails), ends when
its run does, and stops it — withdrawn while no worker has it, else a cancel sent to the
worker that took it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Protocol

from tasse.models import Run, RunStatus
from tasse.runs.execution import ActiveRun
from tasse.runs.runner import Outcome
from tasse.store.run_jobs import LeaseLostError

logger = logging.getLogger(__name__)

#: seconds between attempts to queue a run while the store fails
RETRY_EVERY = 1.0
_ENDED = frozenset(RunStatus) - {RunStatus.queued, RunStatus.running}


class JobOwner(Protocol):
    """What a job asks of the runs' keeper (`RemoteRuns`)."""

    async def enqueue(self, job: RemoteJob) -> None:
        """Write the run and its job (raises LeaseLostError, or the store's error)."""

    async def withdraw(self, job: RemoteJob, why: str) -> bool:
        """End the run while no worker has it; False if one has."""

    def cancel_on(self, job: RemoteJob, node: str) -> None:
        """Have `node` stop the run (in the background)."""

    def changed(self, run: Run) -> None:
        """Tell of the run's new state (live events)."""


class RemoteJob:
    """One run's job on a worker, as the executor sees a process (`runs.execution.Process`)."""

    def __init__(self, owner: JobOwner, active: ActiveRun):
        self._owner = owner
        self.active = active
        #: whether the run and its job are in the store
        self.queued = False
        #: the worker that took it (None: none yet)
        self.node: str | None = None
        self._ended: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._stopping = False
        self._cancel_sent = False
        self._withdrawing = False
        #: when it was queued (time.monotonic())
        self.queued_at = time.monotonic()

    async def start(self) -> None:
        """Queue it, trying again while the store fails (a delay, never a lost run)."""
        while not self._stopping:
            try:
                await self._owner.enqueue(self)
            except LeaseLostError as error:
                # Its fire was this node's; the new scheduler decides from the next one.
                self._end(Outcome(RunStatus.cancelled, error=f"not queued: {error}"))
                return
            except Exception as error:
                logger.warning(
                    "run %s of task %s could not be queued yet: %s",
                    self.active.run.id,
                    self.active.run.task,
                    error,
                )
                await asyncio.sleep(RETRY_EVERY)
                continue
            self.queued = True
            self.queued_at = time.monotonic()
            if self._stopping:  # stopped while it was being queued
                self.stop()
            return
        self._end(Outcome(RunStatus.cancelled, error="stopped before it was queued"))

    async def wait(self) -> Outcome:
        """How it ended on its worker."""
        return await self._ended

    def has_exited(self) -> bool:
        return self._ended.done()

    def kill(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Withdraw it while no worker has it, else have its worker stop it."""
        self._stopping = True
        if not self.queued or self._ended.done():
            return
        if self.node is None:
            if not self._withdrawing:
                self._withdrawing = True
                asyncio.get_running_loop().create_task(self._withdraw())
        elif not self._cancel_sent:
            self._cancel_sent = True
            self._owner.cancel_on(self, self.node)

    async def _withdraw(self) -> None:
        why = self.active.stop_reason or "stopped before a worker took it"
        try:
            withdrawn = await self._owner.withdraw(self, why)
        except Exception as error:  # the next observation tries again
            logger.warning("run %s could not be withdrawn yet: %s", self.active.run.id, error)
            return
        finally:
            self._withdrawing = False
        if withdrawn:
            self._end(Outcome(RunStatus.cancelled, error=why, finished_at=datetime.now(UTC)))
        # else: a worker took it meanwhile; the next observation sends it the cancel

    def observe(self, stored: Run, node: str | None) -> bool:
        """The run as the store has it now; True once it has ended."""
        run = self.active.run
        if node is not None and self.node is None:
            self.node = node
        if stored.status is RunStatus.running and run.status is RunStatus.queued:
            run.status, run.started_at = RunStatus.running, stored.started_at
            self._owner.changed(run)
        if stored.status in _ENDED:
            run.started_at = stored.started_at
            self._end(Outcome(stored.status, stored.exit_code, stored.error, stored.finished_at))
            return True
        if self._stopping and not self._cancel_sent:
            self.stop()  # a cancel for the worker that took it, or a withdrawal again
        return False

    def still_queued(self) -> None:
        """No worker has it yet (or the store has not got it): a stop is tried again."""
        if self._stopping and not self._cancel_sent and not self._ended.done():
            self.stop()

    def _end(self, outcome: Outcome) -> None:
        if not self._ended.done():
            self._ended.set_result(outcome)
