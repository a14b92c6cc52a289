"""Tasks in Supertask's `CronJob` shape, for its API at `/cronjobs/`, and such jobs as
definitions.

Supertask's `CronJob`: `id` (int), `name`, `trigger_cron`, `exec_python_ref`, `exec_args`,
`exec_sql`, `enabled`, `last_run`, `last_status`. A task from Supertask's file or API keeps
its id (`cronjob_id`); any other task gets one from its name, above every id Supertask
gives, so the two never meet and each stays the same across restarts and servers.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from tasse.models import TaskInfo
from tasse.tasks.definitions import MAX_CRONJOB_ID
from tasse.tasks.supertask import from_supertask, task_names

#: what an error names as the "file" of a job sent to `/cronjobs/`
CRONJOBS_BODY = "the /cronjobs/ job"


class CronJob(BaseModel):
    """A task as Supertask's API shows a job."""

    id: int
    #: the task's title, or its name when it has none
    name: str
    #: the task's first crontab line; "" when it has none (an interval, on demand only)
    trigger_cron: str
    exec_python_ref: str | None = None
    #: the list Supertask passes as the one argument (`func(exec_args)`)
    exec_args: list[JsonValue] = Field(default_factory=list)
    exec_sql: str | None = None
    enabled: bool = False
    #: when the last run started (or was due, if it never started)
    last_run: datetime | None = None
    last_status: str | None = None


class CronJobBody(BaseModel):
    """A job sent to `POST /cronjobs/` or `PUT /cronjobs/{id}`: Supertask's `CronJob`."""

    model_config = ConfigDict(extra="forbid")

    #: optional on POST (the next free one is given), the path's on PUT
    id: int | None = Field(None, ge=0, le=MAX_CRONJOB_ID)
    name: str = Field(min_length=1)
    trigger_cron: str = Field(min_length=1)
    exec_python_ref: str | None = None
    exec_args: list[JsonValue] | None = None
    exec_kwargs: dict[str, JsonValue] | None = None
    exec_sql: str | None = None
    enabled: bool = False
    #: Supertask's run state, sent back as read: taken and left alone (Tasse records runs)
    last_run: datetime | None = None
    last_status: str | None = None


def cronjob_id(info: TaskInfo) -> int:
    """The task's id in Supertask's API: its own, or one made from its name."""
    own = (info.definition or {}).get("cronjob_id")
    if isinstance(own, int):
        return own
    return MAX_CRONJOB_ID + 1 + zlib.crc32(info.name.encode("utf-8"))


def cronjob_of(info: TaskInfo) -> CronJob:
    """The task in Supertask's `CronJob` shape."""
    definition = info.definition or {}
    python_ref = definition.get("python_ref")
    args = definition.get("args") or []
    last = info.last_run
    return CronJob(
        id=cronjob_id(info),
        name=info.title or info.name,
        trigger_cron=next((line for line in info.schedules if isinstance(line, str)), ""),
        exec_python_ref=python_ref,
        exec_args=_exec_args(args) if python_ref else [],
        exec_sql=definition.get("sql"),
        enabled=info.enabled,
        last_run=(last.started_at or last.scheduled_at) if last else None,
        last_status=last.status.value if last else None,
    )


def _exec_args(args: list[Any]) -> list[Any]:
    # Supertask's call passes one list; a Tasse python_ref spreads its args, shown as they are.
    return list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)


def find(infos: Iterable[TaskInfo], job_id: int) -> TaskInfo | None:
    """The task with that Supertask id, if there is one."""
    return next((info for info in infos if cronjob_id(info) == job_id), None)


def next_id(infos: Iterable[TaskInfo]) -> int:
    """The id a new job gets: one more than the largest Supertask id given so far."""
    given = [cronjob_id(info) for info in infos]
    return max((i for i in given if i <= MAX_CRONJOB_ID), default=0) + 1


def new_name(body: CronJobBody, job_id: int, taken: Collection[str]) -> str:
    """The task name of a new job: from its free-text name, with its id if that is taken."""
    made = task_names([{"name": body.name, "id": job_id}])[0] or f"cronjob-{job_id}"
    return made if made not in taken else f"{made}-{job_id}"


def definition_of(body: CronJobBody, name: str, job_id: int) -> dict[str, Any]:
    """A job sent to `/cronjobs/` as a Tasse definition named `name`."""
    job = body.model_dump(exclude_none=True, exclude={"id"})
    if job_id <= MAX_CRONJOB_ID:  # an id made from the name stays made from it
        job["id"] = job_id
    return from_supertask(job, CRONJOBS_BODY, name)
