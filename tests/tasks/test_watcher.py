"""Watching the tasks folder: which events matter, and real watchdog events through a live Tasse."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tasse.models import TaskInfo
from tasse.service import Tasse
from tasse.settings import Settings
from tasse.tasks.watcher import affected_task
from tests.conftest import MakeTask

T = TypeVar("T")

TASKS = Path("/data/tasks")
EVERY_MINUTE = "scheduler: {trigger: interval, minutes: 1}\n"
EVERY_HOUR = "scheduler: {trigger: interval, hours: 1}\n"
#: the promise in the design: a dropped-in folder is scheduled within a second
APPEARS_WITHIN = 1.0
#: generous bound for everything else, so a loaded machine does not fail the test
SETTLES_WITHIN = 5.0


async def eventually(check: Callable[[], T | None], within: float = SETTLES_WITHIN) -> T:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s: {check.__doc__ or check}")
        await asyncio.sleep(0.01)


def task_info(tasse: Tasse, name: str) -> TaskInfo | None:
    """The task as `GET /tasks` would list it, or None when it is not listed."""
    return next((info for info in tasse.list_tasks() if info.name == name), None)


def task_where(
    tasse: Tasse, name: str, condition: Callable[[TaskInfo], bool]
) -> Callable[[], TaskInfo | None]:
    """A check for `eventually`: the listed task once it meets `condition`."""

    def check() -> TaskInfo | None:
        info = task_info(tasse, name)
        return info if info is not None and condition(info) else None

    return check


def write_task(folder: Path, yaml: str) -> None:
    """Drop in a task folder the way a user does: mkdir, then the files."""
    folder.mkdir()
    (folder / "task.yaml").write_text(yaml)
    (folder / "task.py").write_text("print('hi')\n")


# -- which events matter -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "event_type", "expected"),
    [
        ("hello", "created", "hello"),
        ("hello", "deleted", "hello"),
        ("hello", "moved", "hello"),
        ("hello/task.yaml", "modified", "hello"),
        ("hello/task.yaml", "closed", "hello"),
        ("hello/task.yaml", "deleted", "hello"),
        ("hello/task.py", "created", "hello"),
        ("hello/task.py", "deleted", "hello"),
        ("hello/requirements.txt", "moved", "hello"),
        ("hello/src/main.py", "created", None),
        ("hello/data/out.csv", "modified", None),
        ("hello/.venv/lib/site.py", "created", None),
        ("hello/__pycache__", "created", None),
        ("hello/__pycache__/task.cpython-311.pyc", "created", None),
        (".git", "created", None),
        (".git/HEAD", "modified", None),
        (".hidden/task.yaml", "modified", None),
    ],
)
def test_affected_task(path: str, event_type: str, expected: str | None) -> None:
    assert affected_task(TASKS, str(TASKS / path), event_type) == expected


def test_editing_a_helper_module_does_not_rescan() -> None:
    # Code is read at run time; task.yaml, the dependency files and task.py (its PEP 723
    # block) define a task and its environment, other files only by coming and going.
    assert affected_task(TASKS, str(TASKS / "hello/helpers.py"), "closed") is None


@pytest.mark.parametrize(
    "name", ["task.py", "requirements.txt", "pyproject.toml", "poetry.lock", "task.yaml"]
)
def test_editing_a_defining_file_in_place_rescans_its_task(name: str) -> None:
    assert affected_task(TASKS, str(TASKS / "hello" / name), "closed") == "hello"


@pytest.mark.parametrize("path", ["/data/tasks", "/data/logs/hello/log.txt", "/etc/hosts"])
def test_events_outside_the_task_folders_are_ignored(path: str) -> None:
    assert affected_task(TASKS, path, "modified") is None


# -- real watchdog events through a started Tasse ------------------------------------------


@pytest.mark.anyio
async def test_a_new_folder_is_scheduled_within_a_second(tasse: Tasse) -> None:
    started = time.monotonic()
    write_task(tasse.settings.tasks_dir / "fresh", EVERY_MINUTE)

    scheduled = task_where(tasse, "fresh", lambda info: info.next_run_at is not None)
    info = await eventually(scheduled, within=APPEARS_WITHIN)

    assert time.monotonic() - started < APPEARS_WITHIN
    assert info.error is None
    assert info.schedules == [{"trigger": "interval", "minutes": 1.0}]


@pytest.mark.anyio
async def test_a_bad_edit_keeps_the_last_good_schedule_and_shows_the_error(
    make_task: MakeTask, tasse: Tasse
) -> None:
    folder = make_task("steady", yaml=EVERY_MINUTE)
    await tasse.rescan()
    good_next_run = tasse.get_task("steady").next_run_at
    assert good_next_run is not None

    (folder / "task.yaml").write_text("scheduler: {trigger: cron, hour: 25}\n")
    broken = await eventually(task_where(tasse, "steady", lambda info: info.error is not None))

    assert "scheduler.hour" in (broken.error or "")
    assert broken.schedules == [{"trigger": "interval", "minutes": 1.0}]
    assert broken.next_run_at == good_next_run

    (folder / "task.yaml").write_text(EVERY_HOUR)
    fixed = await eventually(task_where(tasse, "steady", lambda info: info.error is None))

    assert fixed.schedules == [{"trigger": "interval", "hours": 1.0}]


@pytest.mark.anyio
async def test_an_editors_atomic_save_is_picked_up(make_task: MakeTask, tasse: Tasse) -> None:
    folder = make_task("saved", yaml=EVERY_MINUTE)
    await tasse.rescan()

    (folder / ".task.yaml.swp").write_text(EVERY_HOUR)
    os.replace(folder / ".task.yaml.swp", folder / "task.yaml")

    hourly = task_where(tasse, "saved", lambda info: info.schedules[0].get("hours") == 1.0)
    info = await eventually(hourly)
    assert info.error is None


@pytest.mark.anyio
async def test_removing_a_folder_removes_the_task(make_task: MakeTask, tasse: Tasse) -> None:
    folder = make_task("doomed", yaml=EVERY_MINUTE)
    make_task("survivor", yaml=EVERY_MINUTE)
    await tasse.rescan()

    shutil.rmtree(folder)

    await eventually(lambda: task_info(tasse, "doomed") is None)
    assert [info.name for info in tasse.list_tasks()] == ["survivor"]
    assert tasse.scheduler.next_run_at("doomed") is None


@pytest.mark.anyio
async def test_renaming_a_folder_renames_the_task(make_task: MakeTask, tasse: Tasse) -> None:
    folder = make_task("old-name", yaml=EVERY_MINUTE)
    await tasse.rescan()

    folder.rename(folder.with_name("new-name"))

    await eventually(lambda: [info.name for info in tasse.list_tasks()] == ["new-name"])
    assert tasse.get_task("new-name").next_run_at is not None


@pytest.mark.anyio
async def test_a_badly_named_new_folder_is_reported_promptly(tasse: Tasse) -> None:
    write_task(tasse.settings.tasks_dir / "my task", EVERY_MINUTE)

    await eventually(lambda: tasse.health()["errors"] == 1, within=APPEARS_WITHIN)


# -- an explicit rescan (POST /rescan) -------------------------------------------------------


@pytest.fixture
async def unwatched(data_dir: Path) -> AsyncIterator[Tasse]:
    """A started Tasse without the watcher, so only our own rescans change what it knows."""
    service = Tasse(Settings(data_dir=data_dir, watch=False, _env_file=None))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.mark.anyio
async def test_rescan_reports_added_changed_removed_and_errors(
    make_task: MakeTask, unwatched: Tasse
) -> None:
    edited = make_task("edited", yaml=EVERY_MINUTE)
    gone = make_task("gone")
    breaks = make_task("breaks", yaml=EVERY_MINUTE)
    make_task("untouched", yaml=EVERY_MINUTE)
    await unwatched.rescan()

    (edited / "task.yaml").write_text(EVERY_HOUR)
    shutil.rmtree(gone)
    (breaks / "task.yaml").write_text("scheduler: {trigger: interval, secondz: 1}\n")
    make_task("new")
    make_task("bad name")
    report = await unwatched.rescan()

    assert report.added == ["new"]
    assert report.changed == ["edited"]
    assert report.removed == ["gone"]
    assert set(report.errors) == {"breaks", "bad name"}
    assert "unknown key 'secondz'" in report.errors["breaks"]
    assert unwatched.get_task("edited").schedules == [{"trigger": "interval", "hours": 1.0}]
    assert unwatched.get_task("breaks").next_run_at is not None  # last good version runs on


@pytest.mark.anyio
async def test_a_rescan_with_nothing_changed_reports_nothing(
    make_task: MakeTask, unwatched: Tasse
) -> None:
    make_task("steady", yaml=EVERY_MINUTE)
    await unwatched.rescan()

    report = await unwatched.rescan()

    assert (report.added, report.changed, report.removed, report.errors) == ([], [], [], {})
