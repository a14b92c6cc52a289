"""Runs carried out by workers, as the scheduler node sees them.

The scheduler decides a run exactly as in single mode (overlap, `max_parallel`, the
`--max-concurrent-runs` slots, retries: one node, the lease's holder, decides for the
whole cluster); only its process is a job on a procrastinate queue instead of a
subprocess. `RemoteJob.start` writes the queued run and its job together
(`store/run_jobs.py`); from then on the worker that takes it records its states, and the
scheduler follows them with one query for all its runs every `WATCH_EVERY` seconds, so
each state change reaches its live events and each outcome its notifications and its
task's retry policy. Stopping a run withdraws it while no worker has taken it, and
otherwise sends a cancel to the worker's node (`cluster/commands.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasse.cluster.remote_job import RemoteJob
from tasse.models import Run, RunStatus
from tasse.runs.execution import ActiveRun, Process
from tasse.store.run_jobs import RunJobs
from tasse.store.writer import RecordWriter
from tasse.tasks.folder_digest import folder_digest

logger = logging.getLogger(__name__)

#: seconds between reads of the states of the runs on workers
WATCH_EVERY = 0.1
#: seconds a run's queued state may wait in this node's writer before its job is sent
#: anyway (the store is slow; the job's own write holds the same state)
FLUSH_WAIT = 2.0
#: seconds a cancel sent to a worker waits for its answer
CANCEL_WAIT = 10.0
#: seconds a run may wait for a worker before the log says so (one line for all, at most
#: this often)
WAIT_WARNING = 30.0

#: sends a cancel of run `run_id` to node `node`: `CommandDesk.cancel_on`
CancelOn = Callable[[str, str, float], Awaitable[Run]]


class RemoteRuns:
    """Sends runs to the workers' queues and follows them (`runs.execution.Elsewhere`)."""

    def __init__(
        self,
        jobs: RunJobs,
        records: RecordWriter,
        cancel_on: CancelOn,
        on_change: Callable[[Run], None],
        tasks_dir: Path,
        lease: Callable[[], tuple[str, int | None]],
    ):
        #: the runs and jobs in the store
        self.jobs = jobs
        self._tasks_dir = tasks_dir
        #: this node's name and its scheduler lease's fencing token (None: not held)
        self._lease = lease
        self._records = records
        self._cancel_on = cancel_on
        self._on_change = on_change
        self._watched: dict[str, RemoteJob] = {}
        self._watch: asyncio.Task[None] | None = None
        self._cancels: set[asyncio.Task[None]] = set()
        self._told_at = 0.0
        #: runs to queue in the next write, each with what its sender awaits
        self._to_send: list[tuple[RemoteJob, Run, asyncio.Future[None]]] = []
        self._writing: set[asyncio.Future[None]] = set()

    def start(self) -> None:
        """Start following the runs sent."""
        self._watch = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        """Stop following (the runs go on on their workers; a new scheduler follows them)."""
        for task in [self._watch, *self._cancels]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def let_go(self) -> None:
        """Follow none of the runs any more (this node lost the scheduler lease)."""
        self._watched.clear()

    def send(self, active: ActiveRun) -> RemoteJob:
        """The job that will carry this run out, once started."""
        return RemoteJob(self, active)

    def sent(self, process: Process) -> bool:
        """Whether this run reached a queue (its states are the worker's to write)."""
        return isinstance(process, RemoteJob) and process.queued

    def adopted(self, active: ActiveRun, node: str | None) -> RemoteJob:
        """A run another scheduler sent, followed from now on by this one."""
        job = RemoteJob(self, active)
        job.queued, job.node = True, node
        self._watched[active.run.id] = job
        return job

    # -- what the jobs ask of it ----------------------------------------------------------

    async def enqueue(self, job: RemoteJob) -> None:
        run = job.active.run
        # The run's queued state (a run that waited for its turn) may still be in this
        # node's writer: written after the worker's `running`, it would take it back.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLUSH_WAIT
        while self._records.pending_run(run.id) is not None and loop.time() < deadline:
            await asyncio.sleep(0.005)
        # Runs sent in the same pass of the loop (fires due together) share one write.
        sent = asyncio.get_running_loop().create_future()
        self._to_send.append((job, run.model_copy(), sent))
        if len(self._to_send) == 1:
            asyncio.get_running_loop().call_soon(self._send_batch)
        await sent
        self._watched[run.id] = job

    def _send_batch(self) -> None:
        batch, self._to_send = self._to_send, []
        holder, token = self._lease()
        tasks_dir = self._tasks_dir

        def write() -> None:  # the folders' digests too, off the loop: they read files
            runs = [
                (snapshot, job.active.task.spec.queue, _job_args(job.active, snapshot, tasks_dir))
                for job, snapshot, _ in batch
            ]
            self.jobs.enqueue(runs, holder, token)

        def written(done: asyncio.Future[None]) -> None:
            for _, _, sent in batch:
                if sent.done():
                    continue
                if done.cancelled():
                    sent.cancel()
                elif (error := done.exception()) is not None:
                    sent.set_exception(error)
                else:
                    sent.set_result(None)

        writing = asyncio.ensure_future(asyncio.to_thread(write))
        self._writing.add(writing)  # held: the loop keeps only weak references to tasks
        writing.add_done_callback(self._writing.discard)
        writing.add_done_callback(written)

    async def withdraw(self, job: RemoteJob, why: str) -> bool:
        now = datetime.now(UTC)
        run_id = job.active.run.id
        return await asyncio.to_thread(self.jobs.withdraw, run_id, RunStatus.cancelled, why, now)

    def cancel_on(self, job: RemoteJob, node: str) -> None:
        async def cancel() -> None:
            try:
                await self._cancel_on(node, job.active.run.id, CANCEL_WAIT)
            except Exception as error:  # the next stop (or the worker's death) settles it
                logger.warning(
                    "run %s: the cancel sent to %s failed: %s", job.active.run.id, node, error
                )

        task = asyncio.get_running_loop().create_task(cancel())
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    # -- following -------------------------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            if not self._watched:
                continue
            ids = list(self._watched)
            try:
                found = await asyncio.to_thread(self.jobs.states, ids)
            except Exception as error:  # the store is down: the runs go on meanwhile
                logger.debug(
                    "the states of %d run(s) on workers could not be read: %s", len(ids), error
                )
                continue
            for run_id in ids:
                job = self._watched.get(run_id)
                if job is None:
                    continue
                if run_id not in found:
                    job.still_queued()
                elif job.observe(*found[run_id]):
                    self._watched.pop(run_id, None)
            self._tell_waits()

    def _tell_waits(self) -> None:
        now = time.monotonic()
        if now - self._told_at < WAIT_WARNING:
            return
        waiting = [
            job
            for job in self._watched.values()
            if job.node is None and now - job.queued_at >= WAIT_WARNING
        ]
        if waiting:
            self._told_at = now
            queues = sorted({job.active.task.spec.queue for job in waiting})
            logger.warning(
                "%d run(s) have waited over %.0f s for a worker (queue %s): the workers are"
                " busy, or none takes that queue (`tasse worker --queues`)",
                len(waiting),
                WAIT_WARNING,
                ", ".join(queues),
            )

    def changed(self, run: Run) -> None:
        try:
            self._on_change(run)
        except Exception:  # a live event must never cost a run its course
            logger.exception("run %s of task %s: its live event failed", run.id, run.task)


def _job_args(active: ActiveRun, queued: Run, tasks_dir: Path) -> dict[str, Any]:
    """What a worker needs to carry the run out: the task as this node loaded it (so every
    worker runs what the fire was made for), the request, and, for code in a task folder,
    that folder's name and digest (the worker compares its own copy's)."""
    task = active.task
    in_folder = task.folder.parent == tasks_dir
    return {
        "run_id": active.run.id,
        "run": queued.model_dump(mode="json"),  # its row as written: the take needs no read
        "task": task.model_dump(mode="json"),
        "request": active.request.model_dump(mode="json"),
        "folder": task.folder.name if in_folder else None,
        "digest": folder_digest(task.folder) if in_folder else None,
    }
