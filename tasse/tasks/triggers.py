"""A task's schedules as the scheduler's triggers, with errors naming task.yaml's key."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from tasse.errors import ScheduleError, TaskConfigError
from tasse.schedule.triggers import Schedule, Trigger, make_trigger
from tasse.tasks.discovery import TASK_FILE
from tasse.tasks.registry import Prepared
from tasse.tasks.task import Task


def build_triggers(task: Task, default_timezone: str) -> list[Trigger]:
    """Turn every schedule of a task into a trigger, or fail naming the key."""
    spec = task.spec
    keyed: list[tuple[str, Schedule]] = []
    if spec.scheduler:
        keyed.append(("scheduler", spec.scheduler))
    if spec.schedule:
        keyed.append(("schedule", spec.schedule))
    keyed += [(f"schedules.{index}", item) for index, item in enumerate(spec.schedules)]
    zone = spec.timezone or default_timezone
    return [_trigger(task, key, item, ZoneInfo(_zone_of(item) or zone)) for key, item in keyed]


def _zone_of(schedule: Schedule) -> str | None:
    # A crontab line has no zone of its own; it uses the task's (or the server's).
    return None if isinstance(schedule, str) else schedule.timezone


def _trigger(task: Task, key: str, schedule: Schedule, zone: ZoneInfo) -> Trigger:
    try:
        return make_trigger(schedule, zone, task.spec.jitter)
    except ScheduleError as error:
        where = f"{key}.{error.field}" if error.field else key
        raise TaskConfigError(task.name, task.folder / TASK_FILE, error.problem, where) from None


def prepare(task_or_error: Task | TaskConfigError, timezone: str) -> Prepared:
    """Build a loaded task's triggers, so a bad value (`hour: 25`) is a task error too."""
    if isinstance(task_or_error, TaskConfigError):
        return task_or_error
    task = task_or_error
    try:
        return task, tuple(build_triggers(task, timezone))
    except TaskConfigError as error:
        return error
    except Exception as error:  # one odd task must not stop the others from loading
        return TaskConfigError(task.name, task.folder, f"cannot be scheduled: {error!r}")
