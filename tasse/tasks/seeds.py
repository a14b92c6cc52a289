"""Seed files: task definitions from a local file (watched) or a URL (fetched, refreshed).

A seed is JSON or YAML: a list of task objects as for `POST /tasks`, or Supertask's
`cronjobs.json` shape (`id`, `name`, `trigger_cron`, `exec_python_ref`, `exec_args`,
`exec_kwargs`, `exec_sql`, `enabled`; see `tasks/supertask.py`). Tasks from a seed have
the source `seed`; applying a seed adds, changes and removes them so that the store
matches the file. A bad item is reported and skipped; the others load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import yaml

from tasse.errors import TasseError
from tasse.tasks.catalog import Catalog, validate
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


def _definition(item: Any, name: str | None, where: str) -> TaskDefinition:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: a task is an object (got {type(item).__name__})")
    if is_supertask_item(item):
        item = from_supertask(item, where, name)
    return validate(item, name or "?", where)


class Seeder:
    """Applies a seed at start, then again whenever the file changes or the URL is due."""

    def __init__(self, catalog: Catalog, location: str, refresh_interval: float | None):
        self._catalog = catalog
        self._location = location
        self._interval = refresh_interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Apply the seed once, then keep it applied in the background."""
        await self._apply_safely()
        loop = asyncio.get_running_loop()
        if not is_url(self._location):
            self._task = loop.create_task(self._watch_file())
        elif self._interval:
            self._task = loop.create_task(self._refresh())

    async def stop(self) -> None:
        """Stop watching or refreshing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def apply(self) -> None:
        """Make the seed tasks in the store match the seed (add, change, remove)."""
        try:
            text = await asyncio.to_thread(read_seed, self._location)
        except (OSError, ValueError) as error:
            # Unreadable now (moved, the server down): keep what was seeded before.
            logger.error("seed %s cannot be read (its tasks stay): %s", self._location, error)
            return
        seed = parse_seed(text, self._location)
        problems = list(seed.problems)
        if seed.whole:
            # A half-written or broken file changes nothing; a broken item keeps its last
            # good version (as a broken task.yaml does); everything else follows the file.
            keep = {d.name for d in seed.definitions} | seed.broken
            for name in sorted(self._seeded() - keep):
                await self._catalog.delete(name)
            for definition in seed.definitions:
                problem = await self._apply_one(definition)
                if problem:
                    problems.append(problem)
        for problem in problems:
            logger.error("seed %s", problem)
        # Shown with the tasks' errors (POST /rescan, GET /health) until the file is fixed.
        self._catalog.note_seed_problems(problems)
        logger.info(
            "seed %s applied: %d task(s), %d problem(s)",
            self._location,
            len(self._seeded()),
            len(problems),
        )

    async def _apply_one(self, definition: TaskDefinition) -> str | None:
        current = self._catalog.stored.get(definition.name)
        if current is not None and current.source != "seed":
            return (
                f"{self._location}: task {definition.name!r} is defined through the API; "
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
        except TasseError as error:
            return f"{self._location}: {error}"
        return None

    def _seeded(self) -> set[str]:
        return {name for name, item in self._catalog.stored.items() if item.source == "seed"}

    async def _watch_file(self) -> None:
        # A stat twice a second: one file, so polling is cheaper than a watch and also
        # sees the file replaced, removed and created again.
        last = _signature(self._location)
        while True:
            await asyncio.sleep(FILE_POLL_SECONDS)
            current = _signature(self._location)
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
            await self.apply()
        except Exception:
            logger.exception(
                "seed %s could not be applied; its next change or fetch tries again",
                self._location,
            )


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)
