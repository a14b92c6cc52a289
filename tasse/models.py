"""Domain types: the task.yaml schema, a loaded task, and a run with its status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tasse.envs.dependencies import Dependencies
from tasse.envs.interpreters import parse_request
from tasse.schedule.specs import (
    CronSpec,
    DateSpec,
    IntervalSpec,
    Jitter,
    Schedule,
    TimeZoneName,
    TriggerSpec,
)
from tasse.values import TASK_NAME_PATTERN, Text, VariableName

#: stands for the task environment's interpreter in a command (`python task.py`)
PYTHON = "python"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


#: what a fire (or manual run) does when `max_parallel` runs of its task are alive already
Overlap = Literal["skip", "queue", "parallel", "replace"]
#: which of the fires that came due while the server was down still run
Catchup = Literal["none", "latest", "all"]
#: a finite number of seconds, at most a day (waits, graces and delays)
Seconds = Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)]


def _python_request(value: str) -> str:
    parse_request(value)
    return value


class TaskSpec(_Spec):
    """What a task.yaml may say; every key is optional."""

    description: str = ""
    enabled: bool = True
    scheduler: TriggerSpec | None = None
    schedule: Schedule | None = None
    schedules: list[Schedule] = Field(default_factory=list)
    entrypoint: str | None = None
    args: list[Text] = Field(default_factory=list)
    env: dict[VariableName, Text] = Field(default_factory=dict)
    timeout: float | None = Field(None, gt=0)
    timezone: TimeZoneName | None = None
    #: the interpreter: `3.12`, `3.12.1` or a specifier like `>=3.10,<3.13`
    python: Annotated[str, AfterValidator(_python_request)] | None = None

    # -- policies (docs: README "Policies") ------------------------------------------------
    #: skip: a fire while the task runs is recorded `skipped` (a manual run gets 409);
    #: queue: it waits and runs next (further fires meanwhile are `coalesced` into it);
    #: parallel: it runs alongside; replace: the running one is stopped for it
    overlap: Overlap = "skip"
    #: runs of the task alive at once before `overlap` applies (`parallel`: no limit)
    max_parallel: int | None = Field(None, ge=1, le=1000)
    #: seconds a fire may come late (server busy) and still run; None: the server's (60)
    misfire_grace_time: Seconds | None = Field(None, gt=0)
    #: fires due while the server was down: none run, the latest runs, or all run in turn
    catchup: Catchup = "latest"
    #: runs again after a failure or timeout, this many times at most
    retries: int = Field(0, ge=0, le=100)
    #: seconds before the first retry; each further retry waits twice as long …
    retry_delay: Seconds = 10.0
    #: … but never longer than this
    retry_max_delay: Seconds = 3600.0
    #: seconds between SIGTERM and SIGKILL when a run is stopped; None: the server's (10)
    kill_grace: Seconds | None = None
    #: random delay of up to this many seconds for every schedule that sets none itself
    jitter: Jitter | None = None

    @property
    def triggers(self) -> list[IntervalSpec | CronSpec | DateSpec | str]:
        """Every schedule of the task: `scheduler:`, `schedule:`, then `schedules:`."""
        first: list[IntervalSpec | CronSpec | DateSpec | str] = []
        if self.scheduler:
            first.append(self.scheduler)
        if self.schedule:
            first.append(self.schedule)
        return first + list(self.schedules)


#: where a task is defined: its folder, the HTTP API, or a seed file
TaskSource = Literal["folder", "api", "seed"]


class Task(_Spec):
    """A loaded task: its spec plus the command that runs it."""

    name: str = Field(pattern=TASK_NAME_PATTERN)
    folder: Path
    spec: TaskSpec
    command: tuple[str, ...]
    source: TaskSource = "folder"
    #: what its Python environment holds; None when it needs none (a shell script
    #: without dependency files)
    dependencies: Dependencies | None = None
    #: a defined task that runs another task's code (resolved at each run)
    reference: str | None = None

    def argv(self, extra: list[str] | None = None, python: str = PYTHON) -> list[str]:
        """The full command line: entrypoint, the task's `args`, then any extra ones."""
        command = list(self.command)
        if command and command[0] == PYTHON:
            command[0] = python
        return [*command, *self.spec.args, *(extra or [])]


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


class RunRequest(_Spec):
    """The optional body of `POST /tasks/{name}/run`."""

    args: list[Text] = Field(default_factory=list, max_length=1000)
    env: dict[VariableName, Text] = Field(default_factory=dict)
    params: dict[VariableName, Text] = Field(default_factory=dict)


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
    source: TaskSource = "folder"
    description: str = ""
    enabled: bool = True
    schedules: list[dict[str, Any] | str] = Field(default_factory=list)
    next_run_at: datetime | None = None
    last_run: Run | None = None
    error: str | None = None
    folder: str | None = None
    command: list[str] = Field(default_factory=list)
    env: EnvInfo = Field(default_factory=EnvInfo)
    #: the policies in force: the task's own keys, the server's defaults for the rest
    policy: dict[str, Any] = Field(default_factory=dict)
    #: for tasks defined through the API or a seed file: the definition as stored
    definition: dict[str, Any] | None = None
