"""What a task is: the task.yaml schema (`TaskSpec`) and a loaded task (`Task`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tasse.envs.dependencies import Dependencies
from tasse.envs.interpreters import parse_request
from tasse.models import TaskSource
from tasse.schedule.specs import (
    CronSpec,
    DateSpec,
    IntervalSpec,
    Jitter,
    Schedule,
    TimeZoneName,
    TriggerSpec,
)
from tasse.tasks.notify_spec import NotifySpec
from tasse.values import TASK_NAME_PATTERN, Text, Title, VariableName

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
#: what a run reads on its standard input fits one pipe write (PIPE_BUF), so the runner
#: hands it over before the process starts and never waits for a reader
MAX_STDIN_BYTES = 4096


def _python_request(value: str) -> str:
    parse_request(value)
    return value


def _fits_a_pipe(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_STDIN_BYTES:
        raise ValueError(f"is longer than {MAX_STDIN_BYTES} bytes; larger input belongs in a file")
    return value


class TaskSpec(_Spec):
    """What a task.yaml may say; every key is optional."""

    #: the display name ("Nightly report"); the name stays the task's id in URLs and logs
    title: Title | None = None
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
    #: text every run reads on its standard input (cron's `%` lines); none: /dev/null
    stdin: Annotated[Text, AfterValidator(_fits_a_pipe)] | None = None

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
    #: who hears of this task's outcomes, and when (docs/notifications.md)
    notify: NotifySpec | None = None
    #: the queue its runs go to in a cluster with workers: the workers that listen on it
    #: have what it needs (docs/cluster.md); ignored where runs run on the node itself
    queue: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

    @property
    def triggers(self) -> list[IntervalSpec | CronSpec | DateSpec | str]:
        """Every schedule of the task: `scheduler:`, `schedule:`, then `schedules:`."""
        first: list[IntervalSpec | CronSpec | DateSpec | str] = []
        if self.scheduler:
            first.append(self.scheduler)
        if self.schedule:
            first.append(self.schedule)
        return first + list(self.schedules)


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

    @property
    def python(self) -> str | None:
        """The interpreter task.yaml asks for (`python:`), if any."""
        return self.spec.python

    def argv(self, extra: list[str] | None = None, python: str = PYTHON) -> list[str]:
        """The full command line: entrypoint, the task's `args`, then any extra ones."""
        command = list(self.command)
        if command and command[0] == PYTHON:
            command[0] = python
        return [*command, *self.spec.args, *(extra or [])]
