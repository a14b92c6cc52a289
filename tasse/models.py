"""The vocabulary every part shares: a run, its status and id, and what the API shows of a task."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from tasse.values import Text, VariableName

#: where a task is defined: its folder, the HTTP API, or a seed file
TaskSource = Literal["folder", "api", "seed"]


class RunStatus(StrEnum):
    """Where a run stands; the last three are outcomes of a fire that did not run."""

    #: accepted, waiting to start
    queued = "queued"
    #: its process is alive
    running = "running"
    #: exited with code 0
    succeeded = "succeeded"
    #: exited with another code, or could not be started
    failed = "failed"
    #: stopped because it ran longer than its `timeout`
    timed_out = "timed_out"
    #: stopped on request (`POST /runs/{id}/cancel`, server shutdown)
    cancelled = "cancelled"
    #: was running when the server stopped without a chance to end it
    interrupted = "interrupted"
    #: a fire that found the task still running
    skipped = "skipped"
    #: a fire that came too late (server down or busy beyond the grace time)
    missed = "missed"
    #: a fire merged into another run of the same task (due together, or one already queued)
    coalesced = "coalesced"

    @property
    def is_final(self) -> bool:
        """True once the run will not change any more."""
        return self not in (RunStatus.queued, RunStatus.running)


class RunTrigger(StrEnum):
    """Why a run was started; the child sees it as TASSE_TRIGGER."""

    schedule = "schedule"
    manual = "manual"
    #: another attempt after a failed one (`retries`)
    retry = "retry"


class Run(BaseModel):
    """One intended execution of a task and its outcome."""

    model_config = ConfigDict(extra="forbid")

    id: str
    task: str
    trigger: RunTrigger
    status: RunStatus
    exit_code: int | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    #: 1 for a first run, 2 for its first retry, and so on
    attempt: int = 1
    #: what a manual run was given (`POST /tasks/{name}/run`): appended to the command
    args: list[str] = Field(default_factory=list)
    #: ... and seen as TASSE_PARAM_<NAME>; `env` is not kept, as secrets travel that way
    params: dict[str, str] = Field(default_factory=dict)


class RunOutline(NamedTuple):
    """What charts draw of a run, read without its request and without validating a model:
    a 90-day calendar or a day's timeline reads thousands of runs for one page."""

    id: str
    task: str
    status: RunStatus
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, run: Run) -> RunOutline:
        """The outline of a full run (one the writer still holds, say)."""
        return cls(
            run.id,
            run.task,
            run.status,
            run.scheduled_at,
            run.started_at,
            run.finished_at,
            run.error,
        )


#: a run as charts and time windows see it: either kind has what they read
RunLike = Run | RunOutline


def new_run_id(now: datetime) -> str:
    """A readable id that sorts by creation time: 20261122-101500-123456-9f3a1c."""
    return f"{now:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}"


def run_id_prefix(moment: datetime) -> str:
    """How the ids of runs made at this moment start (`new_run_id`, in UTC)."""
    return moment.astimezone(UTC).strftime("%Y%m%d-%H%M%S-%f")


class RunRequest(BaseModel):
    """The optional body of `POST /tasks/{name}/run`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    args: list[Text] = Field(default_factory=list, max_length=1000)
    env: dict[VariableName, Text] = Field(default_factory=dict)
    params: dict[VariableName, Text] = Field(default_factory=dict)


class PauseRequest(BaseModel):
    """The optional body of `POST /tasks/{name}/pause`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: why the task is paused, shown with it
    reason: Text | None = Field(None, max_length=1000)


class TaskState(StrEnum):
    """A task at a glance, for status lights and `GET /tasks?status=`.

    Members are in precedence order: a task is in the first state that applies to it
    (a broken task that is also running shows `broken`), and `sort=state` lists in it.
    """

    #: its task.yaml or definition has an error (its last good version may still run), or
    #: its environment cannot be had (no interpreter fits, the build failed)
    broken = "broken"
    #: paused through the API: its schedules do not fire until it is resumed
    paused = "paused"
    #: a run of it is running now (a run waiting for its turn does not count)
    running = "running"
    #: `enabled: false`: its schedules do not fire (it can still be run by hand)
    disabled = "disabled"
    #: its last outcome was failed, timed_out or interrupted
    failed = "failed"
    #: its last outcome was anything else: succeeded, or one that says nothing against its
    #: code (cancelled, or a fire that did not run: skipped, coalesced, missed)
    ok = "ok"
    #: it has no run yet
    never = "never"


class EnvStatus(StrEnum):
    """Where a task's Python environment stands."""

    #: the task needs none (a shell script without dependency files)
    none = "none"
    #: being built, or waiting for a build slot
    building = "building"
    ready = "ready"
    #: the last build failed; `error` says why, env.log has the installer's output
    failed = "failed"


class EnvInfo(BaseModel):
    """A task's environment as the API and CLI show it."""

    status: EnvStatus = EnvStatus.none
    hash: str | None = None
    #: the interpreter: implementation, version and path
    python: str | None = None
    #: the file the dependencies came from
    source: str | None = None
    requirements: list[str] = Field(default_factory=list)
    path: str | None = None
    built_at: datetime | None = None
    error: str | None = None
    #: what Tasse chose on the task's behalf (how a poetry.lock was installed)
    note: str | None = None


class TaskInfo(BaseModel):
    """A task as the API and CLI show it."""

    name: str
    #: the display name, if the task has one (`title:`); None when it has none
    title: str | None = None
    source: TaskSource = "folder"
    description: str = ""
    enabled: bool = True
    paused: bool = False
    schedules: list[dict[str, Any] | str] = Field(default_factory=list)
    next_run_at: datetime | None = None
    last_run: Run | None = None
    #: its runs alive now (queued or running), oldest first; `last_run` is the last ended
    active_runs: list[Run] = Field(default_factory=list)
    error: str | None = None
    folder: str | None = None
    command: list[str] = Field(default_factory=list)
    env: EnvInfo = Field(default_factory=EnvInfo)
    #: the policies in force: the task's own keys, the server's defaults for the rest
    policy: dict[str, Any] = Field(default_factory=dict)
    #: for tasks defined through the API or a seed file: the definition as stored
    definition: dict[str, Any] | None = None
    #: since when the task is paused (its fires are recorded `skipped`, "paused"); None if not
    paused_at: datetime | None = None
    #: why it was paused, if the one who paused it said
    paused_reason: str | None = None
    #: the task at a glance (`TaskState`: the first of its states that applies)
    state: TaskState = TaskState.never


class TaskCounts(BaseModel):
    """How many tasks there are, in all, by state and by source (every key, zeros too)."""

    total: int
    by_state: dict[TaskState, int]
    by_source: dict[TaskSource, int]


class RunCounts(BaseModel):
    """How many runs overlap the time from `since` to now, by status (every key, zeros too)."""

    since: datetime
    by_status: dict[RunStatus, int]


class Counts(BaseModel):
    """`GET /counts`: the numbers an overview shows at its top."""

    tasks: TaskCounts
    runs: RunCounts
