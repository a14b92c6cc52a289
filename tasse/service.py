"""The composition root: `Tasse` builds every part from `Settings`, wires them, and is the
one seam the API and CLI call."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime

from tasse import __version__
from tasse.cluster.node import Cluster
from tasse.cluster.nodes import NodeInfo, read_nodes
from tasse.envs.provisioner import Planned, Provisioner
from tasse.errors import (
    FireTimesBudgetError,
    RunNotFoundError,
    StoreUnavailableError,
    TaskBrokenError,
    TaskConfigError,
    TaskNotFoundError,
)
from tasse.events import EventHub
from tasse.metrics.metrics import Metrics, ServerState
from tasse.models import (
    Counts,
    EnvInfo,
    Run,
    RunOutline,
    RunRequest,
    RunStatus,
    TaskCounts,
    TaskInfo,
)
from tasse.notify.notifier import Notifier
from tasse.runs.dispatcher import STOP_MARGIN, Dispatcher
from tasse.runs.live_log import Piece, follow_text
from tasse.runs.logs import follow
from tasse.runs.outcomes import RecentOutcomes
from tasse.runs.pauses import PausedTasks
from tasse.runs.policies import policy_of
from tasse.runs.runner import stop_leftovers, watch_children_on_the_loop
from tasse.schedule.lag import LoopLag
from tasse.schedule.scheduler import Scheduler
from tasse.settings import Settings
from tasse.store.database import Timeouts
from tasse.store.journal import Journal
from tasse.store.log_files import LogLayout
from tasse.store.nodes import Nodes, node_name
from tasse.store.outbox import Notice
from tasse.store.retention import Retention
from tasse.store.runs import RunStore
from tasse.store.timeline import Timeline
from tasse.store.windows import RunWindow
from tasse.store.writer import RecordWriter
from tasse.tasks import discovery, listing
from tasse.tasks.catalog import Catalog
from tasse.tasks.info import task_info
from tasse.tasks.notify_spec import NotifySpec
from tasse.tasks.registry import Prepared, Registry, RescanReport, TaskEntry
from tasse.tasks.reloader import Reloader
from tasse.tasks.seeds import Seeder, seed_files
from tasse.tasks.task import Task
from tasse.tasks.triggers import prepare

logger = logging.getLogger(__name__)

#: seconds an API read may take while the store cannot be written
FAIL_FAST = 1.0
#: seconds the tasks' counts by state may be old when shown
COUNTS_MAX_AGE = 2.0


class Tasse:
    """The one seam the API and CLI call."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.layout = LogLayout(
            settings.logs_dir,
            settings.max_run_log_bytes,
            settings.max_task_log_bytes,
            settings.task_log_backups,
        )
        self.store = RunStore(
            settings.store_url,
            settings.store_schema_name,
            settings.store_table_name,
            Timeouts(settings.store_connect_timeout, settings.store_statement_timeout),
            node=(settings.node_name or node_name()) if settings.cluster else None,
            node_address=settings.http_listen_address,
        )
        self.records = RecordWriter(
            self.store,
            Journal(settings.journal_path, settings.journal_max_bytes),
            deadline=settings.store_statement_timeout,
        )
        self.registry = Registry()
        #: live events for pages and scripts (`GET /events`)
        self.events = EventHub(queued=settings.events_queue)
        #: Prometheus metrics (`GET /metrics`), told by the parts' hooks wired here
        self.metrics = Metrics(__version__)
        self.envs = Provisioner(
            settings, self.layout, self._env_changed, on_built=self.metrics.note_env_build
        )
        self.pauses = PausedTasks(self.store, self.records)
        self.notifier = Notifier(
            settings,
            self.store,
            self.records,
            self.layout,
            spec_of=self._notify_spec,
            retries_of=self._retries,
            env_problem=self.envs.problem,
            on_attempt=self.metrics.note_notification,
        )
        self.dispatcher = Dispatcher(
            settings,
            self.store,
            self.records,
            self.layout,
            self.envs,
            current_task=self._current_task,
            is_paused=self.pauses.is_paused,
            on_change=self._run_recorded,
            notices=self.notifier.notices_for,
        )
        #: this node's part in a cluster (docs/cluster.md); None for a server on its own
        self.cluster = self._cluster() if settings.cluster else None
        if self.cluster is None:
            self.scheduler = Scheduler(self._on_fire, settings.timezone, self.records.fire_times)
        else:  # a cluster resumes from its fire claims, not from one node's stored times
            self.scheduler = Scheduler(self.cluster.on_fire, settings.timezone)
        self.started_at: datetime | None = None
        self.reloader = Reloader(settings, self.rescan)
        self.catalog = Catalog(
            settings,
            self.store,
            self.registry,
            self.scheduler,
            self.envs,
            self.rescan,
            on_removed=self._defined_removed,
            on_defined=self._defined,
            until_idle=self.dispatcher.until_idle,
        )
        seeds = seed_files(settings)
        self.seeder = Seeder(self.catalog, seeds, settings.pre_seed_interval) if seeds else None
        self.retention = Retention(
            settings,
            self.store,
            self.layout,
            lambda run_id: self.dispatcher.active(run_id) is not None,
            lambda: self.registry.entries.keys(),
        )
        self.timeline = Timeline(self.store, self.records, self._read_deadline)
        #: the overview's strips of last outcomes, in memory once read
        self.outcomes = RecentOutcomes(self.timeline.recent_outcomes)
        self._counted: tuple[float, TaskCounts] | None = None
        self.lag = LoopLag()
        self._rescan_lock = asyncio.Lock()
        self._unwatch_children: Callable[[], None] = lambda: None
        self._next_fires_slots = asyncio.Semaphore(2)

    def _cluster(self) -> Cluster:
        return Cluster(
            self.store,
            self.records,
            deliver=self._on_fire,
            take_over=self._take_over,
            tasks=lambda: self.registry.entries.keys(),
            run_now=self.run_now,
            cancel=self.dispatcher.cancel,
        )

    def _take_over(self, last: Mapping[str, datetime], fresh: bool) -> None:
        # This node fires from now on: the fires since each task's last claim come due now.
        if fresh:
            self.dispatcher.resume(datetime.now(UTC))
        moved = self.scheduler.resume_after(last)
        logger.info("the schedule resumes from the last claimed fires (%d job(s) set back)", moved)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from an unclean stop, load every task, then start firing and watching."""
        # What the journal kept (the store was down when the last server stopped) first:
        # a run it holds as ended must not be taken for one left unfinished.
        await asyncio.to_thread(self.records.replay)
        self.records.start()
        # After the replay: a pause or resume the journal kept is in the store by now.
        await asyncio.to_thread(self.pauses.load)
        interrupted = await asyncio.to_thread(self.store.interrupt_unfinished, datetime.now(UTC))
        if interrupted:
            logger.warning(
                "%d run(s) were unfinished when the server last stopped: recorded as interrupted",
                len(interrupted),
            )
            # A server killed outright leaves its runs' processes behind: stop them.
            await asyncio.to_thread(stop_leftovers, interrupted)
            self.dispatcher.last_runs = await asyncio.to_thread(self.store.latest_by_task)
        await self._load_last_successes()
        self.settings.tasks_dir.mkdir(parents=True, exist_ok=True)
        # The first load creates hundreds of thousands of long-lived objects with
        # thousands of tasks; collecting while they are built only costs time, and
        # frozen afterwards they no longer make every full collection a long pause.
        gc.disable()
        try:
            # Defined tasks first: a folder whose name one of them has is then reported.
            if self.settings.pre_delete_jobs:
                removed = await asyncio.to_thread(self.store.delete_tasks, ("api", "seed"))
                logger.info("--pre-delete-jobs: %d API and seed task(s) removed", removed)
            self.scheduler.load_fire_times()
            await self.catalog.load()
            if self.seeder is not None:
                await self.seeder.start()
            report = await self.rescan()
        finally:
            gc.freeze()
            gc.enable()
        self._unwatch_children = watch_children_on_the_loop()
        # Before the first fire: a fire missed while the server was down is told.
        await self.notifier.start(self.dispatcher.last_runs, self._notify_specs())
        await self.envs.start()
        self.retention.start()
        # Fire times before now came due while the server was down (or loading): catch-up
        # applies to them, not the grace time.
        self.dispatcher.started_at = datetime.now(UTC)
        self.scheduler.start()
        if self.cluster is not None:
            self.cluster.start()
        self.reloader.start()
        self.lag.start()
        self.started_at = datetime.now(UTC)
        logger.info(
            "Tasse started: %d task(s) from folders, %d defined, %d error(s), data in %s",
            len(report.added),
            len(self.catalog.stored),
            len(report.errors),
            self.settings.data_dir,
        )

    async def _load_last_successes(self) -> None:
        # Once, at start: from then on every recorded success keeps them (`_run_recorded`),
        # so a scrape reads memory, not 100,000 runs (55 ms in SQLite) each time.
        try:
            found = await self.store.off_loop(self.store.last_successes, "reading last successes")
        except StoreUnavailableError as error:
            logger.warning("metrics: last successes unknown until tasks succeed again: %s", error)
            return
        self.metrics.note_last_successes(found)

    async def stop(self) -> None:
        """End live streams, stop firing and watching, stop live runs, and close the store."""
        self.events.close()
        if self.cluster is not None:  # the lease goes first: another node takes over at once
            await self.cluster.stop()
        await self.lag.stop()
        self.scheduler.shutdown()
        await self.reloader.stop()
        if self.seeder is not None:
            await self.seeder.stop()
        await self.dispatcher.shutdown()
        await self.envs.stop()
        self._unwatch_children()
        await self.retention.stop()
        await self.notifier.stop(self.settings.notify_timeout + 1)
        # Every outcome, fire time and notification is handed over by now; what the store
        # cannot take in time stays in the journal for the next start.
        await asyncio.to_thread(self.records.stop, self.settings.store_statement_timeout + 5)
        self.store.close()

    # -- discovery ---------------------------------------------------------------------------

    async def rescan(self, only: set[str] | None = None) -> RescanReport:
        """Scan the task folders (or only the named ones) and apply what changed."""
        async with self._rescan_lock:
            known = dict(self.registry.fingerprints)
            if only is None:
                # Folders in error are few: read them again, in case what they lacked (an
                # entrypoint deep inside) appeared without changing anything we stat.
                for name in self.registry.errors():
                    known.pop(name, None)
            scan, prepared, plans = await asyncio.to_thread(self._scan, known, only)
            errors = self.registry.errors()
            report = self.registry.apply(scan, prepared, only)
            if self.started_at is not None:  # what start loads is what GET /tasks lists
                self._publish_rescan(report, errors)
            for name in report.removed:
                self.scheduler.remove(name)
                self.envs.forget(name)
                self.dispatcher.forget(name)
            for name in report.added + report.changed:
                entry = self.registry.entries[name]
                assert entry.task is not None
                self.scheduler.schedule(entry.name, entry.triggers, entry.task.spec.enabled)
                self.envs.track(entry.task, plans[name])
            return report

    def _publish_rescan(self, report: RescanReport, errors: dict[str, str]) -> None:
        """Live events for what a rescan changed, and for errors that came, changed or went."""
        for name in report.added:
            self.events.task_added(name)
        for name in report.changed:
            self.events.task_changed(name, "definition")
        for name in report.removed:
            self.events.task_removed(name)
        told = {*report.added, *report.changed, *report.removed}
        for name in errors.keys() | report.errors.keys():
            entry = self.registry.entries.get(name)
            if name in told or entry is None or errors.get(name) == report.errors.get(name):
                continue  # told already, or not a task (a folder name refused, a seed problem)
            if entry.task is None and name not in errors:
                self.events.task_added(name)  # a new folder that does not load: a new row
            else:
                self.events.task_changed(name, "error", report.errors.get(name))

    def _defined(self, name: str, new: bool) -> None:
        if new:
            self.events.task_added(name)
        else:
            self.events.task_changed(name, "definition")

    def _defined_removed(self, name: str) -> None:
        self.dispatcher.forget(name)
        self.events.task_removed(name)

    def _env_changed(self, names: list[str]) -> None:
        if names:
            self.events.env_changed(names, self.envs.info(names[0]))
            self.notifier.env_failed(names)

    def _notify_spec(self, name: str) -> NotifySpec | None:
        entry = self.registry.entries.get(name)
        return entry.task.spec.notify if entry is not None and entry.task else None

    def _notify_specs(self) -> dict[str, NotifySpec]:
        return {
            name: entry.task.spec.notify
            for name, entry in self.registry.entries.items()
            if entry.task is not None and entry.task.spec.notify is not None
        }

    def _retries(self, name: str) -> int:
        entry = self.registry.entries.get(name)
        return entry.task.spec.retries if entry is not None and entry.task else 0

    async def notifications(
        self, task: str | None, status: str | None, before: datetime | None, limit: int
    ) -> list[Notice]:
        """Notifications newest first: sent, pending, held, given up."""
        return await self.notifier.page(task, status, before, limit)

    def notify_test(self, target: str | None) -> list[Notice]:
        """Queue a test message to a target (URL, tag or key; every server target by default)."""
        return self.notifier.send_test(target)

    def _scan(
        self, known: dict[str, discovery.Fingerprint], only: set[str] | None
    ) -> tuple[discovery.Scan, dict[str, Prepared], dict[str, Planned]]:
        # Runs on a worker thread: reading and validating thousands of files (and probing
        # interpreters, once) must not hold up the loop that fires schedules and answers.
        scan = discovery.scan(self.settings.tasks_dir, known, only)
        zone = self.settings.timezone
        prepared = {name: prepare(result, zone) for name, result in scan.loaded.items()}
        plans = {
            name: self.envs.plan(result[0])
            for name, result in prepared.items()
            if not isinstance(result, TaskConfigError)
        }
        return scan, prepared, plans

    # -- tasks -------------------------------------------------------------------------------

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

    # -- runs --------------------------------------------------------------------------------

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

    async def scrape_metrics(self) -> bytes:
        """The text of `GET /metrics`: state read now on the loop, rendered on a thread."""
        live = self.dispatcher.live_statuses()
        state = ServerState(
            tasks=frozenset(self.registry.entries),
            broken=len(self.registry.errors().keys() | self.envs.failed()),
            running=live[RunStatus.running],
            queued=live[RunStatus.queued],
            pending_records=self.records.pending_count,
            journaled_records=self.records.journaled,
            next_fires=self.scheduler.next_run_times(),
        )
        # Rendering 10,000 tasks' lines takes milliseconds the loop has better use for.
        return await asyncio.to_thread(self.metrics.take(state).render)

    def health(self) -> dict[str, object]:
        """Liveness and readiness in one answer, from memory: it never waits on the store."""
        state = self.records.state
        pending = self.records.pending_count
        lag = self.lag.worst
        problems = []
        if not state.writable:
            problems.append(
                f"the job store {self.store.shown_address} cannot be written ({state.problem});"
                f" {pending} record(s) wait in the journal"
            )
        if lag > self.settings.health_max_lag:
            problems.append(f"the event loop lags {lag:.2f} s behind")
        answer: dict[str, object] = {
            "status": "degraded" if problems else "ok",
            "tasks": len(self.registry.entries),
            "errors": len(self.registry.errors().keys() | self.envs.failed()),
            "started_at": self.started_at,
            "store": {
                "address": self.store.shown_address,
                "writable": state.writable,
                "problem": state.problem,
                "failing_since": state.failing_since,
                "last_write_at": state.last_write_at,
            },
            "pending_records": pending,
            "journaled_records": self.records.journaled,
            "loop_lag": round(lag, 4),
        }
        if problems:
            answer["detail"] = "; ".join(problems)
        return answer
