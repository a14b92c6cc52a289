"""How fires and manual requests become runs or ledger records: catch-up, grace time,
overlap (`skip`, `queue`, `parallel`, `replace`) and `max_parallel`.

The deciding half of `Dispatcher` (`runs/dispatcher.py`), which starts, follows, retries
and records the runs decided here (`_launch`, `_record`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tasse.errors import TaskBusyError, TaskEnvError
from tasse.models import Run, RunRequest, RunStatus, RunTrigger
from tasse.runs.execution import ActiveRun
from tasse.runs.ledger import PAUSED, DowntimeTally, not_run_record, not_run_records
from tasse.runs.places import Places
from tasse.runs.policies import Policy, decide_fires, policy_of
from tasse.settings import Settings
from tasse.tasks.task import Task

logger = logging.getLogger("tasse.runs.dispatcher")  # one logger for the whole dispatcher

#: seconds the summary of the fires due while the server was down waits for all of them
DOWNTIME_GATHER = 0.5
#: seconds a stopped run may take beyond its kill grace before `cancel` answers anyway
STOP_MARGIN = 5.0


class FireDecisions(ABC):
    """Decides each fire and manual request by its task's policies."""

    _settings: Settings
    _places: Places[ActiveRun]
    #: tasks that caught up a fire missed while down (`catchup: latest` does it once)
    _caught_up: set[str]
    #: fire times before this came due while the server was down (catch-up applies)
    started_at: datetime
    #: fires that came due while the server was down, logged in one line at start
    _downtime: DowntimeTally
    _downtime_line: asyncio.TimerHandle | None
    #: fires waiting for runs whose end the loop has not heard of yet
    _deferred: set[asyncio.Task[None]]
    _stopping: bool

    @abstractmethod
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
        """Start a run of the task (it waits for its place, slot and environment)."""

    @abstractmethod
    def _record(self, runs: Sequence[Run], level: int = logging.WARNING) -> None:
        """Record runs (ledger records: fires that did not run), and log each."""

    def fire(self, task: Task, due: list[datetime]) -> None:
        """Handle scheduled fire times by the task's catch-up, grace and overlap policies."""
        policy = policy_of(task.spec, self._settings)
        # Each schedule fires on its own: `catchup: latest` catches up one fire per task.
        caught_up = task.name in self._caught_up
        decision = decide_fires(due, datetime.now(UTC), self.started_at, policy, caught_up)
        if decision.run and decision.run[0] < self.started_at:
            self._caught_up.add(task.name)
        self._record_not_run(task.name, decision.not_run, decision.run)
        # Caught-up fires (`catchup: all`) and the catch-ups of a clock change (a burst,
        # policies.BURST) run one after another, whatever the overlap.
        in_turn = len(decision.run) > 1
        for scheduled in decision.run:
            if not in_turn and not self._places.has_room(task.name, policy.max_parallel):
                self._overlapping_fire(task, policy, scheduled)
                continue
            try:
                self._launch(
                    task,
                    policy,
                    RunTrigger.schedule,
                    scheduled,
                    RunRequest(),
                    in_turn=in_turn,
                )
            except TaskEnvError as error:
                self._record([not_run_record(task.name, scheduled, RunStatus.failed, str(error))])

    def _record_not_run(
        self, name: str, not_run: list[tuple[datetime, RunStatus, str]], run: list[datetime]
    ) -> None:
        # Fires due while the server was down are summed up in one line for all tasks (a
        # restart after days would log thousands), each still recorded on its own.
        down = [outcome for outcome in not_run if outcome[0] < self.started_at]
        up = [outcome for outcome in not_run if outcome[0] >= self.started_at]
        self._record(not_run_records(name, down), logging.DEBUG)
        self._record(not_run_records(name, up))
        for status in {status for _, status, _ in down}:
            self._downtime.add(name, [t for t, s, _ in down if s is status], status.value)
        self._downtime.add(name, [t for t in run if t < self.started_at], "caught up")
        if (down or run) and self._downtime_line is None:
            # APScheduler hands over every due schedule in one pass: the line waits for all.
            loop = asyncio.get_running_loop()
            self._downtime_line = loop.call_later(DOWNTIME_GATHER, self._log_downtime)

    def _log_downtime(self) -> None:
        self._downtime_line = None
        if (line := self._downtime.take()) is not None:
            logger.warning("%s", line)

    def _overlapping_fire(self, task: Task, policy: Policy, scheduled: datetime) -> None:
        alive = self._places.holders(task.name)
        if policy.overlap in ("skip", "parallel") and _all_exited(alive):
            # The runs in its way have ended, but the loop has not heard yet (it was held
            # up): this fire is the current one, and must not be skipped for a stale run.
            later = asyncio.get_running_loop().create_task(
                self._fire_once_ended(task, policy, scheduled, alive)
            )
            self._deferred.add(later)
            later.add_done_callback(self._deferred.discard)
            return
        if policy.overlap in ("skip", "parallel"):
            status, reason = RunStatus.skipped, still_running(alive, policy)
        elif waiting := self._waiting_fire(task.name):
            status, reason = RunStatus.coalesced, f"run {waiting.run.id} was already waiting"
        else:
            try:
                run = self._launch(task, policy, RunTrigger.schedule, scheduled, RunRequest())
            except TaskEnvError as error:
                status, reason = RunStatus.failed, str(error)
            else:
                if policy.overlap == "replace":
                    self._replace(task.name, run.id)
                return
        self._record([not_run_record(task.name, scheduled, status, reason)])

    async def _fire_once_ended(
        self, task: Task, policy: Policy, scheduled: datetime, ended: Sequence[ActiveRun]
    ) -> None:
        waits = [asyncio.ensure_future(active.done.wait()) for active in ended]
        _, pending = await asyncio.wait(waits, timeout=STOP_MARGIN)
        for waiting in pending:
            waiting.cancel()
        if self._stopping:
            return
        if self._places.has_room(task.name, policy.max_parallel):
            with contextlib.suppress(TaskEnvError):
                self._launch(task, policy, RunTrigger.schedule, scheduled, RunRequest())
                return
        alive = self._places.holders(task.name)
        self._record(
            [not_run_record(task.name, scheduled, RunStatus.skipped, still_running(alive, policy))]
        )

    def fire_paused(self, name: str, due: list[datetime]) -> None:
        """Record the fires of a paused task as skipped, `paused` (logged quietly: chosen)."""
        outcomes = [(scheduled, RunStatus.skipped, PAUSED) for scheduled in due]
        self._record(not_run_records(name, outcomes), logging.DEBUG)

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
            self._replace(task.name, run.id)
        return run

    def _waiting_fire(self, name: str) -> ActiveRun | None:
        # A scheduled run waiting for its turn takes further fires with it (`coalesced`);
        # each manual request gets a run of its own.
        for active in self._places.waiting(name):
            if active.run.trigger is RunTrigger.schedule:
                return active
        return None

    def _replace(self, name: str, newest: str) -> None:
        """Stop the oldest running run for the newest one; if all are stopping already,
        the runs waiting ahead of it (the newest request wins)."""
        reason = f"replaced by run {newest}"
        for active in self._places.holders(name):
            if not active.stop_requested.is_set():
                active.stop(reason)
                return
        for active in self._places.waiting(name):
            if active.run.id != newest:
                active.stop(reason)


def _all_exited(alive: Sequence[ActiveRun]) -> bool:
    return bool(alive) and all(a.process is not None and a.process.has_exited() for a in alive)


def still_running(alive: Sequence[ActiveRun], policy: Policy) -> str:
    ids = ", ".join(active.run.id for active in alive[:3]) + (" …" if len(alive) > 3 else "")
    if policy.max_parallel == 1:
        return f"run {ids} was still running"
    return f"{len(alive)} runs were still running (max_parallel {policy.max_parallel}): {ids}"
