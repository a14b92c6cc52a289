"""The `notify:` key of task.yaml (and of a defined task): who hears of the task, and when.

```yaml
notify:
  targets: ["mailto://ops@example.org"]   # this task's own targets (Apprise or webhook URLs)
  tags: [pager]                           # … and the server's targets with these tags
  when: [failed, recovered]               # events; default: the server's `notify_on`
  after_failures: 3                       # N failures in a row
  longer_than: 2x                         # seconds, or a factor of the median duration
  shorter_than: 5                         #   of the last 20 successful runs
  no_success_for: 26h                     # a dead-man switch: fires when nothing runs too
```
The schema only: `notify/` decides what each outcome tells and to whom.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

#: what an outcome can tell of by itself (the rest come from the keys below)
Event = Literal[
    "failed",
    "timed_out",
    "missed",
    "skipped",
    "retries_exhausted",
    "recovered",
    "env_failed",
    "succeeded",
]
#: what a target hears of when nothing says otherwise; a success never notifies unasked
DEFAULT_EVENTS: tuple[Event, ...] = (
    "failed",
    "timed_out",
    "missed",
    "retries_exhausted",
    "recovered",
    "env_failed",
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_FACTOR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*$")


def seconds_of(value: object) -> object:
    """`26h`, `90m`, `45s`, `2d`, or a number of seconds, as seconds."""
    if isinstance(value, str):
        found = _SPAN.match(value)
        if not found:
            raise ValueError(f"{value!r} is not a time span like 90s, 10m, 26h or 2d")
        return float(found[1]) * _UNITS[found[2] or "s"]
    return value


class Limit(BaseModel):
    """A duration bound: seconds, or a factor of the task's median successful duration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float | None = Field(None, gt=0)
    factor: float | None = Field(None, gt=0)

    def describe(self) -> str:
        """The bound as task.yaml says it."""
        return f"{self.factor:g}x the median" if self.factor else f"{self.seconds:g} s"


def _limit_of(value: object) -> object:
    if isinstance(value, str) and (found := _FACTOR.match(value)):
        return {"factor": float(found[1])}
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"seconds": seconds_of(value)}
    return value


class NotifySpec(BaseModel):
    """Targets and rules of one task's notifications; every key optional."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    #: Apprise URLs or `webhook+https://…` targets of this task alone
    targets: list[str] = Field(default_factory=list, max_length=20)
    #: the server's targets with any of these tags hear of this task
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]] = Field(
        default_factory=list, max_length=20
    )
    #: the events told (None: the server's `notify_on`); `[]` tells only the rules below.
    #: Not `on:`, which YAML reads as `true`
    when: list[Event] | None = None
    #: tell when this many runs in a row failed (or timed out), once per streak
    after_failures: int | None = Field(None, ge=1, le=1000)
    longer_than: Annotated[Limit | None, BeforeValidator(_limit_of)] = None
    shorter_than: Annotated[Limit | None, BeforeValidator(_limit_of)] = None
    #: seconds (or `26h`) without a success before a dead-man alert, even if nothing runs
    no_success_for: Annotated[float, BeforeValidator(seconds_of), Field(gt=0)] | None = None

    @property
    def needs_history(self) -> bool:
        """Whether its rules read more of the past than the last run."""
        factor = any(limit and limit.factor for limit in (self.longer_than, self.shorter_than))
        return bool(factor or self.after_failures or self.no_success_for)
