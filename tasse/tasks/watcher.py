"""The only module that imports watchdog: file events in the tasks folder → task names to rescan."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from tasse.tasks.discovery import TASK_FILE, WATCHED_FILES

logger = logging.getLogger(__name__)

#: files whose edit in place (a write, no rename) changes what the task is or holds
_DEFINING_FILES = frozenset((TASK_FILE, *WATCHED_FILES))

# watchdog warns when a folder created while its recursive watch is being set up is
# already watched; it simply keeps one watch, so there is nothing for a user to do.
warnings.filterwarnings("ignore", "Callback with id", RuntimeWarning, "watchdog")

#: event types that change what a folder holds (and so its mtime)
_STRUCTURAL = {"created", "deleted", "moved"}
#: What the kernel is asked to report. Not opens, reads or each write: Tasse's own scans
#: read every task.yaml, and running tasks write into their folders; those events would
#: flood the queue. A finished write (close) is enough to see an edited task.yaml.
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileClosedEvent,
]


def affected_task(tasks_dir: Path, path: str, event_type: str) -> str | None:
    """The task folder an event concerns, or None when it cannot change any task."""
    try:
        parts = Path(path).relative_to(tasks_dir).parts
    except ValueError:
        return None
    if not parts or parts[0].startswith("."):
        return None
    if len(parts) == 1:
        return parts[0]  # the folder itself appeared, vanished or was renamed
    if len(parts) == 2 and (event_type in _STRUCTURAL or parts[1] in _DEFINING_FILES):
        return parts[0] if parts[1] != "__pycache__" else None
    return None  # deeper files (a task's own data or .venv) do not define the task


class _Forwarder(FileSystemEventHandler):
    def __init__(self, tasks_dir: Path, on_change: Callable[[str], object]):
        self._tasks_dir = tasks_dir
        self._on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                name = affected_task(self._tasks_dir, str(path), event.event_type)
                if name is not None:
                    self._on_change(name)


class TasksWatcher:
    """Reports the names of task folders that changed, from watchdog's thread.

    `on_change` is called on watchdog's thread; the caller hands it over to its loop.
    """

    def __init__(self, tasks_dir: Path, on_change: Callable[[str], object]):
        self._tasks_dir = tasks_dir.resolve()
        self._starting = threading.Lock()
        self._stopped = False
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(
            _Forwarder(self._tasks_dir, on_change),
            str(self._tasks_dir),
            recursive=True,
            event_filter=_EVENTS,
        )

    def start(self) -> None:
        """Begin watching (watchdog adds its watches on its own thread)."""
        # A stop can come while a start (thousands of watches) is still on its way.
        with self._starting:
            if self._stopped:
                return
            self._observer.start()
        logger.debug("watching %s", self._tasks_dir)

    def stop(self) -> None:
        """Stop watching and wait for watchdog's thread to end (or keep it from starting)."""
        with self._starting:
            self._stopped = True
            if not self._observer.is_alive():
                return
            self._observer.stop()
        self._observer.join(timeout=5)
