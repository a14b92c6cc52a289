"""What the server counts since it started, and the text of `/metrics` at a scrape.

Counters and histograms start at zero with the process, as Prometheus expects of them
(`rate()` and `increase()` take restarts in their stride). What must be right across
restarts is read at a scrape: each task's last success (loaded from the store at start,
then kept by every recorded success) and next fire time (the scheduler's).

Labels are `task`, `status` and `trigger` only, never a run id or a command line: each
label's values are bounded by the tasks that exist. Histograms have no `task` label:
with 10,000 tasks their buckets would be hundreds of thousands of series; a task's own
durations are in its run history (`GET /tasks/{name}/runs`).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)

from tasse.metrics.text import Samples, family, labels
from tasse.models import Run, RunStatus
from tasse.runs.ledger import fires_of

#: what `/metrics` answers with: the text format, version 0.0.4
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: fires that did not run, each status counted as `tasse_fires_<status>_total`
NOT_RUN = (RunStatus.skipped, RunStatus.coalesced, RunStatus.missed)
#: seconds: from a tenth of a second to two hours (a `timeout` is often an hour)
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
#: seconds: a healthy server starts runs within milliseconds of their fire time
DELAY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: seconds: a bare environment takes a second, a scientific stack minutes
BUILD_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800)


@dataclass(frozen=True)
class ServerState:
    """What a scrape reads from the server's memory at that moment."""

    #: the tasks known now, broken ones included
    tasks: Collection[str]
    #: tasks whose definition or environment is broken
    broken: int
    #: runs whose process is alive, and runs waiting to start (turn, slot, environment)
    running: int
    queued: int
    #: records handed to the writer and not in the store yet, and those of them journaled
    pending_records: int
    journaled_records: int
    #: each scheduled task's next fire time
    next_fires: Mapping[str, datetime]


class Metrics:
    """Counts runs, fires, builds and notifications as they happen; renders a scrape."""

    def __init__(self, version: str):
        # A registry of its own: two servers in one process (tests) count apart.
        self._registry = registry = CollectorRegistry()
        Info("tasse", "The running server", registry=registry).info({"version": version})
        self._duration = Histogram(
            "tasse_run_duration_seconds",
            "Seconds from a run's start to its end, by outcome",
            ["status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._delay = Histogram(
            "tasse_schedule_delay_seconds",
            "Seconds from a run's intended time (scheduled_at) to its start, by trigger",
            ["trigger"],
            buckets=DELAY_BUCKETS,
            registry=registry,
        )
        self._build = Histogram(
            "tasse_env_build_duration_seconds",
            "Seconds an environment build took, failed ones included",
            buckets=BUILD_BUCKETS,
            registry=registry,
        )
        self._build_failures = Counter(
            "tasse_env_build_failures", "Environment builds that failed", registry=registry
        )
        self._deliveries = Counter(
            "tasse_notification_deliveries", "Notifications delivered", registry=registry
        )
        self._delivery_failures = Counter(
            "tasse_notification_failures",
            "Notification delivery attempts that failed (each retry counts)",
            registry=registry,
        )
        #: the labels of (task, status, trigger) → runs ended so
        self._runs: Tally[str] = Tally()
        #: status → a task's labels → fire times that did not run so
        self._fires: dict[RunStatus, Tally[str]] = {s: Tally() for s in NOT_RUN}
        #: each task's `task="…"`, written once
        self._task_labels: dict[str, str] = {}
        #: task → when its newest success finished (a POSIX timestamp)
        self._last_success: dict[str, float] = {}

    # -- hooks: called where things happen (wired by the service) -------------------------

    def note_run(self, run: Run) -> None:
        """Count a run recorded in a new state: its start (delay) and its end (outcome)."""
        if run.status is RunStatus.running:
            if run.started_at is not None and run.scheduled_at is not None:
                delay = (run.started_at - run.scheduled_at).total_seconds()
                self._delay.labels(run.trigger.value).observe(max(0.0, delay))
        elif run.status.is_final:
            self._note_end(run)

    def _note_end(self, run: Run) -> None:
        series = labels(task=run.task, status=run.status.value, trigger=run.trigger.value)
        self._runs[series] += 1
        if run.status in self._fires:
            self._fires[run.status][self.task_labels(run.task)] += fires_of(run)
        if run.started_at is not None and run.finished_at is not None:
            seconds = (run.finished_at - run.started_at).total_seconds()
            self._duration.labels(run.status.value).observe(max(0.0, seconds))
        if run.status is RunStatus.succeeded and run.finished_at is not None:
            self._last_success[run.task] = run.finished_at.timestamp()

    def task_labels(self, task: str) -> str:
        """The task's `task="…"` label, written at its first use."""
        found = self._task_labels.get(task)
        if found is None:
            found = self._task_labels[task] = labels(task=task)
        return found

    def note_last_successes(self, found: Mapping[str, datetime]) -> None:
        """Take in the store's last successes (at start); newer ones noted meanwhile stay."""
        for task, finished_at in found.items():
            at = finished_at.timestamp()
            if at > self._last_success.get(task, float("-inf")):
                self._last_success[task] = at

    def note_env_build(self, seconds: float, ok: bool) -> None:
        """Count an environment build that ended (cancelled ones are not told)."""
        self._build.observe(seconds)
        if not ok:
            self._build_failures.inc()

    def note_notification(self, ok: bool) -> None:
        """Count one notification delivery attempt: delivered, or failed (to be retried).

        For the notifier (`notify/`), wired by the service as the runs' hook is. No target
        label: labels are task, status and trigger only, and a target URL holds secrets.
        """
        if ok:
            self._deliveries.inc()
        else:
            self._delivery_failures.inc()

    # -- a scrape ----------------------------------------------------------------------------

    def take(self, state: ServerState) -> Scrape:
        """Everything a scrape shows, copied now (on the loop), to render on any thread."""
        known, task = state.tasks, self.task_labels
        return Scrape(
            registry=self._registry,
            state=state,
            runs=dict(self._runs),
            fires={status: dict(tally) for status, tally in self._fires.items()},
            last_success={task(t): at for t, at in self._last_success.items() if t in known},
            next_fire={task(t): at.timestamp() for t, at in state.next_fires.items()},
        )


@dataclass(frozen=True)
class Scrape:
    """One scrape's values, frozen; `render` writes them in the text format."""

    registry: CollectorRegistry
    state: ServerState
    runs: Samples
    fires: Mapping[RunStatus, Samples]
    last_success: Samples
    next_fire: Samples

    def render(self) -> bytes:
        """The text of `/metrics`: prometheus_client's families, then the per-task ones."""
        return generate_latest(self.registry) + "".join(self._families()).encode()

    def _families(self) -> list[str]:
        state = self.state
        gauges = [
            family(name, "gauge", help, {"": value})
            for name, help, value in (
                ("tasse_tasks", "Tasks known, broken ones included", len(state.tasks)),
                ("tasse_tasks_broken", "Tasks whose definition or environment is broken",
                 state.broken),
                ("tasse_runs_running", "Runs whose process is alive", state.running),
                ("tasse_runs_queued", "Runs waiting for their turn, a slot or their environment",
                 state.queued),
                ("tasse_records_pending", "Records not in the job store yet",
                 state.pending_records),
                ("tasse_journal_records_pending",
                 "Records in the local journal, waiting for the job store to take them",
                 state.journaled_records),
            )
        ]  # fmt: skip
        runs = family(
            "tasse_runs_total",
            "counter",
            "Runs ended since the server started, by task, outcome and trigger",
            self.runs,
        )
        fires = [
            family(
                f"tasse_fires_{status.value}_total",
                "counter",
                f"Fire times {status.value} since the server started",
                self.fires[status],
            )
            for status in NOT_RUN
        ]
        return [*gauges, runs, *fires, *self._per_task_times()]

    def _per_task_times(self) -> list[str]:
        return [
            family(
                "tasse_task_last_success_timestamp_seconds",
                "gauge",
                "When the task's newest successful run finished",
                self.last_success,
            ),
            family(
                "tasse_task_next_fire_timestamp_seconds",
                "gauge",
                "When the task's schedules fire next",
                self.next_fire,
            ),
        ]
