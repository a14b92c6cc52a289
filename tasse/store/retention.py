"""Retention: run history and run logs are kept for so many days and so many runs per task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasse.models import run_id_prefix
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.runs import PRUNE_BATCH, RunStore
from tasse.values import TASK_NAME_PATTERN

logger = logging.getLogger(__name__)

#: seconds `stop()` waits for a pass to reach its next batch before leaving it behind
STOP_WAIT = 5.0
#: in a cluster, how old a run log with no row must be before it counts as an orphan when
#: no age limit is set (another node pruned its run: the log was this node's to delete)
ORPHAN_AGE = timedelta(days=1)
_LOG_SUFFIX = ".log"


@dataclass
class PruneReport:
    """What one retention pass removed."""

    runs_deleted: int = 0
    files_deleted: int = 0
    bytes_freed: int = 0


class Retention:
    """Prunes every task's history and run logs at start, then every `retention_interval`."""

    def __init__(
        self,
        settings: Settings,
        store: RunStore,
        layout: LogLayout,
        is_live: Callable[[str], bool],
        known_tasks: Callable[[], Collection[str]],
        prunes_store: Callable[[], bool] | None = None,
    ):
        self._settings = settings
        self._store = store
        self._layout = layout
        #: whether a run id is a live run's (its log is being written: never removed)
        self._is_live = is_live
        #: names of the tasks that exist now (read on the event loop, where they change)
        self._known_tasks = known_tasks
        #: in a cluster, whether this node prunes the shared history now (the scheduler
        #: node only); every node still sweeps its own folder's orphaned logs. None: the
        #: server is on its own, and does both.
        self._prunes_store = prunes_store
        self._stopping = False
        self._wake = asyncio.Event()
        self._background: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """False when both limits are off (0): then no pass ever runs."""
        return bool(self._settings.keep_runs_days or self._settings.keep_runs)

    def start(self) -> None:
        """Run a pass now and then one every interval, in the background; returns at once."""
        if self.enabled:
            self._background = asyncio.get_running_loop().create_task(self._run_periodically())

    async def stop(self) -> None:
        """Stop passing; a pass under way ends at its next batch."""
        self._stopping = True
        self._wake.set()
        if self._background is None:
            return
        # The pass runs on a worker thread, which cannot be cancelled: wait for it a
        # little, so the store is not closed under it, but never hold up a shutdown.
        done, _ = await asyncio.wait({self._background}, timeout=STOP_WAIT)
        if not done:
            self._background.cancel()

    async def _run_periodically(self) -> None:
        while not self._stopping:
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.retention_interval)

    async def run_once(self) -> PruneReport | None:
        """One pass on a worker thread; a failure is logged, and the next pass tries again."""
        known = set(self._known_tasks())
        try:
            return await asyncio.to_thread(self.prune, known, datetime.now(UTC))
        except Exception:
            logger.exception(
                "retention pass failed; the next one is in %g s", self._settings.retention_interval
            )
            return None

    def prune(self, known: Collection[str], now: datetime) -> PruneReport:
        """Remove the runs beyond the limits and their logs, then old orphaned run logs."""
        days = self._settings.keep_runs_days
        older_than = now - timedelta(days=days) if days else None
        keep = self._settings.keep_runs or None
        report = PruneReport()
        in_cluster = self._prunes_store is not None
        if self._prunes_store is None or self._prunes_store():
            # Tasks since deleted are in the history too, and pruned like the others.
            for task in self._store.tasks_with_runs():
                if self._stopping:
                    break
                self._prune_task(task, older_than, keep, task in known, report)
        if in_cluster:  # the logs of runs another node pruned are this node's to delete
            older_than = min(older_than or now, now - ORPHAN_AGE)
        if older_than is not None and not self._stopping:
            self._remove_orphans(older_than, report)
        if report.runs_deleted or report.files_deleted:
            logger.info(
                "retention: %d run(s) removed from the history, %d run log(s) (%d bytes) deleted",
                report.runs_deleted,
                report.files_deleted,
                report.bytes_freed,
            )
        return report

    def _prune_task(
        self,
        task: str,
        older_than: datetime | None,
        keep: int | None,
        exists: bool,
        report: PruneReport,
    ) -> None:
        # An existing task keeps its newest run whatever its age: a monthly task would
        # otherwise show no last run in the days before its next one.
        while not self._stopping:
            ids = self._store.prune_runs(task, older_than, keep, spare_newest=exists)
            report.runs_deleted += len(ids)
            if re.fullmatch(TASK_NAME_PATTERN, task):  # a name from the store becomes a path
                for run_id in ids:
                    self._delete_log(task, run_id, report)
            if len(ids) < PRUNE_BATCH:
                return

    def _delete_log(self, task: str, run_id: str, report: PruneReport) -> None:
        if self._is_live(run_id):
            return  # recorded as ended a moment before its log closes: an orphan later
        try:
            path = self._layout.run_log(task, run_id)
        except ValueError:  # an id no run log can have
            return
        self._delete(path, report)

    def _remove_orphans(self, older_than: datetime, report: PruneReport) -> None:
        # Logs whose run has no row (a memory:// store, a history pruned by an older
        # setting): the file name is the run id, which starts with its creation time.
        oldest_kept = run_id_prefix(older_than)
        cutoff = older_than.timestamp()
        for runs_dir in self._layout.logs_dir.glob("*/runs"):
            with contextlib.suppress(FileNotFoundError), os.scandir(runs_dir) as entries:
                for entry in entries:
                    if self._stopping:
                        return
                    run_id = entry.name.removesuffix(_LOG_SUFFIX)
                    if entry.name.endswith(_LOG_SUFFIX) and run_id < oldest_kept:
                        self._delete_orphan(Path(entry.path), run_id, cutoff, report)

    def _delete_orphan(self, path: Path, run_id: str, cutoff: float, report: PruneReport) -> None:
        try:
            written_lately = path.stat().st_mtime >= cutoff
        except FileNotFoundError:
            return
        # A live run's log may be quiet for a month; its row is there until it ends.
        if written_lately or self._is_live(run_id) or self._store.get(run_id) is not None:
            return
        self._delete(path, report)

    def _delete(self, path: Path, report: PruneReport) -> None:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # a skipped or missed run has no log
            return
        except OSError as error:
            logger.warning("retention: run log %s could not be deleted: %s", path, error)
            return
        report.files_deleted += 1
        report.bytes_freed += size
