"""Reads across tasks for overviews, off the loop: the store's rows merged with the runs the
writer still holds, so a run that just started or ended shows before the store has it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from tasse.models import Run, RunCounts, RunLike, RunOutline, RunStatus
from tasse.store.runs import RunStore
from tasse.store.windows import RunWindow, in_window, newest_first
from tasse.store.writer import RecordWriter

T = TypeVar("T")
R = TypeVar("R", bound=RunLike)


class Timeline:
    """Runs in a time window, counts by status, and each task's recent outcomes."""

    def __init__(
        self, store: RunStore, records: RecordWriter, deadline: Callable[[], float | None]
    ):
        self._store = store
        self._records = records
        #: seconds a read may take now (None: the store's own timeouts)
        self._deadline = deadline

    async def runs(self, window: RunWindow) -> list[Run]:
        """The runs the window holds, newest first, up to its limit."""
        return await self._window(window, self._store.in_window, lambda run: run)

    async def outlines(self, window: RunWindow) -> list[RunOutline]:
        """`runs` as outlines, for charts: a third of the cost of reading whole runs."""
        return await self._window(window, self._store.outlines_in_window, RunOutline.of)

    async def _window(
        self,
        window: RunWindow,
        read: Callable[[RunWindow, datetime], list[R]],
        shape: Callable[[Run], R],
    ) -> list[R]:
        now = datetime.now(UTC)
        stored = await self._read(lambda: read(window, now), "listing runs")
        merged = {run.id: run for run in stored}
        for run in self._records.pending_runs():
            # The newest state decides: a run the store has as running may have ended since.
            if in_window(run, window, now):
                merged[run.id] = shape(run)
            else:
                merged.pop(run.id, None)
        return newest_first(list(merged.values()), window.limit)

    async def counts(self, since: datetime) -> RunCounts:
        """How many runs overlap the time from `since` to now, by status (the store's rows)."""
        now = datetime.now(UTC)
        found = await self._read(lambda: self._store.count_by_status(since, now), "counting runs")
        return RunCounts(since=since, by_status={s: found.get(s.value, 0) for s in RunStatus})

    async def recent_outcomes(self, names: Sequence[str], count: int) -> dict[str, list[Run]]:
        """Each named task's newest `count` runs, newest first."""
        found = await self._read(
            lambda: self._store.recent_outcomes(names, count), "reading recent outcomes"
        )
        pending: dict[str, dict[str, Run]] = {}
        for run in self._records.pending_runs():
            if run.task in found:
                pending.setdefault(run.task, {})[run.id] = run
        for task, runs in pending.items():
            merged = {run.id: run for run in found[task]} | runs
            found[task] = newest_first(list(merged.values()), count)
        return found

    async def _read(self, function: Callable[[], T], what: str) -> T:
        return await self._store.off_loop(function, what, seconds=self._deadline())
