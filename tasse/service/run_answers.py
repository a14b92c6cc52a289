"""Runs for the API and pages: firing, manual runs, lookups, listings, cancels, logs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from tasse.cluster.nodes import NodeInfo, read_nodes
from tasse.errors import (
    RunNotFoundError,
    TaskBrokenError,
    TaskNotFoundError,
)
from tasse.models import (
    Run,
    RunOutline,
    RunRequest,
)
from tasse.runs.fire_decisions import STOP_MARGIN
from tasse.runs.live_log import Piece, follow_text
from tasse.runs.logs import follow
from tasse.service.task_answers import TaskAnswers
from tasse.store.nodes import Nodes
from tasse.store.windows import RunWindow
from tasse.tasks.task import Task

#: seconds an API read may take while the store cannot be written
FAIL_FAST = 1.0


class RunAnswers(TaskAnswers):
    """Runs, live first, then what waits for the store, then the store."""

    def _on_fire(self, name: str, due: list[datetime]) -> None:
        entry = self.registry.entries.get(name)
        if entry is None or entry.task is None:
            return
        if self.pauses.is_paused(name):
            self.dispatcher.fire_paused(name, due)
            return
        try:
            task = self.registry.resolve(entry.task)
        except TaskBrokenError as error:
            self.dispatcher.fire_refused(name, due, str(error))
            return
        self.dispatcher.fire(task, due)

    def _current_task(self, name: str) -> Task | None:
        # What a retry runs: the task as it is now, unless it is gone or broken.
        entry = self.registry.entries.get(name)
        if entry is None or entry.task is None:
            return None
        try:
            return self.registry.resolve(entry.task)
        except TaskBrokenError:
            return None

    def run_now(self, name: str, request: RunRequest) -> Run:
        """Start a manual run of a task now."""
        return self.dispatcher.run_now(self.registry.resolve(self._runnable(name)), request)

    async def request_run(self, name: str, request: RunRequest) -> Run:
        """A manual run, started here or, in a cluster, by the scheduler node."""
        if self.cluster is None or self.cluster.is_scheduler:
            return self.run_now(name, request)
        self._runnable(name)  # what this node can tell at once, it tells
        return await self.cluster.run_on_scheduler(name, request)

    async def nodes(self) -> list[NodeInfo]:
        """The servers using the store (a cluster's nodes), the scheduler marked."""
        if self.cluster is not None:
            return await self.store.off_loop(self.cluster.nodes)
        return await self.store.off_loop(lambda: read_nodes(Nodes(self.store), None))

    async def get_run(self, run_id: str) -> Run:
        """One run: live state first, then what waits for the store, then the store."""
        run = self.dispatcher.lookup(run_id) or self.records.pending_run(run_id)
        if run is None:
            run = await self.store.off_loop(
                lambda: self.store.get(run_id), seconds=self._read_deadline()
            )
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    async def list_runs(
        self, name: str, limit: int, status: str | None = None, before: str | None = None
    ) -> list[Run]:
        """A task's runs, newest first (older than run `before`, when given).

        Runs the store does not have yet (the writer's, the journal's) are listed too.
        """
        if name not in self.registry.entries and name not in self.dispatcher.last_runs:
            raise TaskNotFoundError(name)
        stored = await self.store.off_loop(lambda: self.store.for_task(name, limit, status, before))
        pending = [
            run
            for run in self.records.pending_runs_of(name)
            if (status is None or run.status.value == status)
            and (before is None or run.id < before)
        ]
        if not pending:
            return stored
        newest = {run.id: run for run in stored} | {run.id: run for run in pending}
        return sorted(newest.values(), key=lambda run: run.id, reverse=True)[:limit]

    async def runs(self, window: RunWindow) -> list[Run]:
        """Runs of any task in a time window (`store/windows.py`), newest first."""
        return await self.timeline.runs(window)

    async def run_outlines(self, window: RunWindow) -> list[RunOutline]:
        """`runs` as outlines (`models.RunOutline`): what charts draw, read cheaply."""
        return await self.timeline.outlines(window)

    def _run_recorded(self, run: Run) -> None:
        # Every state a run is recorded in: the live events, the overview's strips, metrics.
        self.events.run_changed(run)
        self.outcomes.note(run)
        self.metrics.note_run(run)

    async def recent_outcomes(self, names: Sequence[str], count: int = 20) -> dict[str, list[Run]]:
        """Each named task's newest `count` runs, newest first (a page's worth at once)."""
        if count == self.outcomes.count:
            return await self.outcomes.of(names)
        return await self.timeline.recent_outcomes(names, count)

    def _read_deadline(self) -> float | None:
        # While writes fail, a read is likely to fail too: answer 503 soon, not after the
        # full timeouts (SQLite locked for writes still reads, and quickly).
        return None if self.records.state.writable else FAIL_FAST

    async def cancel_run(self, run_id: str) -> Run:
        """Stop a live run (in a cluster, on whichever node runs it)."""
        if self.cluster is not None and self.dispatcher.active(run_id) is None:
            wait = self.settings.kill_grace + STOP_MARGIN
            stopped = await self.cluster.cancel_elsewhere(run_id, wait)
            if stopped is not None:
                return stopped
        return await self.dispatcher.cancel(run_id)

    async def log_home(self, run_id: str) -> tuple[str, str | None] | None:
        """In a cluster, the other node that has the run's log (name, API address): its
        API answers for it. None: this node has it (or no node does)."""
        # A run this node follows on a worker has its log there.
        here = self.dispatcher.active(run_id) is not None and self.remote is None
        if self.cluster is None or here:
            return None
        return await self.cluster.log_home(run_id)

    async def read_log(self, run_id: str) -> bytes:
        """A run's whole output so far."""
        run = await self.get_run(run_id)
        try:
            return self.layout.run_log(run.task, run.id).read_bytes()
        except FileNotFoundError:  # a skipped or missed run has no output
            return b""

    async def follow_log(self, run_id: str, live: bool = True) -> AsyncIterator[bytes]:
        """A run's output so far, in chunks; with `live`, then new output until the run ends."""
        run = await self.get_run(run_id)
        active = self.dispatcher.active(run_id) if live else None
        return follow(self.layout.run_log(run.task, run.id), active.writer if active else None)

    async def live_log(self, run_id: str, offset: int | None) -> AsyncIterator[Piece]:
        """A run's output as text from `offset` (None: its last 256 KiB) until it ends."""
        run = await self.get_run(run_id)
        active = self.dispatcher.active(run_id)
        return follow_text(
            self.layout.run_log(run.task, run.id),
            active.writer if active else None,
            offset,
            self.events.closed,
            self.settings.events_heartbeat,
        )
