"""Turns fires and run requests into runs, by each task's policies; every outcome recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from tasse.envs.provisioner import Pending, Provisioner
from tasse.errors import RunFinishedError, RunNotFoundError, TaskEnvError
from tasse.models import Run, RunRequest, RunStatus, RunTrigger, new_run_id
from tasse.runs.execution import ActiveRun, Elsewhere, Executor, Process
from tasse.runs.fire_decisions import STOP_MARGIN, FireDecisions, still_running
from tasse.runs.ledger import DowntimeTally
from tasse.runs.logs import RunLogWriter
from tasse.runs.places import Places
from tasse.runs.policies import Policy, policy_of, retry_delay
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.outbox import Notice
from tasse.store.runs import RunStore
from tasse.store.writer import RecordWriter
from tasse.tasks.task import Task

logger = logging.getLogger(__name__)

#: finished runs kept in memory for clients that poll them
RECENT_RUNS = 1000
#: outcomes after which a run is tried again, when its task has `retries` (`interrupted`:
#: its worker died, in a cluster; a server's own runs interrupted at restart are not retried)
RETRIED = (RunStatus.failed, RunStatus.timed_out, RunStatus.interrupted)


class Dispatcher(FireDecisions):
    """Starts, tracks, stops, retries and records runs."""

    def __init__(
        self,
        settings: Settings,
        store: RunStore,
        records: RecordWriter,
        layout: LogLayout,
        provisioner: Provisioner,
        current_task: Callable[[str], Task | None] = lambda name: None,
        is_paused: Callable[[str], bool] = lambda name: False,
        on_change: Callable[[Run], None] = lambda run: None,
        notices: Callable[[Sequence[Run]], Sequence[Notice]] = lambda runs: (),
        elsewhere: Elsewhere | None = None,
    ):
        self._settings = settings
        #: whether runs go to a cluster's workers (which build their environments)
        self._elsewhere = elsewhere is not None
        self._store = store
        self._records = records
        self._layout = layout
        self._envs = provisioner
        #: the task as it is now, for a retry (None: it is gone or broken, so no retry)
        self._current_task = current_task
        self._executor = Executor(
            records,
            provisioner,
            settings.max_concurrent_runs,
            self._ended,
            is_paused,
            on_change,
            notices,
            elsewhere,
        )
        self._active: dict[str, ActiveRun] = {}
        self._places: Places[ActiveRun] = Places()
        self._recent: OrderedDict[str, Run] = OrderedDict()
        self._stopping = False
        #: fires waiting for runs whose end the loop has not heard of yet
        self._deferred: set[asyncio.Task[None]] = set()
        #: tasks that caught up a fire missed while down (`catchup: latest` does it once)
        self._caught_up: set[str] = set()
        #: fires that came due while the server was down, logged in one line at start
        self._downtime = DowntimeTally()
        self._downtime_line: asyncio.TimerHandle | None = None
        #: fire times before this came due while the server was down (catch-up applies)
        self.started_at = datetime.now(UTC)
        #: each task's newest run, so listing 10,000 tasks needs no query
        self.last_runs: dict[str, Run] = store.latest_by_task()

    def resume(self, at: datetime) -> None:
        """Fires before `at` came due while no server fired them (a cluster's takeover):
        the catch-up policy applies to them, as after a restart."""
        self.started_at = at
        self._caught_up.clear()

    def adopt(self, run: Run, follow: Callable[[ActiveRun], Process], request: RunRequest) -> bool:
        """Follow a run another scheduler started on a worker, as if this one had: it holds
        its task's place and a slot, its outcome is told and retried here (a retry with
        the same `request`). False when it is followed already or its task is gone (it
        still ends on its worker)."""
        task = self._current_task(run.task)
        if run.id in self._active or task is None:
            return False
        policy = policy_of(task.spec, self._settings)
        active = ActiveRun(
            run, task, request, policy, RunLogWriter(self._layout, task.name, run.id)
        )
        self._active[run.id] = active
        self._places.hold(task.name, active, policy.max_parallel)
        active.placed.set()
        self._executor.take_slot_now(active)
        self._executor.follow(active, follow(active))
        return True

    def let_go(self) -> int:
        """This node schedules no more: the runs it follows on workers are the next
        scheduler's to follow, record and retry (not this one's). How many there were."""
        let_go = [a for a in self._active.values() if self._executor.sent_elsewhere(a)]
        for active in let_go:
            self._executor.let_go(active)
            self._active.pop(active.run.id, None)
            for admitted in self._places.leave(active.run.task, active):
                admitted.placed.set()
            active.done.set()
        return len(let_go)

    def lookup(self, run_id: str) -> Run | None:
        """A live or recently finished run from memory, so polling it costs no query."""
        active = self._active.get(run_id)
        return active.run if active is not None else self._recent.get(run_id)

    def active(self, run_id: str) -> ActiveRun | None:
        """The live run with this id, if it is still running."""
        return self._active.get(run_id)

    def alive(self, name: str) -> list[Run]:
        """The task's runs alive now (queued or running), oldest first."""
        runs = [a.run for a in self._active.values() if a.run.task == name]
        return sorted(runs, key=lambda run: run.id)

    def running_tasks(self) -> set[str]:
        """The tasks a run of which is running now (not just waiting for its turn)."""
        return {a.run.task for a in self._active.values() if a.run.status is RunStatus.running}

    def live_statuses(self) -> Counter[RunStatus]:
        """How many live runs are running, and how many are queued (waiting to start)."""
        return Counter(active.run.status for active in self._active.values())

    # -- keeping track --------------------------------------------------------------------

    def forget(self, name: str) -> None:
        """The task is gone: its runs that have not started are cancelled (running ones end)."""
        for active in self._places.waiting(name) + self._places.holders(name):
            if active.process is None:
                active.stop("its task was removed before it started")

    async def until_idle(self, name: str) -> None:
        """Wait until no run of the task is alive, waiting or running."""
        for active in [a for a in self._active.values() if a.run.task == name]:
            await active.done.wait()

    async def cancel(self, run_id: str) -> Run:
        """Stop a live run and wait until it has ended (at most its kill grace and 5 s)."""
        active = self._active.get(run_id)
        if active is None:
            known = self.lookup(run_id) or self._records.pending_run(run_id)
            if known is None:
                known = await self._store.off_loop(lambda: self._store.get(run_id))
            if known is None:
                raise RunNotFoundError(run_id)
            raise RunFinishedError(run_id, known.status.value)
        active.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(active.done.wait(), active.policy.kill_grace + STOP_MARGIN)
        return active.run

    async def shutdown(self) -> None:
        """Stop every live and waiting run (no retries) and wait for them to be recorded
        (not those on a cluster's workers)."""
        self._stopping = True
        # Runs on a cluster's workers go on there: the next scheduler follows them.
        actives = [a for a in self._active.values() if not self._executor.sent_elsewhere(a)]
        for active in actives:
            active.stop("the server stopped")
        grace = max((a.policy.kill_grace for a in actives), default=0.0)
        await self._executor.wait(grace + STOP_MARGIN, actives)

    # -- a run's life ----------------------------------------------------------------------

    def _launch(
        self,
        task: Task,
        policy: Policy,
        trigger: RunTrigger,
        scheduled: datetime,
        request: RunRequest,
        attempt: int = 1,
        delay: float = 0.0,
        in_turn: bool = False,
    ) -> Run:
        # Runs on a cluster's workers are given their environments there.
        environment = None if self._elsewhere else self._envs.environment(task)
        now = datetime.now(UTC)
        run = Run(
            id=new_run_id(now),
            task=task.name,
            trigger=trigger,
            status=RunStatus.running,
            scheduled_at=scheduled,
            started_at=now,
            attempt=attempt,
            args=list(request.args),
            params=dict(request.params),
        )
        writer = RunLogWriter(self._layout, task.name, run.id)
        active = ActiveRun(run, task, request, policy, writer, delay=delay)
        self._active[run.id] = active
        if delay:
            writer.note(f"retry {attempt - 1} waits {delay:g} s before it starts")
        limit = 1 if in_turn else policy.max_parallel  # caught-up fires: one after another
        # A retry goes to the front of the line: it continues a run that held a place.
        if self._places.enter(task.name, active, limit, first=attempt > 1):
            active.placed.set()
        else:
            alive = self._places.holders(task.name)
            writer.note(f"waiting for its turn: {still_running(alive, policy)}")
        waits = delay or isinstance(environment, Pending) or not active.placed.is_set()
        if self._elsewhere and not waits and self._executor.take_slot_now(active):
            # Straight to a worker's queue: `queued` until one takes it, its row written
            # with its job (one transaction), not before.
            run.status, run.started_at = RunStatus.queued, None
            self._executor.record([run], write=False)
        elif waits or not self._executor.take_slot_now(active):
            # It waits before it starts: recorded now, so it is listed, answered as
            # `queued`, and survives a crash.
            run.status, run.started_at = RunStatus.queued, None
            self._executor.record_start(active)
        self._executor.start(active, environment)
        return run

    def _ended(self, active: ActiveRun) -> None:
        run = active.run
        self._active.pop(run.id, None)
        try:
            self._retry(active)  # first in line for the place this run leaves
        except Exception:  # the place must be left whatever happens
            logger.exception("run %s of task %s: its retry could not be set up", run.id, run.task)
        for admitted in self._places.leave(run.task, active):
            admitted.placed.set()
        self.last_runs[run.task] = run
        self._recent[run.id] = run
        if len(self._recent) > RECENT_RUNS:
            self._recent.popitem(last=False)
        active.done.set()

    def _retry(self, ended: ActiveRun) -> None:
        """The next attempt of a failed run, when its task still exists and has retries left."""
        run = ended.run
        if self._stopping or run.status not in RETRIED:
            return
        task = self._current_task(run.task)
        if task is None:
            if run.attempt <= ended.policy.retries:
                logger.warning("run %s of task %s is not retried: it is gone", run.id, run.task)
            return
        policy = policy_of(task.spec, self._settings)  # as the task says now
        if run.attempt > policy.retries:
            return
        delay = retry_delay(policy, run.attempt)
        try:
            retry_id = self._launch(
                task,
                policy,
                RunTrigger.retry,
                datetime.now(UTC) + timedelta(seconds=delay),
                ended.request,
                attempt=run.attempt + 1,
                delay=delay,
            ).id
        except TaskEnvError as error:
            logger.warning("run %s of task %s is not retried: %s", run.id, run.task, error)
            return
        logger.info("task %s: run %s is retried as %s in %g s", run.task, run.id, retry_id, delay)

    def _record(self, runs: Sequence[Run], level: int = logging.WARNING) -> None:
        self._executor.record(runs)
        for run in runs:
            self.last_runs[run.task] = run
            assert run.scheduled_at is not None
            logger.log(
                level,
                "task %s: fire at %s %s: %s",
                run.task,
                run.scheduled_at.isoformat(),
                run.status.value,
                run.error,
            )
