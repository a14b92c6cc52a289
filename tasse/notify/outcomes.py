"""What to tell of an outcome: the rules applied to a recorded run (with the task's history),
and of an environment that cannot be built (once per distinct problem).

Called on the loop where run states are recorded: it only decides and builds rows, it
never reads a file or sends anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from tasse.models import Run, RunStatus
from tasse.notify import message
from tasse.notify.addressing import Addressing
from tasse.notify.history import FAILURES, TaskHistory
from tasse.notify.rules import events_of
from tasse.store.outbox import Notice
from tasse.tasks.notify_spec import NotifySpec

logger = logging.getLogger(__name__)

#: the task's `notify:` as it is now (None: the task is gone, or says nothing)
SpecOf = Callable[[str], NotifySpec | None]
NO_RULES = NotifySpec()


class Outcomes:
    """Turns recorded outcomes into the rows they cause."""

    def __init__(
        self,
        addressing: Addressing,
        history: dict[str, TaskHistory],
        spec_of: SpecOf,
        retries_of: Callable[[str], int],
        env_problem: Callable[[str], str | None],
        defaults: Sequence[str],
        public_url: str | None,
    ):
        self._addressing = addressing
        self._history = history
        self._spec_of = spec_of
        self._retries_of = retries_of
        self._env_problem = env_problem
        self._defaults = defaults
        self._public = public_url
        self._env_told: dict[str, str] = {}

    def of_runs(self, runs: Sequence[Run]) -> list[Notice]:
        """The notifications these recorded run states cause."""
        notices: list[Notice] = []
        for run in runs:
            if run.status.is_final:
                try:
                    notices += self._of_outcome(run)
                except Exception:  # a message must never cost a run its record
                    logger.exception(
                        "run %s of task %s: its notifications failed", run.id, run.task
                    )
        return notices

    def _of_outcome(self, run: Run) -> list[Notice]:
        spec = self._spec_of(run.task) or NO_RULES
        history = self._history.setdefault(run.task, TaskHistory())
        retried = run.status in FAILURES and run.attempt <= self._retries_of(run.task)
        if self._env_failure(run):
            return []  # told once as env_failed, when the build failed
        found = events_of(run, spec, self._defaults, history, retried)
        if not retried:
            history.note(run)
        if not found.events:
            return []
        reason = message.reason_of(run)
        if "recovered" in found.events and run.status is RunStatus.succeeded:
            reason = "succeeded again"
        payload = message.payload(run.task, found.events, reason, run, found.details, self._public)
        return self._addressing.notices(run.task, spec, found.events, run.id, run.id, payload)

    def _env_failure(self, run: Run) -> bool:
        return (
            run.status is RunStatus.failed
            and run.started_at is None
            and self._env_problem(run.task) is not None
        )

    def env_failed(self, names: Iterable[str], now: datetime) -> list[Notice]:
        """Rows for tasks whose environment cannot be had now (once per distinct problem)."""
        notices = []
        for name in names:
            problem = self._env_problem(name)
            if problem is None:
                self._env_told.pop(name, None)
                continue
            spec = self._spec_of(name) or NO_RULES
            if self._env_told.get(name) == problem or not self._tells(spec, "env_failed"):
                continue
            self._env_told[name] = problem
            payload = message.payload(
                name, ["env_failed"], problem.splitlines()[0][:300], None, (), self._public
            )
            cause = f"env-{now:%Y%m%d%H%M%S%f}"
            notices += self._addressing.notices(name, spec, ["env_failed"], cause, None, payload)
        return notices

    def _tells(self, spec: NotifySpec, event: str) -> bool:
        return event in (self._defaults if spec.when is None else spec.when)
