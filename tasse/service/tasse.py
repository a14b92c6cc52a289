"""`Tasse`: builds every part from `Settings`, wires their callbacks, starts and stops them."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from tasse import __version__
from tasse.cluster.log_tails import LogTails
from tasse.cluster.node import Cluster
from tasse.cluster.remote import RemoteRuns
from tasse.cluster.shared_state import SharedState
from tasse.envs.provisioner import Provisioner
from tasse.errors import (
    StoreUnavailableError,
)
from tasse.events import EventHub
from tasse.metrics.metrics import Metrics
from tasse.models import (
    Run,
    TaskCounts,
)
from tasse.notify.notifier import Notifier
from tasse.runs.dispatcher import Dispatcher
from tasse.runs.outcomes import RecentOutcomes
from tasse.runs.pauses import PausedTasks
from tasse.runs.runner import stop_leftovers, watch_children_on_the_loop
from tasse.schedule.lag import LoopLag
from tasse.schedule.scheduler import Scheduler
from tasse.service.discovery import Discovery
from tasse.service.run_answers import RunAnswers
from tasse.service.server_answers import ServerAnswers
from tasse.settings import Settings
from tasse.store.nodes import node_name
from tasse.store.opening import log_layout, open_store, record_writer
from tasse.store.retention import Retention
from tasse.store.run_jobs import RunJobs
from tasse.store.timeline import Timeline
from tasse.tasks.catalog import Catalog
from tasse.tasks.notify_spec import NotifySpec
from tasse.tasks.registry import Registry
from tasse.tasks.reloader import Reloader
from tasse.tasks.seeds import Seeder, seed_files

logger = logging.getLogger(__name__)


class Tasse(Discovery, RunAnswers, ServerAnswers):
    """The one seam the API and CLI call."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.layout = log_layout(settings)
        node = (settings.node_name or node_name()) if settings.cluster else None
        self.store = open_store(settings, node, reachable(settings.http_listen_address))
        self.records = record_writer(self.store, settings)
        self.registry = Registry()
        #: live events for pages and scripts (`GET /events`)
        self.events = EventHub(queued=settings.events_queue)
        #: Prometheus metrics (`GET /metrics`), told by the parts' hooks wired here
        self.metrics = Metrics(__version__)
        self.envs = Provisioner(
            settings, self.layout, self._env_changed, on_built=self.metrics.note_env_build
        )
        self.pauses = PausedTasks(self.store, self.records)
        #: a cluster's runs on workers, followed from here (None: runs run on this node)
        self.remote = self._remote() if settings.run_on == "workers" else None
        #: reads the end of a run's log kept by another node or worker (a cluster's)
        self.log_tails = LogTails(self.store) if settings.cluster else None
        self.notifier = Notifier(
            settings,
            self.store,
            self.records,
            self.layout,
            spec_of=self._notify_spec,
            retries_of=self._retries,
            env_problem=self.envs.problem,
            on_attempt=self.metrics.note_notification,
            may_deliver=self._leads,
            # In a cluster a run's log may be on the worker (or node) that ran it.
            tail_elsewhere=self.log_tails,
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
            elsewhere=self.remote,
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
        #: what other nodes of the cluster define, delete and pause, taken in here
        self.shared = (
            SharedState(self.store, self.catalog, self.pauses) if settings.cluster else None
        )
        self.retention = Retention(
            settings,
            self.store,
            self.layout,
            lambda run_id: self.dispatcher.active(run_id) is not None,
            lambda: self.registry.entries.keys(),
            prunes_store=self._leads if settings.cluster else None,
        )
        self.timeline = Timeline(self.store, self.records, self._read_deadline)
        #: the overview's strips of last outcomes, in memory once read
        self.outcomes = RecentOutcomes(self.timeline.recent_outcomes)
        self._counted: tuple[float, TaskCounts] | None = None
        self.lag = LoopLag()
        self._rescan_lock = asyncio.Lock()
        self._unwatch_children: Callable[[], None] = lambda: None
        self._next_fires_slots = asyncio.Semaphore(2)
        self._adopting: asyncio.Task[None] | None = None

    def _cluster(self) -> Cluster:
        return Cluster(
            self.store,
            self.records,
            deliver=self._on_fire,
            take_over=self._take_over,
            tasks=lambda: self.registry.entries.keys(),
            run_now=self.run_now,
            cancel=self.dispatcher.cancel,
            duties=self._scheduler_duties,
            workers=self.remote is not None,
            lost=self._lost_lease,
        )

    def _remote(self) -> RemoteRuns:
        def cancel_on(node: str, run_id: str, wait: float) -> Awaitable[Run]:
            assert self.cluster is not None, "runs go to workers only in a cluster"
            return self.cluster.desk.cancel_on(node, run_id, wait)

        return RemoteRuns(
            RunJobs(self.store),
            self.records,
            cancel_on,
            self._run_recorded,
            self.settings.tasks_dir,
            self._lease_token,
        )

    def _lease_token(self) -> tuple[str, int | None]:
        assert self.cluster is not None, "runs go to workers only in a cluster"
        return self.cluster.name, self.cluster.lease.token

    def _lost_lease(self) -> None:
        # The runs this node followed on workers are the new scheduler's now: it follows,
        # records and retries them (two nodes retrying one run would run it twice).
        if self.remote is not None:
            self.remote.let_go()
            if let_go := self.dispatcher.let_go():
                logger.warning("%d run(s) on workers left to the new scheduler", let_go)

    def _leads(self) -> bool:
        # What runs once per cluster (notifications, the dead-man switches, pruning the
        # history) runs on the scheduler node; a server on its own always leads.
        cluster = getattr(self, "cluster", None)
        return cluster is None or cluster.is_scheduler

    async def _scheduler_duties(self, gained: bool) -> None:
        if gained:
            found = await self.notifier.take_over(self._notify_specs())
            logger.info("notifications: this node delivers now (%d pending taken over)", found)
        elif found := await self.notifier.adopt():
            logger.info("notifications: %d pending from other nodes taken over", found)

    def _take_over(self, last: Mapping[str, datetime], fresh: bool) -> None:
        # This node fires from now on: the fires since each task's last claim come due now.
        if fresh:
            self.dispatcher.resume(datetime.now(UTC))
            if self.remote is not None:  # the runs on workers are this node's to follow now
                self._adopting = asyncio.get_running_loop().create_task(self._adopt_runs())
        moved = self.scheduler.resume_after(last)
        logger.info("the schedule resumes from the last claimed fires (%d job(s) set back)", moved)

    async def _adopt_runs(self) -> None:
        assert self.remote is not None
        remote = self.remote
        try:
            found = await self.store.off_loop(remote.jobs.unfinished, "reading runs on workers")
        except StoreUnavailableError as error:  # they are followed when they end, or not
            logger.error("the runs on workers could not be taken over: %s", error)
            return
        adopted = sum(
            self.dispatcher.adopt(run, functools.partial(remote.adopted, node=node), request)
            for run, node, request in found
        )
        if adopted:
            logger.info("%d run(s) on workers taken over from the last scheduler", adopted)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from an unclean stop, load every task, then start firing and watching."""
        # What the journal kept (the store was down when the last server stopped) first:
        # a run it holds as ended must not be taken for one left unfinished.
        await asyncio.to_thread(self.records.replay)
        self.records.start()
        if self.shared is not None:  # what other nodes change from here on is taken in
            await self.shared.mark()
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
        if self.remote is not None:
            # procrastinate is imported only where runs go to workers (a third of a second).
            from tasse.cluster.queue import queue_schema

            if await asyncio.to_thread(self.remote.jobs.apply_schema, queue_schema()):
                logger.info("the run queue's tables were created (procrastinate)")
            self.remote.start()
        if self.cluster is not None:
            self.cluster.start()
        if self.shared is not None:
            self.shared.start()
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
        if self.shared is not None:
            await self.shared.stop()
        await self.lag.stop()
        self.scheduler.shutdown()
        await self.reloader.stop()
        if self.seeder is not None:
            await self.seeder.stop()
        await self.dispatcher.shutdown()
        if self.remote is not None:  # its runs go on on their workers: the next scheduler's
            await self.remote.stop()
        await self.envs.stop()
        self._unwatch_children()
        await self.retention.stop()
        await self.notifier.stop(self.settings.notify_timeout + 1)
        # Every outcome, fire time and notification is handed over by now; what the store
        # cannot take in time stays in the journal for the next start.
        await asyncio.to_thread(self.records.stop, self.settings.store_statement_timeout + 5)
        self.store.close()

    # -- what the parts tell each other ---------------------------------------------------

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


def reachable(listen: str) -> str:
    """Where other nodes reach this one's API: the listen address, with the host name for a
    wildcard (0.0.0.0, ::), which names no host another machine can connect to."""
    host, _, port = listen.rpartition(":")
    if host.strip("[]") in ("", "0.0.0.0", "::"):
        return f"{node_name()}:{port}"
    return listen
