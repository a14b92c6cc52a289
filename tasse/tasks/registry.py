"""The tasks known from folders: last good version, current error, and what a rescan changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from tasse.errors import TaskBrokenError, TaskConfigError, TaskNameError
from tasse.tasks.definitions import resolve
from tasse.tasks.discovery import Fingerprint, Scan
from tasse.tasks.task import Task

logger = logging.getLogger(__name__)


@dataclass
class TaskEntry:
    """One task folder as Tasse currently knows it."""

    name: str
    #: the last version that loaded without error; kept running while the folder is broken
    task: Task | None
    #: its APScheduler triggers, opaque outside scheduler.py
    triggers: tuple[Any, ...] = ()
    error: TaskConfigError | None = None


#: a successfully loaded task and its triggers, or the reason it could not be loaded
Prepared = tuple[Task, tuple[Any, ...]] | TaskConfigError


class RescanReport(BaseModel):
    """What one rescan changed, and every error that stands after it."""

    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []
    errors: dict[str, str] = {}


@dataclass
class Registry:
    """Applies scans to the set of known tasks and says what must be (un)scheduled."""

    entries: dict[str, TaskEntry] = field(default_factory=dict)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    #: what the seed file's last reading found wrong, by item
    seed_problems: dict[str, str] = field(default_factory=dict)

    def resolve(self, task: Task) -> Task:
        """The task as it runs now: a `task:` reference runs its target's current code."""
        if task.reference is None:
            return task
        target = self.entries.get(task.reference)
        if target is None or target.task is None:
            state = "does not exist" if target is None else "is broken"
            raise TaskBrokenError(task.name, f"it runs task {task.reference!r}, which {state}")
        if target.task.reference is not None:
            raise TaskBrokenError(
                task.name, f"it runs task {task.reference!r}, which only refers to another"
            )
        return resolve(task, target.task)

    def apply(
        self, scan: Scan, prepared: dict[str, Prepared], only: set[str] | None = None
    ) -> RescanReport:
        """Take in a scan (with each loaded folder prepared); report what changed."""
        report = RescanReport()
        shadowed = []
        for name, result in prepared.items():
            if self._defined_elsewhere(name):
                shadowed.append(name)
            elif isinstance(result, TaskConfigError):
                self._set_error(name, result)
            else:
                self._set_task(name, *result, report)
        for name in sorted(scan.removed):
            self.fingerprints.pop(name, None)
            if self._defined_elsewhere(name):
                continue
            self.entries.pop(name, None)
            report.removed.append(name)
            logger.info("task %s removed", name)
        self.fingerprints.update(scan.fingerprints)
        for name in shadowed:  # read again at every scan, so its error stays until resolved
            self.fingerprints.pop(name, None)
        self._note_rejected(scan.rejected, only, shadowed)
        _log_changes(report)
        report.errors = self.errors()
        return report

    def define(self, task: Task, triggers: tuple[Any, ...]) -> None:
        """Add or replace a task defined through the API or a seed file."""
        self.entries[task.name] = TaskEntry(task.name, task, triggers)
        self.rejected.pop(task.name, None)

    def define_error(self, name: str, error: TaskConfigError) -> None:
        """A defined task whose definition cannot be loaded (it shows, with its error)."""
        self.entries[name] = TaskEntry(name, None, (), error)

    def undefine(self, name: str) -> None:
        """Forget a defined task (a folder of that name is loaded at the next rescan)."""
        self.entries.pop(name, None)
        self.fingerprints.pop(name, None)

    def _defined_elsewhere(self, name: str) -> bool:
        entry = self.entries.get(name)
        return entry is not None and entry.task is not None and entry.task.source != "folder"

    def errors(self) -> dict[str, str]:
        """Every current error, by task (or folder) name."""
        errors = {n: str(e.error) for n, e in self.entries.items() if e.error is not None}
        return {**errors, **self.rejected, **self.seed_problems}

    def _set_task(
        self, name: str, task: Task, triggers: tuple[Any, ...], report: RescanReport
    ) -> None:
        old = self.entries.get(name)
        self.entries[name] = TaskEntry(name, task, triggers)
        if old is None:
            report.added.append(name)
        elif old.task != task or old.error is not None:
            report.changed.append(name)

    def _set_error(self, name: str, error: TaskConfigError) -> None:
        old = self.entries.get(name)
        if old is not None and old.error is not None and str(old.error) == str(error):
            return
        logger.error("%s%s", error, "; its last good version stays scheduled" if old else "")
        self.entries[name] = TaskEntry(
            name, old.task if old else None, old.triggers if old else (), error
        )

    def _note_rejected(self, names: list[str], only: set[str] | None, shadowed: list[str]) -> None:
        # A targeted scan speaks only for the folders it visited.
        kept = {} if only is None else {n: e for n, e in self.rejected.items() if n not in only}
        current = {name: f"folder {TaskNameError(name)}" for name in names}
        for name in shadowed:
            source = self.entries[name].task.source  # type: ignore[union-attr]
            current[f"{name} (folder)"] = (
                f"folder {name!r} is not loaded: a task of that name is defined by the {source} "
                "(delete that one, or rename the folder)"
            )
        for name in current.keys() - self.rejected.keys():
            logger.warning("%s", current[name])
        self.rejected = {**kept, **current}


def _log_changes(report: RescanReport) -> None:
    # One line per task for everyday edits; one line in all for a first load of thousands.
    for kind, names in (("added", report.added), ("changed", report.changed)):
        if len(names) > 20:
            logger.info("%d tasks %s", len(names), kind)
        else:
            for name in names:
                logger.info("task %s %s", name, kind)
