"""The scheduler node's upkeep: what dead nodes left behind, and old claims and commands.

Only the lease's holder does it, every `EVERY` seconds, so it happens once per cluster. A
node silent for `DEAD_AFTER` seconds is taken for dead: longer than a frozen or cut-off
node takes to lose its lease, so a node that only paused is not declared dead for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from tasse.models import Run, RunStatus, run_id_prefix
from tasse.runs.ledger import not_run_record
from tasse.store.claims import FireClaims
from tasse.store.commands import Commands
from tasse.store.orphans import OrphanFire, Orphans

logger = logging.getLogger(__name__)

#: seconds between upkeep passes
EVERY = 5.0
#: a node silent this long is dead: its runs are interrupted, its unrecorded fires settled
DEAD_AFTER = timedelta(seconds=30)
#: a worker silent this long is dead (four missed heartbeats): its runs are interrupted,
#: and retried by their tasks' policies, within 30 s of its death with the pass's period.
#: Shorter than a scheduler's: a worker holds no lease that must run out first.
WORKER_DEAD_AFTER = timedelta(seconds=20)
#: claims are kept this long (a restart resumes from them, at most a day back)
KEEP_CLAIMS = timedelta(days=2)
#: commands are kept this long (their askers gave up long before)
KEEP_COMMANDS = timedelta(hours=1)
#: passes between prunings
PRUNE_EVERY = 12


class Upkeep:
    """Settles what dead nodes left, prunes what is old; only while this node schedules."""

    def __init__(
        self,
        node: str,
        orphans: Orphans,
        claims: FireClaims,
        commands: Commands,
        is_leader: Callable[[], bool],
        record: Callable[[Sequence[Run]], None],
        stalled_jobs: Callable[[float], tuple[int, int]] | None = None,
    ):
        self._node = node
        self._orphans = orphans
        self._claims = claims
        self._commands = commands
        self._is_leader = is_leader
        self._record = record
        #: settles the run jobs of silent workers (`RunJobs.settle_stalled`), with workers
        self._stalled_jobs = stalled_jobs
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the passes."""
        self._task = asyncio.get_running_loop().create_task(self._keep_up())

    async def stop(self) -> None:
        """Stop the passes."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep_up(self) -> None:
        passes, started = 0, await self._started()
        while True:
            await asyncio.sleep(EVERY)
            if started is not None:
                started = await self._settle_own_past(started)
            if not self._is_leader():
                continue
            passes += 1
            try:
                await asyncio.to_thread(self.settle_dead, datetime.now(UTC))
                if passes % PRUNE_EVERY == 1:
                    await asyncio.to_thread(self.prune, datetime.now(UTC))
            except Exception as error:  # the next pass tries again
                logger.warning("cluster upkeep failed: %s", error)

    async def _started(self) -> datetime | None:
        # By the database's clock, which stamps the claims; read before this process
        # can claim anything (it bids for the lease as this starts).
        try:
            return await asyncio.to_thread(self._orphans.clock)
        except Exception as error:  # then what an earlier process left waits for a restart
            logger.warning("cluster upkeep: the store's clock cannot be read: %s", error)
            return None

    async def _settle_own_past(self, started: datetime) -> datetime | None:
        """Give the fires an earlier process of this node claimed and left without a
        record (killed between the two, then started again) a record; None once done."""
        try:
            fires = await asyncio.to_thread(self._orphans.own_unrecorded_fires, self._node, started)
        except Exception as error:  # the next pass tries again
            logger.warning("cluster upkeep failed: %s", error)
            return started
        if fires:
            self._record([_settled(fire) for fire in fires])
            logger.warning(
                "%d fire(s) claimed by this node's last process given a record", len(fires)
            )
        return None

    def settle_dead(self, now: datetime) -> None:
        """Interrupt dead nodes' runs and give their unrecorded fires a record."""
        dead_before = now - DEAD_AFTER
        interrupted = self._orphans.interrupt_runs(
            self._node, dead_before, now, now - WORKER_DEAD_AFTER
        )
        if interrupted:
            logger.warning("%d run(s) of silent nodes recorded as interrupted", len(interrupted))
        if self._stalled_jobs is not None:
            again, gone = self._stalled_jobs(WORKER_DEAD_AFTER.total_seconds())
            if again or gone:
                logger.warning(
                    "jobs of silent workers: %d queued again (not taken), %d dropped (taken)",
                    again,
                    gone,
                )
        fires = self._orphans.unrecorded_fires(self._node, dead_before, now)
        if fires:
            self._record([_settled(fire) for fire in fires])
            logger.warning("%d fire(s) claimed by silent nodes given a record", len(fires))

    def prune(self, now: datetime) -> None:
        """Drop claims and commands past their keeping time."""
        self._claims.prune(now - KEEP_CLAIMS)
        self._commands.prune(now - KEEP_COMMANDS)


def _settled(fire: OrphanFire) -> Run:
    reason = f"node {fire.node} claimed this fire and stopped before recording its outcome"
    record = not_run_record(fire.task, fire.scheduled_at, RunStatus.interrupted, reason)
    # One id per claim: the scheduler and the node itself, started again, may both find
    # the fire; their records are one row (runs are written by id).
    digest = hashlib.sha256(f"{fire.task}\0{fire.scheduled_at.isoformat()}".encode())
    record.id = f"{run_id_prefix(fire.claimed_at)}-{digest.hexdigest()[:6]}"
    return record
