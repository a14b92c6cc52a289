"""Schedules in task.yaml: trigger mappings (APScheduler's options) and crontab lines."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

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

from tasse.schedule.cronline import is_reboot, parse_line
from tasse.values import check_timezone, scalar_to_text

CronField = Annotated[str, BeforeValidator(scalar_to_text)]


TimeZoneName = Annotated[str, AfterValidator(check_timezone)]


#: a hundred years: beyond it datetime arithmetic overflows, and no schedule means it
MAX_SECONDS = 100 * 365 * 86400
#: a finite, non-negative count of time units
Amount = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
#: at most a day of random delay
Jitter = Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)]


class _TriggerSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

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
    """Accept a crontab line that Tasse can fire (see tasse.schedule.cronline), or @reboot."""
    if not is_reboot(line):
        parse_line(line)
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
