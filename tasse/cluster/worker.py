"""`Worker`: a `tasse worker` node. It runs what the cluster's scheduler queued, and nothing
else: no schedule, no task folders watched; the API it has serves its runs' logs only.

Each job carries the task as the scheduler loaded it and the digest of its folder there.
The worker finds the same folder in its own tasks folder (shared or an identical checkout),
and refuses to run a copy whose digest differs: the run fails saying so, rather than
running other code. It takes the run with `queued → running` (`store/run_jobs.py`) — the
guard against a job picked twice — then carries it out with the runner every node uses
(its own process group, timeout, whole-tree kill, log caps), in an environment it builds
itself (content-addressed: the same one on every node). Its states go through its own
writer and journal, as a scheduler's do. A cancel reaches it as a command in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tasse.cluster.commands import CommandDesk
from tasse.cluster.queue import RunQueue, queue_schema
from tasse.envs.provisioner import Provisioner
from tasse.errors import (
    ClusterUnavailableError,
    RunNotFoundError,
    StoreUnavailableError,
    TaskEnvError,
)
from tasse.models import Run, RunRequest, RunStatus
from tasse.runs.execution import ActiveRun, Executor
from tasse.runs.logs import RunLogWriter
from tasse.runs.policies import policy_of
from tasse.runs.runner import stop_leftovers, watch_children_on_the_loop
from tasse.settings import Settings
from tasse.store.commands import Commands
from tasse.store.database import first_line
from tasse.store.leases import Leases
from tasse.store.nodes import WORKER, node_name
from tasse.store.opening import log_layout, open_store, record_writer
from tasse.store.retention import Retention
from tasse.store.run_jobs import RunJobs, job_queue, libpq_address
from tasse.tasks.folder_digest import folder_digest
from tasse.tasks.task import Task

logger = logging.getLogger(__name__)

#: seconds a stopped run may take beyond its kill grace before the worker goes on
STOP_MARGIN = 5.0


class Worker:
    """Takes run jobs from the queues, carries them out, records them; answers cancels."""

    def __init__(self, settings: Settings, address: str | None = None):
        self.settings = settings
        self.name = settings.node_name or node_name()
        self.layout = log_layout(settings)
        self.store = open_store(settings, self.name, address)
        self.records = record_writer(self.store, settings, WORKER)
        self.envs = Provisioner(settings, self.layout)
        # The history is pruned by the scheduler; the logs of the runs it pruned are in
        # this worker's folder, and this worker's to delete.
        self.retention = Retention(
            settings,
            self.store,
            self.layout,
            lambda run_id: run_id in self._active,
            lambda: (),
            prunes_store=lambda: False,
        )
        self._jobs = RunJobs(self.store)
        self._executor = Executor(self.records, self.envs, 0, self._ended, records_started=False)
        self._active: dict[str, ActiveRun] = {}
        commands = Commands(self.store, Leases(self.store))
        self._desk = CommandDesk(commands, self.name, self._refuse, self.cancel)
        self._queue = RunQueue(
            libpq_address(self.store.address),
            [job_queue(self.store, queue) for queue in settings.queues],
            settings.concurrency,
            self.name,
            self.carry_out,
            self.store.shown_address,
        )
        self._unwatch_children: Callable[[], None] = lambda: None

    async def start(self) -> None:
        """Settle what a previous life of this worker left, then be ready for jobs."""
        await asyncio.to_thread(self.records.replay)
        self.records.start()
        interrupted = await asyncio.to_thread(self.store.interrupt_unfinished, datetime.now(UTC))
        if interrupted:
            logger.warning(
                "%d run(s) left unfinished by this worker: interrupted", len(interrupted)
            )
            await asyncio.to_thread(stop_leftovers, interrupted)
        if await asyncio.to_thread(self._jobs.apply_schema, queue_schema()):
            logger.info("the run queue's tables were created (procrastinate)")
        self._unwatch_children = watch_children_on_the_loop()
        await self.envs.start()
        self.retention.start()
        self._desk.start()

    async def work(self) -> None:
        """Take jobs until cancelled."""
        await self._queue.run()

    async def stop(self) -> None:
        """Stop the runs under way (recorded `cancelled`, with why) and close the store."""
        for active in list(self._active.values()):
            active.stop(f"worker {self.name} stopped")
        grace = max((a.policy.kill_grace for a in self._active.values()), default=0.0)
        await self._executor.wait(grace + STOP_MARGIN)
        await self._desk.stop()
        await self.retention.stop()
        await self.envs.stop()
        self._unwatch_children()
        await asyncio.to_thread(self.records.stop, self.settings.store_statement_timeout + 5)
        self.store.close()

    # -- one job -------------------------------------------------------------------------

    async def carry_out(self, args: dict[str, Any]) -> None:
        """Carry out the run a job names, unless it was taken or ended before."""
        run_id = str(args["run_id"])
        taken = await self._take(run_id, args.get("run"))
        if taken is None:
            logger.info("run %s was taken or ended before: not run again", run_id)
            return
        try:
            task = self._local_copy(Task.model_validate(args["task"]), args.get("folder"))
            request = RunRequest.model_validate(args.get("request") or {})
        except (ValidationError, KeyError, OSError) as error:
            why = f"worker {self.name} could not read its job: {first_line(error)}"
            taken.status, taken.error, taken.finished_at = RunStatus.failed, why, datetime.now(UTC)
            logger.error("run %s of task %s: %s", run_id, taken.task, why)
            self.records.put_runs([taken])
            return
        policy = policy_of(task.spec, self.settings)
        active = ActiveRun(
            taken, task, request, policy, RunLogWriter(self.layout, task.name, run_id)
        )
        active.placed.set()
        self._active[run_id] = active
        try:
            refused = self._refusal(task, args.get("digest"))
            environment = None if refused else self.envs.environment(task)
        except TaskEnvError as error:
            refused, environment = str(error), None
        if refused:
            self._refuse_run(active, refused)
            return
        self._executor.start(active, environment)
        await active.done.wait()

    async def _take(self, run_id: str, queued: dict[str, Any] | None) -> Run | None:
        """Win the run (`queued → running`): the run as it is now, or None if another
        worker took it, or it ended, before."""
        now = datetime.now(UTC)
        try:  # the row as queued: only a take or an end changes it
            run = None if queued is None else Run.model_validate(queued)
        except ValidationError:  # a job of another version's making: read back instead
            run = None
        if run is None:  # the take reads the run back, in a thread
            return await self.store.off_loop(
                lambda: self._jobs.take(run_id, self.name, now), "taking a run"
            )
        seconds = self.store.timeouts.connect + self.store.timeouts.statement
        try:
            won = await asyncio.wait_for(
                self._queue.take(self._jobs.take_on_async, run_id, self.name, now), seconds
            )
        except TimeoutError:
            raise StoreUnavailableError(
                self.store.shown_address, f"taking run {run_id} took over {seconds:g} s"
            ) from None
        if not won:
            return None
        run.status, run.started_at = RunStatus.running, now
        return run

    def _local_copy(self, task: Task, folder: str | None) -> Task:
        """The task with this worker's own folder: the same name under its tasks folder, or
        (a task defined through the API) its own work folder."""
        if folder is not None:
            return task.model_copy(update={"folder": self.settings.tasks_dir / folder})
        work = self.settings.data_dir / "work" / task.name
        work.mkdir(parents=True, exist_ok=True)
        return task.model_copy(update={"folder": work})

    def _refusal(self, task: Task, digest: str | None) -> str | None:
        if digest is None:
            return None
        folder = Path(task.folder)
        if not folder.is_dir():
            return f"worker {self.name} has no task folder {str(folder)!r}"
        here = folder_digest(folder)
        if here != digest:
            return (
                f"worker {self.name}'s copy of the task folder {str(folder)!r} differs from"
                f" the one this run was made for (digest {here[:12]}, expected {digest[:12]}):"
                " not run"
            )
        return None

    def _refuse_run(self, active: ActiveRun, why: str) -> None:
        run = active.run
        run.status, run.error, run.finished_at = RunStatus.failed, why, datetime.now(UTC)
        logger.error("run %s of task %s: %s", run.id, run.task, why)
        self.records.put_runs([run])
        with contextlib.suppress(OSError):
            active.writer.note(f"run ended, failed: {why}")
            active.writer.close()
        self._ended(active)

    def _ended(self, active: ActiveRun) -> None:
        self._active.pop(active.run.id, None)
        active.done.set()

    # -- commands from other nodes ------------------------------------------------------

    async def cancel(self, run_id: str) -> Run:
        """Stop a run under way here, and wait until it has ended."""
        active = self._active.get(run_id)
        if active is None:
            raise RunNotFoundError(run_id)
        active.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(active.done.wait(), active.policy.kill_grace + STOP_MARGIN)
        return active.run

    def _refuse(self, name: str, request: RunRequest) -> Run:
        raise ClusterUnavailableError(f"a manual run of task {name!r} (worker {self.name})", 0)

    @property
    def running_count(self) -> int:
        """Runs under way here now."""
        return len(self._active)

    def active(self, run_id: str) -> ActiveRun | None:
        """The run under way here with this id (its live log), if any."""
        return self._active.get(run_id)
