"""The CLI's answers from the data folder, when no server answers: the store and the log files.

Read only: a missing SQLite file is no history (not a new, empty store), and nothing is
replayed from the journal — that is a starting server's work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from tasse.cli.folder_tasks import task_entries, task_infos
from tasse.cli.sources import Ended, LogPiece, Skipped
from tasse.cli.tailing import FileTail
from tasse.errors import RunNotFoundError, TaskNotFoundError
from tasse.models import Run, RunStatus, TaskInfo, TaskSource
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.pauses import PauseTable
from tasse.store.runs import RunStore
from tasse.store.tables import StoredTask

#: seconds between looks at a followed run's log and record
POLL = 0.2


class FolderSource:
    """Tasks, runs and logs as the data folder has them; `served`: a server holds it."""

    def __init__(self, settings: Settings, served: bool):
        self.settings = settings
        self.served = served
        # A server that holds the folder without answering has been named already.
        self.note = (
            None
            if served
            else (f"no server runs on {settings.data_dir.absolute()}: read from its store and logs")
        )
        self._layout = LogLayout(settings.logs_dir)
        self._store: RunStore | None = None

    def tasks(self) -> list[TaskInfo]:
        """Every task folder and stored definition, with its last run."""
        store = self._open()
        stored = store.tasks() if store else []
        sources: dict[str, TaskSource] = {
            item.name: "seed" if item.source == "seed" else "api" for item in stored
        }
        entries = task_entries(self.settings, stored)
        last_runs = store.latest_by_task() if store else {}
        pauses = PauseTable(store).load() if store else {}
        return task_infos(self.settings, entries, sources, last_runs, pauses)

    def runs(self, task: str, status: RunStatus | None, limit: int) -> list[Run]:
        """The task's runs, newest first, from the store."""
        store = self._open()
        runs = store.for_task(task, limit, status.value if status else None) if store else []
        if not runs and not self._known(task, store):
            raise TaskNotFoundError(task, f"no folder {str(self.settings.tasks_dir / task)!r}")
        return runs

    def run(self, run_id: str) -> Run:
        """One run, from the store."""
        store = self._open()
        found = store.get(run_id) if store else None
        if found is None:
            raise RunNotFoundError(run_id)
        return found

    def log(self, run: Run) -> bytes:
        """The run's log file (b"" for a fire that did not run)."""
        try:
            return self._log_path(run).read_bytes()
        except FileNotFoundError:
            return b""

    def follow(self, run: Run) -> Iterator[LogPiece]:
        """The log file as it grows, until the store records the run's end."""
        tail = FileTail(self._log_path(run))
        while True:
            if text := tail.read():
                yield text
                continue
            if run.status.is_final:
                yield tail.read_all()  # what was written before the end was recorded
                yield Ended(run)
                return
            if not self.served:
                yield Skipped(
                    f"[run {run.id} is recorded {run.status.value}, but no server holds"
                    f" {self.settings.data_dir.absolute()}: its next start records it interrupted]"
                )
                yield Ended(run)
                return
            time.sleep(POLL)
            run = self.run(run.id)

    def close(self) -> None:
        """Release the store's connections."""
        if self._store is not None:
            self._store.close()

    def _open(self) -> RunStore | None:
        if self._store is None and self._has_store():
            settings = self.settings
            self._store = RunStore(
                settings.store_url, settings.store_schema_name, settings.store_table_name
            )
        return self._store

    def _has_store(self) -> bool:
        url = self.settings.store_url
        if url.startswith("memory:"):
            return False  # nothing was kept
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///")).is_file()
        return True

    def _known(self, task: str, store: RunStore | None) -> bool:
        if (self.settings.tasks_dir / task).is_dir():
            return True
        stored: StoredTask | None = store.get_task(task) if store else None
        return stored is not None

    def _log_path(self, run: Run) -> Path:
        return self._layout.run_log(run.task, run.id)
