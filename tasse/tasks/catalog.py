"""Tasks defined as data (API, seed files): validated, stored in the job store, scheduled.

Folder tasks stay the folders' business: the catalog refuses to change them, and a folder
whose name a defined task already has is reported, not loaded.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tasse.envs.provisioner import Planned, Provisioner
from tasse.errors import (
    FolderTaskError,
    TaskConfigError,
    TaskExistsError,
    TaskNotFoundError,
)
from tasse.models import TaskSource
from tasse.schedule.scheduler import Scheduler
from tasse.settings import Settings
from tasse.store.runs import RunStore
from tasse.store.tables import StoredTask
from tasse.tasks.definitions import (
    DefinedSource,
    TaskDefinition,
    shown_definition,
    to_task,
    unmasked,
)
from tasse.tasks.registry import Registry
from tasse.tasks.task import Task
from tasse.tasks.task_file import config_error
from tasse.tasks.triggers import build_triggers

logger = logging.getLogger(__name__)

#: a prepared defined task: the task, its triggers and its environment's plan
Installable = tuple[Task, tuple[Any, ...], Planned]

#: what an error names as the "file" of a task defined through the API
API_BODY = "the API definition"


class Catalog:
    """Creates, replaces, patches and deletes defined tasks, keeping store and schedule in step."""

    def __init__(
        self,
        settings: Settings,
        store: RunStore,
        registry: Registry,
        scheduler: Scheduler,
        envs: Provisioner,
        rescan: Callable[[set[str]], Any],
        on_removed: Callable[[str], None] = lambda name: None,
        on_defined: Callable[[str, bool], None] = lambda name, new: None,
        until_idle: Callable[[str], Awaitable[None]] | None = None,
    ):
        self._settings = settings
        #: waits until no run of the task is alive (its work folder is theirs till then)
        self._until_idle = until_idle
        self._chores: set[asyncio.Task[None]] = set()
        #: told of each task removed (its runs that have not started are cancelled)
        self._on_removed = on_removed
        #: told of each task created (True) or replaced (False) once it is scheduled
        self._on_defined = on_defined
        self._store = store
        self._registry = registry
        self._scheduler = scheduler
        self._envs = envs
        self._rescan = rescan
        #: each defined task's stored definition, as the API shows it
        self.stored: dict[str, StoredTask] = {}
        # One change at a time: a check ("is the name free?") and the save that relies on
        # it must not interleave with another request's.
        self._changing = asyncio.Lock()
        #: names another node defined that are folder tasks here (said once each)
        self._clashes: set[str] = set()

    @property
    def work_dir(self) -> Path:
        """Where defined tasks run (each in a folder of its own)."""
        return self._settings.data_dir / "work"

    async def load(self) -> int:
        """Schedule every task the store holds (at start); a bad one becomes a task error."""
        stored = await asyncio.to_thread(self._store.tasks)
        await self._take_in(stored, tell=False)
        return len(stored)

    async def follow_store(self) -> tuple[list[str], list[str]]:
        """Take in what other nodes of a cluster defined, replaced or deleted (they share
        the tasks table); returns the names defined or replaced here, and those deleted."""
        async with self._changing:  # a change of this node's own is in the store by now
            stored = await self._store.off_loop(self._store.tasks, "reading the defined tasks")
            changed = [item for item in stored if self._differs(item)]
            await self._take_in(changed, tell=True)
            present = {item.name for item in stored}
            gone = [name for name in self.stored if name not in present]
            for name in gone:
                self._forget(name)
        if gone:  # a folder of a deleted task's name is loaded in its place
            await self._rescan(set(gone))
        return [item.name for item in changed], gone

    async def _take_in(self, stored: list[StoredTask], tell: bool) -> None:
        """Schedule these stored tasks (a bad one becomes a task error); `tell`: say which
        are new or replaced (at start nothing is told)."""
        # One trip to a worker thread for all of them: with thousands of tasks, a hand-off
        # per task (and the loop waiting on each) cost more than the work itself.
        prepared = await asyncio.to_thread(self._prepare_stored, stored)
        for item, result in zip(stored, prepared, strict=True):
            new = item.name not in self.stored
            self.stored[item.name] = item
            if isinstance(result, TaskConfigError):
                logger.error("%s", result)
                self._registry.define_error(item.name, result)
            else:
                self._register(*result, new=new if tell else None)

    def _differs(self, item: StoredTask) -> bool:
        current = self.stored.get(item.name)
        if current is not None:
            return current.updated_at != item.updated_at
        if item.name in self._registry.entries:  # a folder task here: the folder stays
            if item.name in self._clashes:
                return False
            self._clashes.add(item.name)
            logger.error(
                "task %s: defined through another node, but this node has a folder of that"
                " name in %s; the folder's task stays here",
                item.name,
                self._settings.tasks_dir,
            )
            return False
        return True

    def _prepare_stored(self, stored: list[StoredTask]) -> list[Installable | TaskConfigError]:
        results: list[Installable | TaskConfigError] = []
        for item in stored:
            source: DefinedSource = "seed" if item.source == "seed" else "api"
            try:
                definition = validate(item.definition, item.name, f"the job store ({source})")
                results.append(self._installable(*self._prepare(definition, source)))
            except TaskConfigError as error:
                results.append(error)
            except Exception as error:  # one odd row must not stop the others from loading
                where = f"the job store ({source})"
                results.append(TaskConfigError(item.name, where, f"cannot be loaded: {error!r}"))
        return results

    async def create(self, definition: TaskDefinition, source: DefinedSource = "api") -> None:
        """A new task; 409 when any task of that name exists."""
        async with self._changing:
            if definition.name in self._registry.entries:
                raise TaskExistsError(definition.name, self.source_of(definition.name))
            await self._put(definition, source)

    async def put(self, definition: TaskDefinition, source: DefinedSource = "api") -> bool:
        """Create or replace a defined task; returns whether it was new."""
        async with self._changing:
            return await self._put(definition, source)

    async def _put(self, definition: TaskDefinition, source: DefinedSource) -> bool:
        self._refuse_folder_task(definition.name)
        new = definition.name not in self.stored
        if not new:  # a definition read back from the API and sent again keeps its secrets
            definition = unmasked(definition, self.stored[definition.name].definition)
        task, triggers = self._prepare(definition, source)  # a bad schedule: 422, nothing saved
        data = definition.model_dump(mode="json", exclude_defaults=True)
        item = await self._store.off_loop(
            lambda: self._store.save_task(definition.name, source, data), "saving a task"
        )
        await self._install(item, task, triggers, new)
        logger.info("task %s %s (%s)", definition.name, "defined" if new else "replaced", source)
        return new

    async def patch(self, name: str, changes: Mapping[str, Any]) -> None:
        """Change some keys of a defined task (`null` removes a key)."""
        if changes.get("name", name) != name:
            raise TaskConfigError(name, API_BODY, "a task cannot be renamed", "name")
        async with self._changing:
            self._refuse_folder_task(name)
            current = self.stored.get(name)
            if current is None:
                raise TaskNotFoundError(name)
            merged = {**current.definition, **changes, "name": name}
            merged = {key: value for key, value in merged.items() if value is not None}
            source: DefinedSource = "seed" if current.source == "seed" else "api"
            await self._put(validate(merged, name), source)

    async def delete(self, name: str) -> None:
        """Remove a defined task; a folder of that name is loaded in its place."""
        async with self._changing:
            self._refuse_folder_task(name)
            if name not in self.stored:
                raise TaskNotFoundError(name)
            await self._store.off_loop(lambda: self._store.delete_task(name), "deleting a task")
            self._forget(name)
        logger.info("task %s deleted", name)
        await self._rescan({name})

    async def delete_sources(self, sources: Collection[str]) -> int:
        """Remove every defined task from these sources (for `--pre-delete-jobs`)."""
        count = await self._store.off_loop(
            lambda: self._store.delete_tasks(sources), "deleting tasks"
        )
        for name, item in list(self.stored.items()):
            if item.source in sources:
                self._forget(name)
        return count

    # -- internals -------------------------------------------------------------------------

    def _prepare(self, definition: TaskDefinition, source: DefinedSource) -> tuple[Any, Any]:
        task = to_task(definition, source, self.work_dir, self._settings.store_url)
        try:
            return task, tuple(build_triggers(task, self._settings.timezone))
        except TaskConfigError as error:
            raise TaskConfigError(task.name, API_BODY, error.problem, error.key) from None

    async def _install(
        self, item: StoredTask, task: Task, triggers: tuple[Any, ...], new: bool
    ) -> None:
        self.stored[task.name] = item
        self._register(*await asyncio.to_thread(self._installable, task, triggers), new=new)

    def _installable(self, task: Task, triggers: tuple[Any, ...]) -> Installable:
        # The slow parts, for a worker thread: the working folder (a reference runs in its
        # target's) and the environment's plan (it may probe interpreters).
        if task.reference is None:
            task.folder.mkdir(parents=True, exist_ok=True)
        return task, triggers, self._envs.plan(task)

    def _register(
        self, task: Task, triggers: tuple[Any, ...], planned: Planned, new: bool | None = None
    ) -> None:
        self._registry.define(task, triggers)
        self._scheduler.schedule(task.name, triggers, task.spec.enabled)
        if new is not None:  # told before its environment's build begins (at load: not told)
            self._on_defined(task.name, new)
        self._envs.track(task, planned)

    def _forget(self, name: str) -> None:
        self.stored.pop(name, None)
        self._registry.undefine(name)
        self._scheduler.remove(name)
        self._envs.forget(name)
        self._on_removed(name)
        chore = asyncio.get_running_loop().create_task(self._clear_work_folder(name))
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    async def _clear_work_folder(self, name: str) -> None:
        # Once its runs have ended: a run still going keeps the folder it works in.
        if self._until_idle is not None:
            await self._until_idle(name)
        # Under the lock every definition takes: one defining it again now (its store
        # write under way) goes first, and keeps the folder.
        async with self._changing:
            if name not in self.stored:  # not defined again meanwhile
                await asyncio.to_thread(remove_work_folder, self.work_dir / name)

    def _refuse_folder_task(self, name: str) -> None:
        entry = self._registry.entries.get(name)
        if name not in self.stored and entry is not None:
            raise FolderTaskError(name, str(self._settings.tasks_dir / name))

    def note_seed_problems(self, problems: list[str]) -> None:
        """Keep the seed file's current problems where task errors are shown."""
        self._registry.seed_problems = {
            f"seed problem {number}": problem for number, problem in enumerate(problems, 1)
        }

    def source_of(self, name: str) -> TaskSource:
        """Where the task of that name is defined."""
        item = self.stored.get(name)
        return "folder" if item is None else "seed" if item.source == "seed" else "api"

    def definition(self, name: str) -> dict[str, Any] | None:
        """The stored definition of a defined task (None for folder tasks)."""
        item = self.stored.get(name)
        return shown_definition(item.definition) if item else None


def remove_work_folder(folder: Path) -> None:
    """Remove a deleted task's `data/work/<name>` (a symlink there: only the link)."""
    try:
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder)
    except FileNotFoundError:
        return
    except OSError as error:
        logger.warning("the work folder %s of a deleted task cannot be removed: %s", folder, error)
        return
    logger.info("removed the work folder %s of a deleted task", folder)


def validate(data: Mapping[str, Any], name: str, file: str = API_BODY) -> TaskDefinition:
    """A definition from plain data; a bad one raises TaskConfigError naming the key."""
    try:
        return TaskDefinition.model_validate(data)
    except ValidationError as error:
        raise config_error(name, file, error, TaskDefinition) from None
