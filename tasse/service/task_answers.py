"""What the API and pages ask about tasks: listings, counts, one task, its next fires, pausing."""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import asdict
from datetime import datetime

from tasse.errors import (
    FireTimesBudgetError,
    TaskBrokenError,
    TaskNotFoundError,
)
from tasse.models import (
    Counts,
    EnvInfo,
    TaskCounts,
    TaskInfo,
)
from tasse.runs.policies import policy_of
from tasse.service.parts import Parts
from tasse.tasks import listing
from tasse.tasks.info import task_info
from tasse.tasks.registry import TaskEntry
from tasse.tasks.task import Task

#: seconds the tasks' counts by state may be old when shown
COUNTS_MAX_AGE = 2.0


class TaskAnswers(Parts):
    """Tasks as the API shows them, from memory."""

    def list_tasks(self) -> list[TaskInfo]:
        """Every known task (broken ones included), by name."""
        return [self._info(entry) for _, entry in sorted(self.registry.entries.items())]

    def get_task(self, name: str) -> TaskInfo:
        """One task by name."""
        return self._info(self._entry(name))

    def find_tasks(self, query: listing.TaskQuery) -> tuple[list[TaskInfo], int]:
        """The page of tasks a query asks for, in its order, and how many pass its filters."""
        facts = self._facts()
        page, total = listing.select(self.registry.entries.values(), query, facts)
        return [self._info(entry, facts) for entry in page], total

    async def counts(self, since: datetime) -> Counts:
        """Tasks by state and source, and the runs from `since` to now by status."""
        # The store counts runs on a thread while the loop counts tasks.
        runs = asyncio.ensure_future(self.timeline.counts(since))
        return Counts(tasks=self.task_counts(), runs=await runs)

    def task_counts(self) -> TaskCounts:
        """Tasks by state and source, from memory (the overview's chips), at most 2 s old."""
        # Every task's state costs microseconds; with 10,000 tasks a page shown again and
        # again (live updates) would pay tens of milliseconds each time for the same numbers.
        now = time.monotonic()
        if self._counted is None or now - self._counted[0] > COUNTS_MAX_AGE:
            self._counted = (now, listing.count(self.registry.entries, self._facts()))
        return self._counted[1]

    def _facts(self) -> listing.Facts:
        # Asked once per answer; the next fire times only by `sort=next`, then all at once.
        next_run_times = functools.cache(self.scheduler.next_run_times)
        return listing.Facts(
            source=self.catalog.source_of,
            env_problem=self.envs.problem,
            paused=self.pauses.is_paused,
            running=self.dispatcher.running_tasks(),
            last_runs=self.dispatcher.last_runs,
            next_run_at=lambda name: next_run_times().get(name),
        )

    async def next_fires(self, name: str, count: int) -> list[datetime]:
        """The task's next `count` fire times, within the budget, computed off the loop."""
        entry = self._entry(name)
        if entry.task is None or not entry.task.spec.enabled:
            return []
        # A listing takes `count` steps per schedule, each up to a third of a millisecond
        # (a yearly crontab line): bounded here, and on a worker thread, as the loop fires
        # schedules; at most two at once, so they cannot fill the threads rescans need.
        schedules = max(1, len(entry.triggers))
        if schedules * count > self.settings.next_fires_budget:
            raise FireTimesBudgetError(name, count, schedules, self.settings.next_fires_budget)
        async with self._next_fires_slots:
            return await asyncio.to_thread(self.scheduler.upcoming, name, count)

    def _entry(self, name: str) -> TaskEntry:
        entry = self.registry.entries.get(name)
        if entry is None:
            raise TaskNotFoundError(name)
        return entry

    def _runnable(self, name: str) -> Task:
        entry = self._entry(name)
        if entry.task is None:
            raise TaskBrokenError(name, str(entry.error))
        return entry.task

    def _info(self, entry: TaskEntry, facts: listing.Facts | None = None) -> TaskInfo:
        task, name = entry.task, entry.name
        source = self.catalog.source_of(name)
        last_run = self.dispatcher.last_runs.get(name)
        definition = self.catalog.definition(name)
        pause = self.pauses.get(name)
        state = listing.state_of(entry, facts or self._facts())
        if task is None:
            return task_info(
                entry,
                source=source,
                last_run=last_run,
                state=state,
                definition=definition,
                pause=pause,
                active_runs=self.dispatcher.alive(name),
            )
        env_of = task.reference or name  # a reference runs in its target's environment
        return task_info(
            entry,
            source=source,
            last_run=last_run,
            state=state,
            definition=definition,
            next_run_at=self.scheduler.next_run_at(name),
            env=self.envs.info(env_of),
            env_problem=self.envs.problem(env_of),
            policy=asdict(policy_of(task.spec, self.settings)),
            pause=pause,
            active_runs=self.dispatcher.alive(name),
        )

    def pause(self, name: str, reason: str | None = None) -> TaskInfo:
        """Pause the task: its fires are recorded as skipped (`paused`) until it is resumed."""
        entry = self._entry(name)
        self.pauses.pause(name, reason)
        return self._info(entry)

    def resume(self, name: str) -> TaskInfo:
        """Resume a paused task: its next fires run (those missed while paused stay skipped)."""
        entry = self._entry(name)
        self.pauses.resume(name)
        return self._info(entry)

    def is_paused(self, name: str) -> bool:
        """Whether the task is paused (from memory)."""
        return self.pauses.is_paused(name)

    def rebuild_env(self, name: str) -> EnvInfo:
        """Build the task's environment again, replacing the current one when done."""
        return self.envs.rebuild(self._runnable(name).name)
