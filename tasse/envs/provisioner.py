"""Builds task environments ahead of their runs: in the background, a few at a time.

A task's environment is planned when the task is loaded (or its files change) and built
right away, so a run normally finds it ready. A run that arrives during the build waits
for it; after a failed build runs fail without running the task's code.

Builds begin only once `start` has cleared what a crash left behind: the installers of a
server killed outright, still running, and their half-built directories. Tasks loaded
before (the first scan) have their builds started then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tasse.envs.environments import EnvCache, Environment
from tasse.envs.interpreters import NoInterpreterError
from tasse.envs.plans import EnvNeeds, EnvPlan, pick_installer, plan
from tasse.errors import TaskEnvError
from tasse.models import EnvInfo, EnvStatus
from tasse.settings import Settings
from tasse.store.log_files import LogLayout

logger = logging.getLogger(__name__)

#: seconds between garbage collections of unused environments
GC_INTERVAL = 3600.0
#: an unlinked build is removed only after this long (a run may still use a replaced one)
LEFTOVER_AGE = 3600.0


@dataclass(frozen=True)
class Pending:
    """The environment is being built; `Provisioner.wait` waits for it."""

    hash: str


#: what a task's environment is planned as: nothing, a plan, or why there can be none
Planned = EnvPlan | str | None


@dataclass(frozen=True)
class _Tracked:
    task: EnvNeeds
    planned: Planned


class Provisioner:
    """Plans, builds (ahead of time) and hands out the environments of the known tasks."""

    def __init__(
        self,
        settings: Settings,
        layout: LogLayout,
        on_change: Callable[[list[str]], None] = lambda names: None,
        on_built: Callable[[float, bool], None] = lambda seconds, ok: None,
    ):
        #: told, with the names of the tasks it serves, when a build begins or ends
        self._on_change = on_change
        #: told how many seconds each build took and whether it succeeded (for metrics)
        self._on_built = on_built
        self.cache = EnvCache(settings.venvs_dir, settings.find_links, settings.env_build_timeout)
        self._settings = settings
        self._layout = layout
        self._installer = pick_installer(settings.installer)
        self._pool = ThreadPoolExecutor(settings.env_builds, thread_name_prefix="tasse-env")
        self._tracked: dict[str, _Tracked] = {}
        self._ready: dict[str, Environment] = {}
        self._building: dict[str, asyncio.Future[Environment]] = {}
        self._failed: dict[str, str] = {}
        self._collector: asyncio.Task[None] | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Clear what a crash left behind, build what the tasks need, collect hourly."""
        await asyncio.to_thread(self._recover)
        self._started = True
        for tracked in list(self._tracked.values()):
            if isinstance(tracked.planned, EnvPlan):
                self._ensure(tracked.planned)
        self._collector = asyncio.get_running_loop().create_task(self._collect_periodically())

    def _recover(self) -> None:
        # Orphaned installers first: alive, they would keep writing into the directory
        # being removed, and into the log of the build that replaces theirs. Then every
        # unlinked build: no build of ours has begun, so none of them is in progress.
        self.cache.stop_orphans()
        self.cache.collect_garbage(self._needed(), self._max_age(), leftovers_age=0)

    async def stop(self) -> None:
        """Kill running installers; their builds fail and nothing half-built is used."""
        if self._collector is not None:
            self._collector.cancel()
        self.cache.stop()
        # The build threads end as soon as their installer is gone; wait for them so
        # their results land while the loop still runs.
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)

    # -- tasks -----------------------------------------------------------------------------

    def plan(self, task: EnvNeeds) -> Planned:
        """The task's environment plan (interpreters are probed once: call off the loop)."""
        if task.dependencies is None:
            return None
        try:
            return plan(task, task.dependencies, self._installer)
        except NoInterpreterError as error:
            return str(error)

    def track(self, task: EnvNeeds, planned: Planned) -> None:
        """Take in a new or changed task and build its environment if it lacks one."""
        before = self._tracked.get(task.name)
        self._tracked[task.name] = _Tracked(task, planned)
        if isinstance(planned, str) and (before is None or before.planned != planned):
            logger.error("%s", TaskEnvError(task.name, f"has no interpreter: {planned}"))
        if isinstance(planned, EnvPlan):
            # A changed task gets another try: the fix may be outside the file (an index).
            self._failed.pop(planned.hash, None)
            self._ensure(planned)

    def forget(self, name: str) -> None:
        """The task is gone; its environment stays until garbage collection."""
        self._tracked.pop(name, None)

    def rebuild(self, name: str) -> EnvInfo:
        """Build the task's environment again from scratch, replacing the current one."""
        planned = self._planned(name)
        if isinstance(planned, EnvPlan) and planned.hash not in self._building:
            self._failed.pop(planned.hash, None)
            self._ensure(planned, force=True)
        return self.info(name)

    def problem(self, name: str) -> str | None:
        """Why the task's environment cannot be had (no interpreter, a failed build), if so."""
        planned = self._planned(name)
        if isinstance(planned, str):
            return str(TaskEnvError(name, f"has no interpreter: {planned}"))
        if isinstance(planned, EnvPlan) and planned.hash in self._failed:
            log = self._layout.env_log(name)
            failure = self._failed[planned.hash]
            return str(TaskEnvError(name, f"failed to build (all its output: {log}): {failure}"))
        return None

    def failed(self) -> set[str]:
        """The tasks whose environment cannot be had: no interpreter fits, or its build failed."""
        return {
            name
            for name, tracked in self._tracked.items()
            if isinstance(tracked.planned, str)
            or (isinstance(tracked.planned, EnvPlan) and tracked.planned.hash in self._failed)
        }

    def info(self, name: str) -> EnvInfo:
        """The task's environment status for the API and CLI."""
        planned = self._planned(name)
        if planned is None:
            return EnvInfo()
        if isinstance(planned, str):
            return EnvInfo(status=EnvStatus.failed, error=planned)
        deps = planned.dependencies
        info = EnvInfo(
            hash=planned.hash,
            python=str(planned.interpreter),
            source=deps.source or None,
            requirements=list(deps.requirements),
            note=deps.note,
        )
        ready = self._ready.get(planned.hash)
        if planned.hash in self._building:
            info.status = EnvStatus.building
        elif planned.hash in self._failed:
            info.status, info.error = EnvStatus.failed, self._failed[planned.hash]
        elif ready is not None:
            info.status, info.path, info.built_at = EnvStatus.ready, str(ready.path), ready.built_at
        else:
            info.status = EnvStatus.building  # planned, its build not begun yet
        return info

    # -- runs ------------------------------------------------------------------------------

    def environment(self, task: EnvNeeds) -> Environment | Pending | None:
        """The task's ready environment, Pending while it builds, None if it needs none.

        Raises TaskEnvError when it cannot be had.
        """
        planned = self._planned(task.name, task)
        if planned is None:
            return None
        if isinstance(planned, str):
            raise TaskEnvError(task.name, f"has no interpreter: {planned}")
        ready = self._ready.get(planned.hash)
        if ready is not None and os.path.exists(ready.python):
            self.cache.touch(planned.hash)
            return ready
        failure = self._failed.get(planned.hash)
        if failure is not None:
            raise TaskEnvError(task.name, self._failure_text(task.name, failure))
        self._ready.pop(planned.hash, None)  # deleted behind our back: build it again
        self._ensure(planned)
        return Pending(planned.hash)

    async def wait(self, task: EnvNeeds) -> Environment | None:
        """The task's environment, waiting for its build if needed."""
        for _ in range(3):  # a build, and once more if it was replaced meanwhile
            found = self.environment(task)
            if not isinstance(found, Pending):
                return found
            build = self._building.get(found.hash)
            if build is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(build)
            # A finished build records its result in a callback that runs on the next
            # turn of the loop; look again only after it.
            await asyncio.sleep(0)
        raise TaskEnvError(task.name, "was rebuilt again and again while the run waited")

    # -- internals -------------------------------------------------------------------------

    def _planned(self, name: str, task: EnvNeeds | None = None) -> Planned:
        tracked = self._tracked.get(name)
        if tracked is not None and (task is None or tracked.task == task):
            return tracked.planned
        if task is None:
            return None
        # A task the scans have not handed over (yet): plan it now.
        planned = self.plan(task)
        self._tracked[task.name] = _Tracked(task, planned)
        return planned

    def _ensure(self, planned: EnvPlan, force: bool = False) -> None:
        digest = planned.hash
        if not self._started:
            return  # `start` ensures every tracked plan, once leftovers are cleared
        if digest in self._building or (not force and digest in self._failed):
            return
        if not force:
            found = self._ready.get(digest) or self.cache.find(digest)
            if found is not None:
                self._ready[digest] = found
                return
        loop = asyncio.get_running_loop()
        began = time.monotonic()
        build = loop.run_in_executor(self._pool, self.cache.build, planned, force)
        self._building[digest] = build
        build.add_done_callback(lambda done: self._built(planned, done, began))
        logger.info("environment %s: building (%s)", digest, planned.dependencies.source or "bare")
        self._on_change(self._users(digest))

    def _built(self, planned: EnvPlan, build: asyncio.Future[Environment], began: float) -> None:
        digest = planned.hash
        self._building.pop(digest, None)
        if build.cancelled():
            self._failed[digest] = "its build was cancelled (Tasse stopped)"
            return
        error = build.exception()
        self._on_built(time.monotonic() - began, error is None)
        names = self._users(digest)
        if error is None:
            self._ready[digest] = build.result()
            self._failed.pop(digest, None)
        else:
            self._failed[digest] = str(error)
            logger.error("%s: environment %s failed to build: %s", _tasks(names), digest, error)
        self._on_change(names)
        # Not the shared bare environment's log: it would be copied to every task.
        if error is None and not planned.dependencies.requirements:
            return
        for name in names:
            self._copy_log(name, digest)

    def _users(self, digest: str) -> list[str]:
        return sorted(
            name
            for name, tracked in self._tracked.items()
            if isinstance(tracked.planned, EnvPlan) and tracked.planned.hash == digest
        )

    def _copy_log(self, name: str, digest: str) -> None:
        log = self._layout.env_log(name)
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.cache.log_file(digest), log)
        except OSError as error:
            logger.error("task %s: %s could not be written: %s", name, log, error)

    def _failure_text(self, name: str, failure: str) -> str:
        log = self._layout.env_log(name)
        return (
            f"failed to build, so the run was not started; the installer's output is in "
            f"{log}; fix the dependency file or POST /tasks/{name}/env/rebuild. {failure}"
        )

    def _needed(self) -> set[str]:
        return {t.planned.hash for t in self._tracked.values() if isinstance(t.planned, EnvPlan)}

    def _max_age(self) -> float:
        return self._settings.env_max_age_days * 86400

    async def _collect_periodically(self) -> None:
        while True:
            await asyncio.sleep(GC_INTERVAL)
            try:
                removed = await asyncio.to_thread(
                    self.cache.collect_garbage, self._needed(), self._max_age(), LEFTOVER_AGE
                )
            except OSError as error:
                logger.error("environment garbage collection failed: %s", error)
                continue
            for digest in removed:
                self._ready.pop(digest, None)
                logger.info(
                    "environment %s removed: unused for %g days", digest, self._max_age() / 86400
                )


def _tasks(names: list[str], most: int = 10) -> str:
    # A shared environment can serve thousands of tasks: name a few, count the rest.
    if not names:
        return "no task (any more)"
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ("task " if len(names) == 1 else "tasks ") + ", ".join(names[:most]) + more
