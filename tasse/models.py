"""Domain types: the task.yaml schema, a loaded task, and a run with its status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from tasse.crontab import parse_crontab

TASK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _scalar_to_text(value: Any) -> Any:
    """YAML turns `PORT: 8080` into an int; env values and args are text for a process."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _passable_to_a_process(value: str) -> str:
    # A NUL byte or a lone surrogate cannot cross into argv or the environment.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text") from None
    return value


Text = Annotated[str, BeforeValidator(_scalar_to_text), AfterValidator(_passable_to_a_process)]


def _variable_name(name: str) -> str:
    if not name or not name.isascii() or not name.replace("_", "a").isalnum():
        raise ValueError(f"{name!r} is not a valid variable name (letters, digits, _)")
    return name


#: the name of an environment variable (or of a run parameter)
VariableName = Annotated[str, AfterValidator(_variable_name)]
CronField = Annotated[str, BeforeValidator(_scalar_to_text)]


def check_timezone(value: str) -> str:
    """Accept an IANA zone name such as `Europe/Berlin`; reject anything zoneinfo does not know."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like 'Europe/Berlin')"
        ) from None
    return value


TimeZoneName = Annotated[str, AfterValidator(check_timezone)]


#: a hundred years: beyond it datetime arithmetic overflows, and no schedule means it
MAX_SECONDS = 100 * 365 * 86400
#: a finite, non-negative count of time units
Amount = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
#: at most a day of random delay
Jitter = Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _TriggerSpec(_Spec):
    timezone: TimeZoneName | None = None


class IntervalSpec(_TriggerSpec):
    """Fire every so often (APScheduler's interval trigger)."""

    trigger: Literal["interval"]
    weeks: Amount = 0
    days: Amount = 0
    hours: Amount = 0
    minutes: Amount = 0
    seconds: Amount = 0
    start_date: datetime | None = None
    end_date: datetime | None = None
    jitter: Jitter | None = None

    @model_validator(mode="after")
    def _sensible_length(self) -> IntervalSpec:
        period = self.period_seconds()
        if 0 < period < 1:
            raise ValueError(f"an interval of {period:g} s is shorter than 1 second")
        if period > MAX_SECONDS:
            raise ValueError(f"an interval of {period:g} s is longer than 100 years")
        return self

    def period_seconds(self) -> float:
        """The interval's length in seconds."""
        return (
            self.weeks * 604800
            + self.days * 86400
            + self.hours * 3600
            + self.minutes * 60
            + self.seconds
        )


class CronSpec(_TriggerSpec):
    """Fire when the calendar fields match (APScheduler's cron trigger: day_of_week 0 = Monday)."""

    trigger: Literal["cron"]
    year: CronField | None = None
    month: CronField | None = None
    day: CronField | None = None
    week: CronField | None = None
    day_of_week: CronField | None = None
    hour: CronField | None = None
    minute: CronField | None = None
    second: CronField | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    jitter: Jitter | None = None

    def fields(self) -> dict[str, str]:
        """The calendar fields that are set, by name."""
        names = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
        return {name: value for name in names if (value := getattr(self, name)) is not None}


class DateSpec(_TriggerSpec):
    """Fire once, at `run_date`."""

    trigger: Literal["date"]
    run_date: datetime


TriggerSpec = Annotated[IntervalSpec | CronSpec | DateSpec, Field(discriminator="trigger")]


def check_crontab(line: str) -> str:
    """Accept a crontab line that Tasse can fire (see tasse.crontab)."""
    parse_crontab(line)
    return line


#: a crontab line: `*/5 * * * *`, with an optional leading second and trailing year
CrontabLine = Annotated[str, AfterValidator(check_crontab)]


def _schedule_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "crontab"
    if isinstance(value, dict):
        return value.get("trigger")
    return getattr(value, "trigger", None)


#: one item of `schedules:`: a crontab line or a trigger mapping
Schedule = Annotated[
    Annotated[CrontabLine, Tag("crontab")]
    | Annotated[IntervalSpec, Tag("interval")]
    | Annotated[CronSpec, Tag("cron")]
    | Annotated[DateSpec, Tag("date")],
    Discriminator(
        _schedule_kind,
        custom_error_type="invalid_schedule",
        custom_error_message="a schedule is a crontab line or a mapping with trigger: "
        "interval, cron or date",
    ),
]


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
    """A task as loaded from its folder: its spec plus the command that runs it."""

    name: str = Field(pattern=TASK_NAME_PATTERN)
    folder: Path
    spec: TaskSpec
    command: tuple[str, ...]
    source: Literal["folder"] = "folder"

    def argv(self, extra: list[str] | None = None) -> list[str]:
        """The full command line: entrypoint, the task's `args`, then any extra ones."""
        return [*self.command, *self.spec.args, *(extra or [])]


class RunStatus(StrEnum):
    """Where a run stands; the last five are final outcomes of a fire that did not run."""

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

    @property
    def is_final(self) -> bool:
        """True once the run will not change any more."""
        return self not in (RunStatus.queued, RunStatus.running)


class RunTrigger(StrEnum):
    """Why a run was started; the child sees it as TASSE_TRIGGER."""

    schedule = "schedule"
    manual = "manual"


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


class RunRequest(_Spec):
    """The optional body of `POST /tasks/{name}/run`."""

    args: list[Text] = Field(default_factory=list, max_length=1000)
    env: dict[VariableName, Text] = Field(default_factory=dict)
    params: dict[VariableName, Text] = Field(default_factory=dict)


class TaskInfo(BaseModel):
    """A task as the API and CLI show it."""

    name: str
    source: Literal["folder"] = "folder"
    description: str = ""
    enabled: bool = True
    schedules: list[dict[str, Any] | str] = Field(default_factory=list)
    next_run_at: datetime | None = None
    last_run: Run | None = None
    error: str | None = None
    folder: str | None = None
    command: list[str] = Field(default_factory=list)
