"""`Cluster`: this node's part in a cluster, as the service sees it.

One active scheduler with hot standbys: every node loads every task and keeps its jobs
running, but only the holder of the scheduler lease claims fires (and so runs them); the
others take over within 8 s of its death, carrying on from the last claimed fire of each
task, by the catch-up policy (`Dispatcher.resume`). Manual runs go to the scheduler, so
one node decides overlap and `max_parallel` for the whole cluster; a cancel goes to the
node running the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime

from tasse.cluster.commands import Cancel, CommandDesk, RunNow
from tasse.cluster.fires import Deliver, FireClaimer
from tasse.cluster.lease import RENEW_EVERY, SchedulerLease
from tasse.cluster.nodes import NodeInfo, read_nodes
from tasse.cluster.upkeep import Upkeep
from tasse.models import Run, RunRequest, RunStatus
from tasse.store.claims import FireClaims
from tasse.store.commands import Commands
from tasse.store.leases import Leases
from tasse.store.nodes import Nodes
from tasse.store.orphans import Orphans
from tasse.store.run_jobs import RunJobs
from tasse.store.runs import RunStore
from tasse.store.writer import RecordWriter

logger = logging.getLogger(__name__)

#: seconds a node waits for the scheduler to take a manual run it was asked for
FORWARD_WAIT = 5.0
#: seconds a cancel waits for another node's new run to reach the store (its writer batches)
RECORD_WAIT = 2.0
#: what a takeover does on the node: each task's last claimed fire, and whether the node
#: just became the scheduler (True) or only resumes after claims that failed (False)
TakeOver = Callable[[Mapping[str, datetime], bool], None]
#: the cluster-wide duties the scheduler node does besides firing (notifications): called
#: with True when it gains the lease, then with False every RENEW_EVERY while it holds it
Duties = Callable[[bool], Awaitable[None]]
_UNFINISHED = (RunStatus.queued, RunStatus.running)


class Cluster:
    """The lease, the fire claims, the commands and the upkeep of one node."""

    def __init__(
        self,
        store: RunStore,
        records: RecordWriter,
        *,
        deliver: Deliver,
        take_over: TakeOver,
        tasks: Callable[[], Iterable[str]],
        run_now: RunNow,
        cancel: Cancel,
        duties: Duties | None = None,
        workers: bool = False,
        lost: Callable[[], None] = lambda: None,
    ):
        assert store.node is not None, "a cluster node's store stamps its runs with its name"
        self.name = store.node
        self._store = store
        self._take_over = take_over
        self._tasks = tasks
        self._duties = duties
        #: told when this node loses the scheduler lease
        self._on_lost = lost
        self._leases = Leases(store)
        self._claims = FireClaims(store, self._leases)
        commands = Commands(store, self._leases)
        self._nodes = Nodes(store)
        #: runs queued for workers (with `workers`: the cluster's runs go to them)
        self._jobs = RunJobs(store)
        self.lease = SchedulerLease(self._leases, self.name, self._gained, self._lost)
        self.fires = FireClaimer(self._claims, self.lease, deliver)
        self.desk = CommandDesk(commands, self.name, run_now, cancel)
        self.upkeep = Upkeep(
            self.name,
            Orphans(store),
            self._claims,
            commands,
            lambda: self.lease.held,
            records.put_runs,
            self._jobs.settle_stalled if workers else None,
        )
        self._watch: asyncio.Task[None] | None = None
        self._taking: asyncio.Task[None] | None = None

    @property
    def is_scheduler(self) -> bool:
        """Whether this node holds the scheduler lease (as far as it knows)."""
        return self.lease.held

    def on_fire(self, name: str, due: list[datetime]) -> None:
        """The scheduler's callback: fires go on only once claimed."""
        self.fires.on_fire(name, due)

    def start(self) -> None:
        """Bid for the lease, claim fires, take commands, keep up (call once the jobs run)."""
        self.fires.start()
        self.desk.start()
        self.upkeep.start()
        self.lease.start()
        self._watch = asyncio.get_running_loop().create_task(self._resume_after_failures())
        logger.info("cluster node %s started", self.name)

    async def stop(self) -> None:
        """Let the lease go first, so another node takes over at once; then the rest."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.lease.stop()
        await self.fires.stop()
        await self.upkeep.stop()
        await self.desk.stop()

    async def _gained(self, token: int) -> None:
        await self._resume(fresh=True)
        # Not awaited: the keeper renews the lease after this returns, and reading the
        # outbox and the history must never hold a renewal up.
        self._taking = asyncio.get_running_loop().create_task(self._do_duties(gained=True))

    async def _do_duties(self, gained: bool) -> None:
        if self._duties is None:
            return
        try:
            await self._duties(gained)
        except Exception as error:  # tried again at the next renewal
            logger.error("cluster node %s: its scheduler duties failed: %s", self.name, error)

    def _lost(self) -> None:
        logger.warning("cluster node %s is a standby now: it fires nothing", self.name)
        self._on_lost()

    async def _resume(self, fresh: bool) -> None:
        """Set every job back to its task's last claimed fire; what came due since is
        claimed (the claims drop what another node claimed) and decided together."""
        self.fires.hold()
        try:
            names = list(self._tasks())
            last = await asyncio.to_thread(self._claims.last_claimed, names)
            self._take_over(last, fresh)
            await asyncio.sleep(0.05)  # APScheduler hands the due times over meanwhile
        except Exception as error:  # tried again while the claims fail
            logger.error("cluster node %s could not resume the schedule: %s", self.name, error)
            self.fires.needs_resume = True
        finally:
            self.fires.release()

    async def _resume_after_failures(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if self.fires.needs_resume and self.lease.held:
                self.fires.needs_resume = False
                await self._resume(fresh=False)
            if self.lease.held:
                await self._do_duties(gained=False)

    async def run_on_scheduler(self, name: str, request: RunRequest) -> Run:
        """A manual run, started by the scheduler node."""
        return await self.desk.run_on_scheduler(name, request, FORWARD_WAIT)

    async def cancel_elsewhere(self, run_id: str, wait: float) -> Run | None:
        """Stop a run that another node is running; None if it is not another's live run."""
        found = await self._store.off_loop(lambda: self._store.node_of(run_id))
        # A run that node started a moment ago may be in its writer still, not the store yet.
        deadline = asyncio.get_running_loop().time() + min(wait, RECORD_WAIT)
        while found is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            found = await self._store.off_loop(lambda: self._store.node_of(run_id))
        if found is None:
            return None
        status, node = found
        if node is None and status is RunStatus.queued:
            if (withdrawn := await self._withdraw(run_id)) is not None:
                return withdrawn
            # A worker took it meanwhile: it is that worker's to stop.
            found = await self._store.off_loop(lambda: self._store.node_of(run_id))
            if found is None:
                return None
            status, node = found
        if node is None or node == self.name or status not in _UNFINISHED:
            return None
        return await self.desk.cancel_on(node, run_id, wait)

    async def _withdraw(self, run_id: str) -> Run | None:
        """A run queued for a worker that none has taken yet: ended here, in the store (the
        scheduler following it sees it end; a worker taking its job finds it ended)."""
        why = "cancelled before a worker took it"
        now = datetime.now(UTC)
        jobs = self._jobs
        if not await self._store.off_loop(
            lambda: jobs.withdraw(run_id, RunStatus.cancelled, why, now)
        ):
            return None
        return await self._store.off_loop(lambda: self._store.get(run_id))

    async def log_home(self, run_id: str) -> tuple[str, str | None] | None:
        """The other node whose data folder has this run's log, with its API address
        (None: the run is this node's, or not in the store)."""

        return await self._store.off_loop(lambda: self._nodes.log_home(run_id))

    def nodes(self) -> list[NodeInfo]:
        """Every node of the cluster, the scheduler marked (store calls: off the loop)."""
        return read_nodes(self._nodes, self._leases)
