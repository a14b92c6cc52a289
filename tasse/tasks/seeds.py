"""Seed files: task definitions from a local file (watched) or a URL (fetched, refreshed).

A seed is JSON or YAML: a list of task objects as for `POST /tasks`, or Supertask's
`cronjobs.json` shape (`id`, `name`, `trigger_cron`, `exec_python_ref`, `exec_args`,
`exec_kwargs`, `exec_sql`, `enabled`; see `tasks/supertask.py`); or a crontab
(`tasks/crontab_files.py`). Tasks from seeds have the source `seed`; applying the seeds
adds, changes and removes them so that the store matches the files. A bad item is
reported and skipped; the others load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from tasse.errors import TaskExistsError, TaskNotFoundError, TasseError
from tasse.settings import Settings
from tasse.tasks.catalog import Catalog, validate
from tasse.tasks.crontab_files import has_user_field, is_crontab, other_users, parse_crontab
from tasse.tasks.definitions import TaskDefinition
from tasse.tasks.supertask import from_supertask, is_supertask_item, task_names

logger = logging.getLogger(__name__)

#: how often a local seed file is looked at (edits apply within this and the debounce)
FILE_POLL_SECONDS = 0.5
#: a seed is a list of tasks; beyond this it is a mistake
MAX_SEED_BYTES = 16 * 1024 * 1024


@dataclass
class Seed:
    """What a seed file holds: valid definitions, and a problem per item that is not."""

    definitions: list[TaskDefinition] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: names of the items that are there but invalid: their last good version stays
    broken: set[str] = field(default_factory=set)
    #: False when the file as a whole could not be read as a list (half written, say)
    whole: bool = True


#: how a seed is read: JSON/YAML, or a crontab when its name or lines say so (`seed`); a
#: crontab, with a user field when its place says so (`crontab`); a crontab with a user
#: field (`system-crontab`)
SeedKind = Literal["seed", "crontab", "system-crontab"]


@dataclass(frozen=True)
class SeedFile:
    """Where a seed is, and how to read it."""

    location: str
    kind: SeedKind = "seed"


def seed_files(settings: Settings) -> list[SeedFile]:
    """Every seed the settings name: the seed file, then the crontabs."""
    seeds = [SeedFile(settings.pre_seed_jobs)] if settings.pre_seed_jobs else []
    seeds += [SeedFile(location, "crontab") for location in settings.crontab]
    seeds += [SeedFile(location, "system-crontab") for location in settings.system_crontab]
    return seeds


def is_url(location: str) -> bool:
    """Whether a seed location is fetched over HTTP(S) rather than read from disk."""
    return location.startswith(("http://", "https://"))


def read_seed(location: str, timeout: float = 30) -> str:
    """The seed's text, from a file or a URL."""
    raw: bytes
    if is_url(location):
        with urllib.request.urlopen(location, timeout=timeout) as response:
            raw = response.read(MAX_SEED_BYTES + 1)
    else:
        with open(location, "rb") as stream:
            raw = stream.read(min(os.fstat(stream.fileno()).st_size, MAX_SEED_BYTES) + 1)
    if len(raw) > MAX_SEED_BYTES:
        raise ValueError(f"is larger than {MAX_SEED_BYTES} bytes")
    return raw.decode("utf-8")


def parse_seed(text: str, origin: str) -> Seed:
    """The definitions in a seed's text (JSON is YAML too); a bad item becomes a problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return Seed(problems=[f"{origin}: not valid JSON or YAML: {error}"], whole=False)
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data = data["tasks"]
    if not isinstance(data, list):
        kind = type(data).__name__
        return Seed(problems=[f"{origin}: must be a list of tasks (got {kind})"], whole=False)
    seed = Seed()
    names: set[str] = set()
    for index, (item, name) in enumerate(zip(data, _names_of(data), strict=True), 1):
        where = f"{origin}: item {index}"
        try:
            definition = _definition(item, name, where)
        except (TasseError, ValueError) as error:
            seed.problems.append(str(error))
            if name is not None:
                seed.broken.add(name)
            continue
        if definition.name in names:
            seed.problems.append(f"{where}: task {definition.name!r} appears twice; kept the first")
            continue
        names.add(definition.name)
        seed.definitions.append(definition)
    return seed


def _names_of(data: list[Any]) -> list[str | None]:
    """Each item's task name: a Supertask item's made from its free-text name."""
    supertask = [item for item in data if isinstance(item, dict) and is_supertask_item(item)]
    made = iter(task_names(supertask))  # made together: a collision needs all of them
    names: list[str | None] = []
    for item in data:
        if not isinstance(item, dict):
            names.append(None)
        elif is_supertask_item(item):
            names.append(next(made))
        else:
            names.append(item["name"] if isinstance(item.get("name"), str) else None)
    return names


def parse_seed_file(text: str, seed: SeedFile) -> Seed:
    """The definitions in a seed's text, read as its kind says."""
    location = seed.location
    if seed.kind == "seed" and not is_crontab(location, text):
        return parse_seed(text, location)
    system = seed.kind == "system-crontab" or has_user_field(location)
    crontab = parse_crontab(text, location, system)
    others = other_users(crontab)
    if others:
        # Switching users needs root and a runner that does it; saying so is the least.
        logger.warning(
            "seed %s: its lines for %s run as the server's own user",
            location,
            ", ".join(sorted(others)),
        )
    definitions = [job.definition for job in crontab.jobs]
    return Seed(definitions=definitions, problems=crontab.problems, broken=crontab.broken)


def _definition(item: Any, name: str | None, where: str) -> TaskDefinition:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: a task is an object (got {type(item).__name__})")
    if is_supertask_item(item):
        item = from_supertask(item, where, name)
    return validate(item, name or "?", where)


class Seeder:
    """Applies the seeds at start, then again whenever a file changes or a URL is due.

    All seeds are applied together: a task is removed only when no seed has it any more,
    and never while one of them cannot be read whole.
    """

    def __init__(
        self, catalog: Catalog, seeds: Sequence[SeedFile | str], refresh_interval: float | None
    ):
        self._catalog = catalog
        self._seeds = [SeedFile(seed) if isinstance(seed, str) else seed for seed in seeds]
        self._interval = refresh_interval
        self._tasks: list[asyncio.Task[None]] = []
        # The file watch and the URL refresh must not apply at the same time.
        self._applying = asyncio.Lock()

    async def start(self) -> None:
        """Apply the seeds once, then keep them applied in the background."""
        await self._apply_safely()
        loop = asyncio.get_running_loop()
        files = [seed.location for seed in self._seeds if not is_url(seed.location)]
        if files:
            self._tasks.append(loop.create_task(self._watch_files(files)))
        if self._interval and len(files) < len(self._seeds):
            self._tasks.append(loop.create_task(self._refresh()))

    async def stop(self) -> None:
        """Stop watching and refreshing."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def apply(self) -> None:
        """Make the seed tasks in the store match the seeds (add, change, remove)."""
        found: dict[str, tuple[TaskDefinition, str]] = {}
        broken: set[str] = set()
        problems: list[str] = []
        whole = True
        for seed in self._seeds:
            read = await self._read(seed)
            if read is None:
                whole = False
                problems.append(f"{seed.location}: cannot be read now; its tasks stay")
                continue
            whole = whole and read.whole
            problems.extend(read.problems)
            broken |= read.broken
            for definition in read.definitions:
                if definition.name in found:
                    problems.append(
                        f"{seed.location}: task {definition.name!r} is also in "
                        f"{found[definition.name][1]}; kept the first"
                    )
                    continue
                found[definition.name] = (definition, seed.location)
        if whole:
            # A half-written or broken file changes nothing; a broken item keeps its last
            # good version (as a broken task.yaml does); everything else follows the files.
            for name in sorted(self._seeded() - found.keys() - broken):
                # Another node of a cluster, reading the same file, may have deleted it first.
                with contextlib.suppress(TaskNotFoundError):
                    await self._catalog.delete(name)
        for definition, location in found.values():
            problem = await self._apply_one(definition, location)
            if problem:
                problems.append(problem)
        for problem in problems:
            logger.error("seed %s", problem)
        # Shown with the tasks' errors (POST /rescan, GET /health) until the file is fixed.
        self._catalog.note_seed_problems(problems)
        logger.info(
            "seed %s applied: %d task(s), %d problem(s)",
            ", ".join(seed.location for seed in self._seeds),
            len(self._seeded()),
            len(problems),
        )

    async def _read(self, seed: SeedFile) -> Seed | None:
        try:
            text = await asyncio.to_thread(read_seed, seed.location)
        except (OSError, ValueError) as error:
            # Unreadable now (moved, the server down): keep what was seeded before.
            logger.error("seed %s cannot be read (its tasks stay): %s", seed.location, error)
            return None
        return parse_seed_file(text, seed)

    async def _apply_one(self, definition: TaskDefinition, location: str) -> str | None:
        current = self._catalog.stored.get(definition.name)
        if current is not None and current.source != "seed":
            return (
                f"{location}: task {definition.name!r} is defined through the API; "
                "the seed's version is skipped"
            )
        stored = definition.model_dump(mode="json", exclude_defaults=True)
        if current is not None and current.definition == stored:
            return None  # unchanged: its schedule (and next fire time) stays as it is
        try:
            if current is None:
                await self._catalog.create(definition, "seed")
            else:
                await self._catalog.put(definition, "seed")
        except TaskExistsError as exists:
            # Another node of a cluster, reading the same file, seeded it meanwhile.
            return await self._seeded_meanwhile(definition, stored, location, exists)
        except TasseError as error:
            return f"{location}: {error}"
        return None

    async def _seeded_meanwhile(
        self,
        definition: TaskDefinition,
        stored: dict[str, Any],
        location: str,
        exists: TaskExistsError,
    ) -> str | None:
        current = self._catalog.stored.get(definition.name)
        if current is None or current.source != "seed":
            return f"{location}: {exists}"
        if current.definition != stored:
            try:
                await self._catalog.put(definition, "seed")
            except TasseError as error:
                return f"{location}: {error}"
        return None

    def _seeded(self) -> set[str]:
        return {name for name, item in self._catalog.stored.items() if item.source == "seed"}

    async def _watch_files(self, paths: list[str]) -> None:
        # A stat of each file twice a second: a few files, so polling is cheaper than a
        # watch and also sees a file replaced, removed and created again.
        last = [_signature(path) for path in paths]
        while True:
            await asyncio.sleep(FILE_POLL_SECONDS)
            current = [_signature(path) for path in paths]
            if current != last:
                last = current
                await self._apply_safely()

    async def _refresh(self) -> None:
        assert self._interval is not None
        while True:
            await asyncio.sleep(self._interval)
            await self._apply_safely()

    async def _apply_safely(self) -> None:
        # The watch must outlive any one bad reading (a store that is down, say).
        try:
            async with self._applying:
                await self.apply()
        except Exception:
            logger.exception(
                "seeds %s could not be applied; the next change or fetch tries again",
                ", ".join(seed.location for seed in self._seeds),
            )


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)
