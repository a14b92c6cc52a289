"""Every task as a server would show it, from the data folder alone: its task folders and the
tasks the store holds (defined through the API or a seed file), with their last runs.

The same `TaskInfo` the API answers, built by the same `task_info` and `state_of`; what only
a running server knows is left out: nothing is running, and the next run is when the
schedule would fire if one were.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from tasse.cli.env import env_problem
from tasse.errors import TaskConfigError, TaskNameError, TasseError
from tasse.models import Run, TaskInfo, TaskSource
from tasse.schedule.triggers import upcoming
from tasse.settings import Settings
from tasse.store.pauses import Pause
from tasse.store.tables import StoredTask
from tasse.tasks import discovery
from tasse.tasks.catalog import validate
from tasse.tasks.definitions import DefinedSource, to_task
from tasse.tasks.info import task_info
from tasse.tasks.listing import Facts, state_of
from tasse.tasks.registry import TaskEntry
from tasse.tasks.task import Task
from tasse.tasks.triggers import prepare


def task_entries(settings: Settings, stored: list[StoredTask]) -> dict[str, TaskEntry]:
    """Each task folder and stored definition, loaded (or broken), by name."""
    entries = {entry.name: entry for entry in _folder_entries(settings)}
    # A defined task wins over a folder of its name, as the server's catalog decides.
    entries.update((item.name, _defined_entry(settings, item)) for item in stored)
    return dict(sorted(entries.items()))


def task_infos(
    settings: Settings,
    entries: dict[str, TaskEntry],
    sources: dict[str, TaskSource],
    last_runs: dict[str, Run],
    pauses: dict[str, Pause],
) -> list[TaskInfo]:
    """The entries as the API shows them."""
    now = datetime.now(UTC)
    problems = {name: _env_problem(settings, entry) for name, entry in entries.items()}
    next_runs = {
        name: _next_run(entry, now) for name, entry in entries.items() if name not in pauses
    }
    facts = Facts(
        source=lambda name: sources.get(name, "folder"),
        env_problem=problems.get,
        paused=pauses.__contains__,
        running=(),
        last_runs=last_runs,
        next_run_at=next_runs.get,
    )
    return [
        task_info(
            entry,
            source=facts.source(name),
            last_run=last_runs.get(name),
            state=state_of(entry, facts),
            next_run_at=next_runs.get(name),
            env_problem=problems[name],
            pause=pauses.get(name),
        )
        for name, entry in entries.items()
    ]


def _folder_entries(settings: Settings) -> Iterator[TaskEntry]:
    scan = discovery.scan(settings.tasks_dir, {})
    for name, loaded in scan.loaded.items():
        yield _entry(name, prepare(loaded, settings.timezone))
    for name in scan.rejected:
        error = TaskNameError(name)
        yield TaskEntry(
            name, None, (), TaskConfigError(name, settings.tasks_dir / name, str(error))
        )


def _defined_entry(settings: Settings, item: StoredTask) -> TaskEntry:
    source: DefinedSource = "seed" if item.source == "seed" else "api"
    where = f"the job store ({source})"
    try:
        definition = validate(item.definition, item.name, where)
        task = to_task(definition, source, settings.data_dir / "work", settings.store_url)
    except TaskConfigError as error:
        return TaskEntry(item.name, None, (), error)
    except Exception as error:  # one odd row must not hide the others
        return TaskEntry(item.name, None, (), TaskConfigError(item.name, where, repr(error)))
    return _entry(item.name, prepare(task, settings.timezone))


def _entry(name: str, prepared: tuple[Task, tuple[Any, ...]] | TaskConfigError) -> TaskEntry:
    if isinstance(prepared, TaskConfigError):
        return TaskEntry(name, None, (), prepared)
    task, triggers = prepared
    return TaskEntry(name, task, triggers)


def _env_problem(settings: Settings, entry: TaskEntry) -> str | None:
    # A reference runs in its target's environment, which the target's own entry judges.
    if entry.task is None or entry.task.reference is not None:
        return None
    try:
        problem = env_problem(settings, entry.task)
    except TasseError as error:
        return str(error)
    return None if problem is None else str(problem)


def _next_run(entry: TaskEntry, now: datetime) -> datetime | None:
    if entry.task is None or not entry.task.spec.enabled:
        return None
    fires = upcoming(entry.triggers, 1, now)
    return fires[0] if fires else None
