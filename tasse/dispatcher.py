"""Turns fires and run requests into runs, by each task's policies; every outcome recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from tasse.environments import Environment
from tasse.errors import RunFinishedError, RunNotFoundError, TaskBusyError, TaskEnvError
from tasse.ledger import new_run_id, not_run_record, not_run_records
from tasse.logs import LogLayout, RunLogWriter
from tasse.models import Run, RunRequest, RunStatus, RunTrigger, Task
from tasse.places import Places
from tasse.policies import Policy, decide_fires, policy_of, retry_delay
from tasse.provisioner import Pending, Provisioner
from tasse.runner import Outcome, RunProcess, command_line
from tasse.settings import Settings
from tasse.store import RunStore

logger = logging.getLogger(__name__)

#: finished runs kept in memory for clients that poll them
RECENT_RUNS = 1000
#: outcomes after which a run is tried again, when its task has `retries`
RETRIED = (RunStatus.failed, RunStatus.timed_out)
#: seconds a stopped run may take beyond its kill grace before `cancel` answers anyway
STOP_MARGIN = 5.0

T = TypeVar("T")


class _StoppedError(Exception):
    """The run was stopped while it waited to start."""


@dataclass
class ActiveRun:
    """A run not yet ended, with what it takes to follow and stop it."""

    run: Run
    task: Task
    request: RunRequest
    policy: Policy
    writer: RunLogWriter
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: set once it holds one of its task's `max_parallel` places
    placed: asyncio.Event = field(default_factory=asyncio.Event)
    #: seconds to wait before it starts (a retry's backoff)
    delay: float = 0.0
    #: its process, once its environment is ready
    process: RunProcess | None = None
    #: a stop asked for before the process exists
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    #: why it was stopped, when another run replaced it
    stop_reason: str | None = None
    #: whether the store has its row yet
    recorded: bool = False
    #: whether it holds one of the `--max-concurrent-runs` slots
    holds_slot: bool = False

    def stop(self, reason: str | None = None) -> None:
        """Stop the process, or keep it from starting."""
        if reason and not self.stop_requested.is_set():
            self.stop_reason = reason
        if self.process is not None:
            self.process.stop()
        self.stop_requested.set()


class Dispatcher:
    """Starts, tracks, stops, retries and records runs."""

    def __init__(
        self,
        settings: Settings,
        store: RunStore,
        layout: LogLayout,
        provisioner: Provisioner,
        current_task: Callable[[str], Task | None] = lambda name: None,
    ):
        self._settings = settings
        self._store = store
        self._layout = layout
        self._envs = provisioner
        #: the task as it is now, for a retry (None: it is gone or broken, so no retry)
        self._current_task = current_task
        limit = settings.max_concurrent_runs
        self._slots = asyncio.Semaphore(limit) if limit else None
        self._active: dict[str, ActiveRun] = {}
        self._places: Places[ActiveRun] = Places()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recent: OrderedDict[str, Run] = OrderedDict()
        self._stopping = False
        #: fire times before this came due while the server was down (catch-up applies)
        self.started_at = datetime.now(UTC)
        #: each task's newest run, so listing 10,000 tasks needs no query
        self.last_runs: dict[str, Run] = store.latest_by_task()

    def lookup(self, run_id: str) -> Run | None:
        """A live or recently finished run from memory, so polling it costs no query."""
        active = self._active.get(run_id)
        return active.run if active is not None else self._recent.get(run_id)

    def active(self, run_id: str) -> ActiveRun | None:
        """The live run with this id, if it is still running."""
        return self._active.get(run_id)

    # -- fires and requests ----------------------------------------------------------------

    def fire(self, task: Task, due: list[datetime]) -> None:
        """Handle scheduled fire times by the task's catch-up, grace and overlap policies."""
        policy = policy_of(task.spec, self._settings)
        decision = decide_fires(due, datetime.now(UTC), self.started_at, policy)
        self._record(not_run_records(task.name, decision.not_run))
        # Caught-up fires (`catchup: all`) run one after another, whatever the overlap.
        in_turn = len(decision.run) > 1
        for scheduled in decision.run:
            if not in_turn and not self._places.has_room(task.name, policy.max_parallel):
                self._overlapping_fire(task, policy, scheduled)
                continue
            try:
                self._launch(task, policy, RunTrigger.schedule, scheduled, RunRequest())
            except TaskEnvError as error:
                self._record([not_run_record(task.name, scheduled, RunStatus.failed, str(error))])

    def _overlapping_fire(self, task: Task, policy: Policy, scheduled: datetime) -> None:
        alive = self._places.holders(task.name)
        if policy.overlap in ("skip", "parallel"):
            status, reason = RunStatus.skipped, _still_running(alive, policy)
        elif waiting := self._waiting_fire(task.name):
            status, reason = RunStatus.coalesced, f"run {waiting.run.id} was already waiting"
        else:
            try:
                run = self._launch(task, policy, RunTrigger.schedule, scheduled, RunRequest())
            except TaskEnvError as error:
                status, reason = RunStatus.failed, str(error)
            else:
                if policy.overlap == "replace":
                    self._replace_oldest(task.name, f"replaced by run {run.id}")
                return
        self._record([not_run_record(task.name, scheduled, status, reason)])

    def fire_refused(self, name: str, due: list[datetime], reason: str) -> None:
        """Record a fire that cannot run (its task is broken) as a failed run, with why."""
        self._record([not_run_record(name, due[-1], RunStatus.failed, reason)])

    def run_now(self, task: Task, request: RunRequest) -> Run:
        """Start a manual run, by the task's overlap policy (409 for `skip` while it runs)."""
        policy = policy_of(task.spec, self._settings)
        full = not self._places.has_room(task.name, policy.max_parallel)
        if full and policy.overlap in ("skip", "parallel"):
            busy = self._places.holders(task.name) or self._places.waiting(task.name)
            raise TaskBusyError(task.name, busy[0].run.id)
        zone = ZoneInfo(task.spec.timezone or self._settings.timezone)
        run = self._launch(task, policy, RunTrigger.manual, datetime.now(zone), request)
        if full and policy.overlap == "replace":
            self._replace_oldest(task.name, f"replaced by run {run.id}")
        return run

    def _waiting_fire(self, name: str) -> ActiveRun | None:
        # A scheduled run waiting for its turn takes further fires with it (`coalesced`);
        # each manual request gets a run of its own.
        for active in self._places.waiting(name):
            if active.run.trigger is RunTrigger.schedule:
                return active
        return None

    def _replace_oldest(self, name: str, reason: str) -> None:
        for active in self._places.holders(name):
            if not active.stop_requested.is_set():
                active.stop(reason)
                return

    async def cancel(self, run_id: str) -> Run:
        """Stop a live run and wait until it has ended (at most its kill grace and 5 s)."""
        active = self._active.get(run_id)
        if active is None:
            stored = self._store.get(run_id)
            if stored is None:
                raise RunNotFoundError(run_id)
            raise RunFinishedError(run_id, stored.status.value)
        active.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(active.done.wait(), active.policy.kill_grace + STOP_MARGIN)
        return active.run

    async def shutdown(self) -> None:
        """Stop every live and waiting run (no retries) and wait for them to be recorded."""
        self._stopping = True
        actives = list(self._active.values())
        for active in actives:
            active.stop("the server stopped")
        if self._tasks:
            grace = max((a.policy.kill_grace for a in actives), default=0.0)
            await asyncio.wait(set(self._tasks), timeout=grace + STOP_MARGIN)

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
    ) -> Run:
        environment = self._envs.environment(task)
        now = datetime.now(UTC)
        run = Run(
            id=new_run_id(now),
            task=task.name,
            trigger=trigger,
            status=RunStatus.running,
            scheduled_at=scheduled,
            started_at=now,
            attempt=attempt,
        )
        writer = RunLogWriter(self._layout, task.name, run.id)
        active = ActiveRun(run, task, request, policy, writer, delay=delay)
        self._active[run.id] = active
        # A retry goes to the front of the line: it continues a run that held a place.
        if self._places.enter(task.name, active, policy.max_parallel, first=attempt > 1):
            active.placed.set()
        if delay or isinstance(environment, Pending) or not active.placed.is_set():
            # It waits before it starts: recorded now, so it is listed and survives a crash.
            run.status = RunStatus.queued
            self._store_start(active)
        background = asyncio.get_running_loop().create_task(self._execute(active, environment))
        self._tasks.add(background)
        background.add_done_callback(self._tasks.discard)
        return run

    async def _execute(self, active: ActiveRun, environment: Environment | Pending | None) -> None:
        run = active.run
        try:
            outcome = await self._carry_out(active, environment)
        except Exception as error:  # a broken store or log folder must not wedge the task
            logger.exception("run %s of task %s could not be carried out", run.id, run.task)
            if active.process is not None:
                active.process.kill()
            outcome = Outcome(RunStatus.failed, error=f"Tasse could not carry out the run: {error}")
        if outcome.status is RunStatus.cancelled and active.stop_reason:
            outcome = Outcome(outcome.status, outcome.exit_code, active.stop_reason)
        run.status, run.exit_code, run.error = outcome.status, outcome.exit_code, outcome.error
        run.finished_at = datetime.now(UTC)
        try:
            (self._store.update if active.recorded else self._store.add)(run)
        except Exception:
            logger.exception("run %s of task %s: its outcome could not be stored", run.id, run.task)
        self._finish(active, run)

    async def _carry_out(
        self, active: ActiveRun, environment: Environment | Pending | None
    ) -> Outcome:
        try:
            environment = await self._wait_to_start(active, environment)
        except _StoppedError:
            return Outcome(RunStatus.cancelled, error="stopped before it started")
        except TaskEnvError as error:
            return Outcome(RunStatus.failed, error=str(error))
        run, writer = active.run, active.writer
        if run.status is RunStatus.queued:
            run.status, run.started_at = RunStatus.running, datetime.now(UTC)
        # Opened only now: a thousand runs waiting for their turn hold no files.
        writer.open()
        writer.note(f"run started ({run.trigger.value}, attempt {run.attempt})")
        active.process = self._process(active, environment)
        try:
            await active.process.start()
        except OSError as error:
            return Outcome(RunStatus.failed, error=f"could not be started: {error}")
        # Recorded once the process is on its way, so the store's latency is not lag.
        self._store_start(active)
        logger.info("run %s of task %s started (%s)", run.id, run.task, run.trigger.value)
        return await active.process.wait()

    async def _wait_to_start(
        self, active: ActiveRun, environment: Environment | Pending | None
    ) -> Environment | None:
        """Wait for a retry's delay, a place, the environment and a slot, in this order."""
        run, writer = active.run, active.writer
        if active.delay:
            writer.note(f"retry {run.attempt - 1} waits {active.delay:g} s before it starts")
            await self._unless_stopped(active, asyncio.sleep(active.delay))
        if not active.placed.is_set():
            alive = self._places.holders(run.task)
            writer.note(f"waiting for its turn: {_still_running(alive, active.policy)}")
            await self._unless_stopped(active, active.placed.wait())
        if isinstance(environment, Pending):
            writer.note("waiting for the task's Python environment to be built")
            environment = await self._unless_stopped(active, self._envs.wait(active.task))
        if self._slots is not None:
            await self._take_slot(active)
        if active.stop_requested.is_set():
            raise _StoppedError
        return environment

    async def _unless_stopped(self, active: ActiveRun, waiting: Awaitable[T]) -> T:
        """What `waiting` gives; raises _StoppedError when the run is stopped first."""
        work = asyncio.ensure_future(waiting)
        stopping = asyncio.ensure_future(active.stop_requested.wait())
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not work.done():
            work.cancel()
            raise _StoppedError
        return work.result()

    async def _take_slot(self, active: ActiveRun) -> None:
        # `--max-concurrent-runs`: beyond it a run is `queued` until one ends (or it is
        # stopped while it waits).
        assert self._slots is not None
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot is taken at once, without a pause
        else:
            if active.run.status is not RunStatus.queued:
                active.run.status = RunStatus.queued
                self._store_start(active)
            active.writer.note(
                f"waiting for a run slot ({self._settings.max_concurrent_runs} at a time)"
            )
            await self._unless_stopped(active, self._slots.acquire())
        active.holds_slot = True

    def _store_start(self, active: ActiveRun) -> None:
        try:
            if active.recorded:
                self._store.update(active.run)
            else:
                self._store.add(active.run)
                active.recorded = True
        except Exception:  # the run goes on; its row is written when it ends
            run = active.run
            logger.exception("run %s of task %s: its start could not be stored", run.id, run.task)

    def _process(self, active: ActiveRun, environment: Environment | None) -> RunProcess:
        task = active.task
        argv, variables = command_line(task, active.run, active.request, environment)
        return RunProcess(
            argv,
            task.folder,
            variables,
            active.writer,
            task.spec.timeout,
            active.policy.kill_grace,
        )

    def _finish(self, active: ActiveRun, run: Run) -> None:
        summary = run.status.value + (f": {run.error}" if run.error else "")
        dropped = active.writer.dropped
        try:
            active.writer.note(
                f"run ended, {summary}"
                + (f"; {dropped} bytes of output beyond the limit were dropped" if dropped else "")
            )
        except OSError as error:
            logger.error(
                "run %s of task %s: log.txt could not be written: %s", run.id, run.task, error
            )
        finally:
            active.writer.close()
        logger.info("run %s of task %s ended, %s", run.id, run.task, summary)
        self._active.pop(run.id, None)
        if active.holds_slot and self._slots is not None:
            active.holds_slot = False
            self._slots.release()
        self._retry(active)  # first in line for the place this run leaves
        for admitted in self._places.leave(run.task, active):
            admitted.placed.set()
        self.last_runs[run.task] = run
        self._recent[run.id] = run
        if len(self._recent) > RECENT_RUNS:
            self._recent.popitem(last=False)
        active.done.set()

    def _retry(self, ended: ActiveRun) -> None:
        """The next attempt of a failed run, when its task still exists and has retries left."""
        run, policy = ended.run, ended.policy
        if self._stopping or run.status not in RETRIED or run.attempt > policy.retries:
            return
        task = self._current_task(run.task)
        if task is None:
            logger.warning("run %s of task %s is not retried: the task is gone", run.id, run.task)
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

    def _record(self, runs: Sequence[Run]) -> None:
        for run in runs:
            self._store.add(run)
            self.last_runs[run.task] = run
            assert run.scheduled_at is not None
            logger.warning(
                "task %s: fire at %s %s: %s",
                run.task,
                run.scheduled_at.isoformat(),
                run.status.value,
                run.error,
            )


def _still_running(alive: Sequence[ActiveRun], policy: Policy) -> str:
    ids = ", ".join(active.run.id for active in alive[:3]) + (" …" if len(alive) > 3 else "")
    if policy.max_parallel == 1:
        return f"run {ids} was still running"
    return f"{len(alive)} runs were still running (max_parallel {policy.max_parallel}): {ids}"
