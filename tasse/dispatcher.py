"""Turns fires and run requests into runs: one at a time per task, every outcome recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tasse.environments import Environment
from tasse.errors import RunFinishedError, RunNotFoundError, TaskBusyError, TaskEnvError
from tasse.logs import LogLayout, RunLogWriter
from tasse.models import Run, RunRequest, RunStatus, RunTrigger, Task
from tasse.provisioner import Pending, Provisioner
from tasse.runner import Outcome, RunProcess, command_line
from tasse.settings import Settings
from tasse.store import RunStore

logger = logging.getLogger(__name__)

#: finished runs kept in memory for clients that poll them
RECENT_RUNS = 1000
#: missed fire times recorded one by one; more than these (days of a per-second schedule
#: while the server was down) are summed up in one more record
MISSED_ONE_BY_ONE = 100


def new_run_id(now: datetime) -> str:
    """A readable id that sorts by creation time: 20261122-101500-123456-9f3a1c."""
    return f"{now:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}"


@dataclass
class ActiveRun:
    """A run not yet ended, with what it takes to follow and stop it."""

    run: Run
    task: Task
    request: RunRequest
    writer: RunLogWriter
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: its process, once its environment is ready
    process: RunProcess | None = None
    #: a stop asked for before the process exists
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    #: whether the store has its row yet
    recorded: bool = False
    #: whether it holds one of the `--max-concurrent-runs` slots
    holds_slot: bool = False

    def stop(self) -> None:
        """Stop the process, or keep it from starting."""
        if self.process is not None:
            self.process.stop()
        self.stop_requested.set()


class Dispatcher:
    """Starts, tracks, stops and records runs."""

    def __init__(
        self, settings: Settings, store: RunStore, layout: LogLayout, provisioner: Provisioner
    ):
        self._settings = settings
        self._store = store
        self._layout = layout
        self._envs = provisioner
        limit = settings.max_concurrent_runs
        self._slots = asyncio.Semaphore(limit) if limit else None
        self._active: dict[str, ActiveRun] = {}
        self._running_by_task: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._recent: OrderedDict[str, Run] = OrderedDict()
        #: each task's newest run, so listing 10,000 tasks needs no query
        self.last_runs: dict[str, Run] = store.latest_by_task()

    def lookup(self, run_id: str) -> Run | None:
        """A live or recently finished run from memory, so polling it costs no query."""
        active = self._active.get(run_id)
        return active.run if active is not None else self._recent.get(run_id)

    def active(self, run_id: str) -> ActiveRun | None:
        """The live run with this id, if it is still running."""
        return self._active.get(run_id)

    def fire(self, task: Task, due: list[datetime]) -> None:
        """Handle scheduled fire times: run the latest one, record the rest as not run."""
        now = datetime.now(UTC)
        *earlier, latest = due
        if len(earlier) > MISSED_ONE_BY_ONE:
            # Days of a per-second schedule while the server was down: one row says so.
            skipped_over = earlier[:-MISSED_ONE_BY_ONE]
            earlier = earlier[-MISSED_ONE_BY_ONE:]
            self._record_not_run(
                task.name,
                skipped_over[0],
                RunStatus.missed,
                f"{len(skipped_over)} fire times from {skipped_over[0].isoformat()} to "
                f"{skipped_over[-1].isoformat()} were missed (the server was down or busy)",
            )
        for scheduled in earlier:
            self._record_not_run(
                task.name,
                scheduled,
                RunStatus.missed,
                "the server was down or busy then; a later fire time came due with it",
            )
        late = (now - latest).total_seconds()
        running = self._running_by_task.get(task.name)
        if late > self._settings.misfire_grace_time:
            self._record_not_run(
                task.name,
                latest,
                RunStatus.missed,
                f"came {late:.0f} s late, beyond the grace time",
            )
        elif running is not None:
            self._record_not_run(
                task.name, latest, RunStatus.skipped, f"run {running} was still running"
            )
        else:
            try:
                self._launch(task, RunTrigger.schedule, latest, RunRequest())
            except TaskEnvError as error:
                self._record_not_run(task.name, latest, RunStatus.failed, str(error))

    def fire_refused(self, name: str, due: list[datetime], reason: str) -> None:
        """Record a fire that cannot run (its task is broken) as a failed run, with why."""
        self._record_not_run(name, due[-1], RunStatus.failed, reason)

    def run_now(self, task: Task, request: RunRequest) -> Run:
        """Start a manual run; refuse while another run of the task is alive."""
        running = self._running_by_task.get(task.name)
        if running is not None:
            raise TaskBusyError(task.name, running)
        zone = ZoneInfo(task.spec.timezone or self._settings.timezone)
        return self._launch(task, RunTrigger.manual, datetime.now(zone), request)

    async def cancel(self, run_id: str) -> Run:
        """Stop a live run and wait until it has ended (at most the kill grace and 5 s)."""
        active = self._active.get(run_id)
        if active is None:
            stored = self._store.get(run_id)
            if stored is None:
                raise RunNotFoundError(run_id)
            raise RunFinishedError(run_id, stored.status.value)
        active.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(active.done.wait(), self._settings.kill_grace + 5)
        return active.run

    async def shutdown(self) -> None:
        """Stop every live run and wait for them to be recorded."""
        for active in list(self._active.values()):
            active.stop()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._settings.kill_grace + 5)

    def _launch(
        self, task: Task, trigger: RunTrigger, scheduled: datetime, request: RunRequest
    ) -> Run:
        environment = self._envs.environment(task)
        now = datetime.now(UTC)
        run = Run(
            id=new_run_id(now),
            task=task.name,
            trigger=trigger,
            status=RunStatus.queued if isinstance(environment, Pending) else RunStatus.running,
            scheduled_at=scheduled,
            started_at=now,
        )
        active = ActiveRun(run, task, request, RunLogWriter(self._layout, task.name, run.id))
        self._active[run.id] = active
        self._running_by_task[task.name] = run.id
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
        run = active.run
        active.writer.open()
        active.writer.note(f"run started ({run.trigger.value})")
        if isinstance(environment, Pending):
            active.writer.note("waiting for the task's Python environment to be built")
            try:
                environment = await self._wait_for_environment(active)
            except TaskEnvError as error:
                return Outcome(RunStatus.failed, error=str(error))
            if active.stop_requested.is_set():
                return Outcome(RunStatus.cancelled, error="stopped before it started")
            run.status, run.started_at = RunStatus.running, datetime.now(UTC)
        if self._slots is not None and not await self._take_slot(active):
            return Outcome(RunStatus.cancelled, error="stopped before it started")
        active.process = self._process(active, environment)
        try:
            await active.process.start()
        except OSError as error:
            return Outcome(RunStatus.failed, error=f"could not be started: {error}")
        # Recorded once the process is on its way, so the store's latency is not lag.
        try:
            self._store.add(run)
            active.recorded = True
        except Exception:  # the run goes on; its row is written when it ends
            logger.exception("run %s of task %s: its start could not be stored", run.id, run.task)
        logger.info("run %s of task %s started (%s)", run.id, run.task, run.trigger.value)
        return await active.process.wait()

    async def _take_slot(self, active: ActiveRun) -> bool:
        # `--max-concurrent-runs`: beyond it a run is `queued` until one ends (or it is
        # stopped while it waits).
        assert self._slots is not None
        run = active.run
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot is taken at once, without a pause
            active.holds_slot = True
            return True
        run.status = RunStatus.queued
        active.writer.note(
            f"waiting for a run slot ({self._settings.max_concurrent_runs} at a time)"
        )
        taking = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(active.stop_requested.wait())
        await asyncio.wait({taking, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not taking.done():
            taking.cancel()
            return False
        active.holds_slot = True
        if active.stop_requested.is_set():
            return False  # the slot goes back when the run is finished
        if run.status is RunStatus.queued:
            run.status, run.started_at = RunStatus.running, datetime.now(UTC)
        return True

    async def _wait_for_environment(self, active: ActiveRun) -> Environment | None:
        waiting = asyncio.ensure_future(self._envs.wait(active.task))
        stopping = asyncio.ensure_future(active.stop_requested.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not waiting.done():
            waiting.cancel()
            return None
        return waiting.result()

    def _process(self, active: ActiveRun, environment: Environment | None) -> RunProcess:
        task = active.task
        argv, variables = command_line(task, active.run, active.request, environment)
        return RunProcess(
            argv,
            task.folder,
            variables,
            active.writer,
            task.spec.timeout,
            self._settings.kill_grace,
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
        if self._running_by_task.get(run.task) == run.id:
            del self._running_by_task[run.task]
        self.last_runs[run.task] = run
        self._recent[run.id] = run
        if len(self._recent) > RECENT_RUNS:
            self._recent.popitem(last=False)
        active.done.set()

    def _record_not_run(
        self, task: str, scheduled: datetime, status: RunStatus, reason: str
    ) -> None:
        now = datetime.now(UTC)
        run = Run(
            id=new_run_id(now),
            task=task,
            trigger=RunTrigger.schedule,
            status=status,
            scheduled_at=scheduled,
            finished_at=now,
            error=reason,
        )
        self._store.add(run)
        self.last_runs[task] = run
        logger.warning(
            "task %s: fire at %s %s: %s", task, scheduled.isoformat(), status.value, reason
        )
