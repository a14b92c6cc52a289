"""Crontab lines → calendar fields for APScheduler, with the meaning Debian's cron gives them.

APScheduler's own `CronTrigger.from_crontab` differs from cron in two ways that matter:
weekday 0 is Monday there (Sunday in cron), and a line restricting both the day of the
month and the weekday fires only when both match (cron fires when either does). Here
every field is parsed and checked by us, then handed to APScheduler as explicit values.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    #: the first name stands for this number (jan = 1, sun = 0)
    first_named: int = 0


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY = _Field("day", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS, 1)
# 7 is Sunday as well as 0, as in every cron.
_WEEKDAY = _Field("day_of_week", 0, 7, _WEEKDAYS, 0)
_YEAR = _Field("year", 1970, 2099)


@dataclass(frozen=True)
class CronFields:
    """One set of APScheduler cron fields (day_of_week by name, so 0 = Monday never matters)."""

    second: str
    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str
    year: str = "*"

    def as_options(self) -> dict[str, str]:
        """The fields as keyword arguments for APScheduler's CronTrigger."""
        return {
            "second": self.second,
            "minute": self.minute,
            "hour": self.hour,
            "day": self.day,
            "month": self.month,
            "day_of_week": self.day_of_week,
            "year": self.year,
        }


def is_reboot(line: str) -> bool:
    """`@reboot`: once, when the server starts."""
    return line.strip().lower() == "@reboot"


def parse_crontab(line: str) -> tuple[CronFields, ...]:
    """Parse a crontab line; two field sets mean "either matches" (day OR weekday).

    5 fields: minute hour day month weekday; 6: a leading second; 7: and a trailing year.
    Raises ValueError naming the field and the value at fault.
    """
    text = " ".join(line.split())
    if text.startswith("@"):
        if is_reboot(text):
            return ()  # no calendar: once, when the server starts (see scheduler.py)
        if text.lower() not in MACROS:
            raise ValueError(f"unknown macro {text!r} (known: {', '.join(MACROS)})")
        text = MACROS[text.lower()]
    parts = text.split(" ")
    if len(parts) not in (5, 6, 7):
        raise ValueError(
            f"a crontab line has 5, 6 or 7 fields (minute hour day month weekday, with "
            f"a leading second and a trailing year); {line!r} has {len(parts)}"
        )
    if len(parts) == 5:
        parts = ["0", *parts]
    second, minute, hour, day, month, weekday = parts[:6]
    year = parts[6] if len(parts) == 7 else "*"
    common = {
        "second": _render(_SECOND, second),
        "minute": _render(_MINUTE, minute),
        "hour": _render(_HOUR, hour),
        "month": _render(_MONTH, month),
        "year": _render(_YEAR, year),
    }
    days, weekdays = _render(_DAY, day), _weekdays(weekday)
    # Debian's cron: a field that starts with `*` (even `*/4`) counts as unrestricted; when
    # neither the day nor the weekday does, a time matching either of them fires.
    if day.startswith("*") or weekday.startswith("*"):
        return (CronFields(day=days, day_of_week=weekdays, **common),)
    return (
        CronFields(day=days, day_of_week="*", **common),
        CronFields(day="*", day_of_week=weekdays, **common),
    )


def _weekdays(text: str) -> str:
    values = _values(_WEEKDAY, text)
    days = {value % 7 for value in values}
    if len(days) == 7:
        return "*"
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def _render(field: _Field, text: str) -> str:
    values = sorted(_values(field, text))
    if values == list(range(field.low, field.high + 1)):
        return "*"
    # As few expressions as possible: APScheduler tries each one for every fire time, so
    # `*/15` as `0-45/15` costs a quarter of `0,15,30,45`.
    steps = {b - a for a, b in itertools.pairwise(values)}
    if len(values) >= 3 and len(steps) == 1 and (step := steps.pop()) > 1:
        return f"{values[0]}-{values[-1]}/{step}"
    return ",".join(
        str(first) if first == last else f"{first}-{last}" for first, last in _runs(values)
    )


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as (first, last) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _values(field: _Field, text: str) -> set[int]:
    values: set[int] = set()
    for item in text.lower().split(","):
        values.update(_item_values(field, item, text))
    return values


def _item_values(field: _Field, item: str, whole: str) -> range:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ValueError(
                f"field {field.name}: step {step_text!r} in {whole!r} is not 1 or more"
            )
        step = int(step_text)
    if base == "*":
        low, high = field.low, field.high
    elif "-" in base:
        start, _, end = base.partition("-")
        low, high = _number(field, start, whole), _number(field, end, whole)
        if low > high:
            raise ValueError(f"field {field.name}: range {base!r} in {whole!r} runs backwards")
    else:
        low = _number(field, base, whole)
        # `5/15` means from 5 to the end in steps of 15, as cronie and most crons read it.
        high = field.high if slash else low
    return range(low, high + 1, step)


def _number(field: _Field, text: str, whole: str) -> int:
    if text in field.names:
        return field.names.index(text) + field.first_named
    if not text.isdigit():
        names = f" or a name ({field.names[0]}, …)" if field.names else ""
        raise ValueError(f"field {field.name}: {text!r} in {whole!r} is not a number{names}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(
            f"field {field.name}: {value} in {whole!r} is outside {field.low}-{field.high}"
        )
    return value
