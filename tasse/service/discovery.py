"""Reading the task folders into the registry, the scheduler and the environments."""

from __future__ import annotations

import asyncio

from tasse.envs.provisioner import Planned
from tasse.errors import (
    TaskConfigError,
)
from tasse.service.parts import Parts
from tasse.tasks import discovery
from tasse.tasks.registry import Prepared, RescanReport
from tasse.tasks.triggers import prepare


class Discovery(Parts):
    """Scans the task folders and applies what changed."""

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
