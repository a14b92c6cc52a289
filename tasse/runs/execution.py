"""Carries out one run: waits for its turn, environment and slot, runs it, records it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from tasse.envs.environments import Environment
from tasse.envs.provisioner import Pending, Provisioner
from tasse.errors import TaskEnvError
from tasse.models import Run, RunRequest, RunStatus, RunTrigger
from tasse.runs.ledger import PAUSED
from tasse.runs.logs import RunLogWriter
from tasse.runs.policies import Policy
from tasse.runs.runner import Outcome, RunProcess, command_line
from tasse.runs.slots import RunSlots
from tasse.store.outbox import Notice
from tasse.store.writer import RecordWriter
from tasse.tasks.task import Task

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Process(Protocol):
    """What carries a run out: a local subprocess (`RunProcess`), or a job on a worker."""

    async def start(self) -> None:
        """Set it going (raises OSError when it cannot be)."""

    async def wait(self) -> Outcome:
        """How it ended."""

    def stop(self) -> None:
        """Stop it: politely first."""

    def kill(self) -> None:
        """Stop it at once."""

    def has_exited(self) -> bool:
        """Whether it has ended already (the loop may not have heard yet)."""


class Elsewhere(Protocol):
    """Where runs go in a cluster with workers (`cluster/remote.py`): the run's process
    is a job a worker takes, which records the run's states itself."""

    def send(self, active: ActiveRun) -> Process:
        """The job that will carry this run out (not yet sent: `start` sends it)."""

    def sent(self, process: Process) -> bool:
        """Whether this process reached a worker's queue (its run's states are the
        worker's to record from then on)."""


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
    #: its process, once its environment is ready (a job on a worker, in a cluster with them)
    process: Process | None = None
    #: a stop asked for before the process exists
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    #: why it was stopped, when another run replaced it
    stop_reason: str | None = None
    #: whether it holds one of the `--max-concurrent-runs` slots
    holds_slot: bool = False

    def stop(self, reason: str | None = None) -> None:
        """Stop the process, or keep it from starting."""
        if reason and not self.stop_requested.is_set():
            self.stop_reason = reason
        if self.process is not None:
            self.process.stop()
        self.stop_requested.set()


class _StoppedError(Exception):
    """The run was stopped while it waited to start."""


async def _unless_stopped(active: ActiveRun, waiting: Awaitable[T]) -> T:
    """What `waiting` gives; raises _StoppedError when the run is stopped first."""
    work = asyncio.ensure_future(waiting)
    stopping = asyncio.ensure_future(active.stop_requested.wait())
    await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not work.done():
        work.cancel()
        raise _StoppedError
    return work.result()


class Executor:
    """Carries runs out in the background and records them; `on_end` hears of each end."""

    def __init__(
        self,
        records: RecordWriter,
        provisioner: Provisioner,
        max_concurrent_runs: int,
        on_end: Callable[[ActiveRun], None],
        is_paused: Callable[[str], bool] = lambda name: False,
        on_change: Callable[[Run], None] = lambda run: None,
        notices: Callable[[Sequence[Run]], Sequence[Notice]] = lambda runs: (),
        elsewhere: Elsewhere | None = None,
        records_started: bool = True,
    ):
        self._records = records
        #: whether `running` is recorded once a process is on its way (False on a worker:
        #: taking the run wrote it, `store/run_jobs.py`)
        self._records_started = records_started
        #: where runs go instead of this node's subprocesses (None: they run here)
        self._elsewhere = elsewhere
        self._envs = provisioner
        self._slots = RunSlots(max_concurrent_runs) if max_concurrent_runs else None
        self._on_end = on_end
        self._is_paused = is_paused
        #: told of every state a run is recorded in (live events), as it is handed over
        self._on_change = on_change
        #: the notifications these run states cause, written with them
        self._notices = notices
        self._tasks: dict[asyncio.Task[None], ActiveRun] = {}

    def start(self, active: ActiveRun, environment: Environment | Pending | None) -> None:
        """Carry the run out in the background."""
        self._background(active, self._execute(active, environment))

    def follow(self, active: ActiveRun, process: Process) -> None:
        """Follow a run already under way elsewhere to its end, and record that."""
        active.process = process
        self._background(active, self._execute(active, None, process))

    def _background(self, active: ActiveRun, work: Coroutine[Any, Any, None]) -> None:
        background = asyncio.get_running_loop().create_task(work)
        self._tasks[background] = active
        background.add_done_callback(lambda done: self._tasks.pop(done, None))

    def let_go(self, active: ActiveRun) -> None:
        """Stop following a run on a worker, recording nothing: another node follows it."""
        for task, followed in list(self._tasks.items()):
            if followed is active:
                task.cancel()
        if active.holds_slot and self._slots is not None:
            active.holds_slot = False
            self._slots.release()

    def sent_elsewhere(self, active: ActiveRun) -> bool:
        """Whether the run is on a cluster's worker (it goes on if this node stops)."""
        process = active.process
        return self._elsewhere is not None and process is not None and self._elsewhere.sent(process)

    async def wait(self, timeout: float, runs: Sequence[ActiveRun] | None = None) -> None:
        """Wait (at most `timeout` seconds) for every run (or these) to be carried out."""
        waited = [task for task, active in self._tasks.items() if runs is None or active in runs]
        if waited:
            await asyncio.wait(waited, timeout=timeout)

    async def _execute(
        self,
        active: ActiveRun,
        environment: Environment | Pending | None,
        under_way: Process | None = None,
    ) -> None:
        run = active.run
        try:
            if under_way is not None:
                outcome = await under_way.wait()
            else:
                outcome = await self._carry_out(active, environment)
        except Exception as error:  # a broken store or log folder must not wedge the task
            logger.exception("run %s of task %s could not be carried out", run.id, run.task)
            if active.process is not None:
                active.process.kill()
            outcome = Outcome(RunStatus.failed, error=f"Tasse could not carry out the run: {error}")
        if outcome.status is RunStatus.cancelled and active.stop_reason:
            outcome = Outcome(outcome.status, outcome.exit_code, active.stop_reason)
        run.status, run.exit_code, run.error = outcome.status, outcome.exit_code, outcome.error
        run.finished_at = outcome.finished_at or datetime.now(UTC)
        if self.sent_elsewhere(active):
            self.record([run], write=False)  # the worker wrote it (or the withdrawal did)
        else:
            self.record([run])
        self._end(active)

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
        # Paused while it waited (a retry's backoff, its turn): only what a person asked
        # for starts while the task is paused.
        if run.trigger is not RunTrigger.manual and self._is_paused(run.task):
            run.started_at = None
            return Outcome(RunStatus.skipped, error=PAUSED)
        if self._elsewhere is not None:
            return await self._send(active)
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
        if self._records_started:
            self.record_start(active)
        logger.info("run %s of task %s started (%s)", run.id, run.task, run.trigger.value)
        return await active.process.wait()

    async def _send(self, active: ActiveRun) -> Outcome:
        """The run as a job for a worker: queued until one takes it, which then writes
        its states; this node follows them (`on_change`), and keeps its place and slot."""
        assert self._elsewhere is not None
        active.process = self._elsewhere.send(active)
        try:
            await active.process.start()
        except OSError as error:
            return Outcome(RunStatus.failed, error=f"could not be queued: {error}")
        return await active.process.wait()

    async def _wait_to_start(
        self, active: ActiveRun, environment: Environment | Pending | None
    ) -> Environment | None:
        """Wait for a retry's delay, a place, the environment and a slot, in this order."""
        if active.delay:
            await _unless_stopped(active, asyncio.sleep(active.delay))
        if not active.placed.is_set():
            await _unless_stopped(active, active.placed.wait())
        if isinstance(environment, Pending):
            active.writer.note("waiting for the task's Python environment to be built")
            environment = await _unless_stopped(active, self._envs.wait(active.task))
        if self._slots is not None and not active.holds_slot:
            await self._take_slot(active)
        if active.stop_requested.is_set():
            raise _StoppedError
        return environment

    def take_slot_now(self, active: ActiveRun) -> bool:
        """Take a run slot for this run if one is free now (always, without a limit)."""
        if self._slots is None:
            return True
        active.holds_slot = self._slots.try_take()
        return active.holds_slot

    async def _take_slot(self, active: ActiveRun) -> None:
        # `--max-concurrent-runs`: beyond it a run is `queued` until one ends (or it is
        # stopped while it waits).
        assert self._slots is not None
        if not self.take_slot_now(active):
            # (queued already: a run that does not wait for anything took its slot at launch)
            active.writer.note(f"waiting for a run slot ({self._slots.limit} at a time)")
            await _unless_stopped(active, self._slots.take())
            active.holds_slot = True

    def record_start(self, active: ActiveRun) -> None:
        """Record the run as it is now (queued or running), off the loop."""
        self.record([active.run])

    def record(self, runs: Sequence[Run], write: bool = True) -> None:
        """Hand runs to the writer as they are now, and tell `on_change` of each
        (`write=False`: states another node recorded, whose notifications are this one's)."""
        # The one seam every recorded state passes (queued, running, each outcome, the
        # ledger's fires that did not run): live events see each change once, and each
        # outcome's notifications are written with it.
        try:
            notices = self._notices(runs)
        except Exception:  # a message must never cost a run its record
            logger.exception("the notifications of %d run(s) failed", len(runs))
            notices = ()
        if write:
            self._records.put_runs(runs, notices)
        else:
            self._records.save_notices(notices)
        for run in runs:
            try:
                self._on_change(run)
            except Exception:  # a live event must never cost a run its course
                logger.exception("run %s of task %s: its live event failed", run.id, run.task)

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
            task.spec.stdin,
        )

    def _end(self, active: ActiveRun) -> None:
        run = active.run
        summary = run.status.value + (f": {run.error}" if run.error else "")
        dropped = active.writer.dropped
        try:
            try:
                active.writer.note(
                    f"run ended, {summary}"
                    + (
                        f"; {dropped} bytes of output beyond the limit were dropped"
                        if dropped
                        else ""
                    )
                )
            finally:
                active.writer.close()
        except OSError as error:
            logger.error(
                "run %s of task %s: log.txt could not be written: %s", run.id, run.task, error
            )
        finally:
            # Whatever the logs did: the slot and the task's place must be given back.
            if active.holds_slot and self._slots is not None:
                active.holds_slot = False
                self._slots.release()
            self._on_end(active)
        logger.info("run %s of task %s ended, %s", run.id, run.task, summary)
