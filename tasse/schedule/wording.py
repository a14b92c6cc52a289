"""A task's schedules in words, for the dashboard: crontab lines, nicknames, trigger mappings.

cron-descriptor words the calendar fields (imported here and nowhere else). Where it reads a
field differently from Tasse, the field is rewritten first: a weekday step (`3/2` is Wed, Fri,
Sun in cronline.py, whose weekdays run to 7) becomes a list, a year `a/n` ends at 2099, and a
line's day of the month and weekday join with "or" only when cron(8) ORs them (neither field
starts with `*`). A cron mapping keeps APScheduler's meaning (day_of_week 0 = Monday, day AND
weekday, defaults below the last field given): APScheduler parses it, and its fields become
a crontab line where one says the same, or a plain listing where none does (`week`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.expressions import (
    AllExpression,
    LastDayOfMonthExpression,
    RangeExpression,
    WeekdayPositionExpression,
)
from cron_descriptor import CasingTypeEnum, ExpressionDescriptor, Options
from pydantic import TypeAdapter

from tasse.schedule.cronline import MACROS, CronLine, is_reboot, parse_line
from tasse.schedule.specs import CronSpec, DateSpec, IntervalSpec, Schedule

logger = logging.getLogger(__name__)

#: what describe_all says of a task without schedules (it runs only when started by hand)
NO_SCHEDULE = "No schedule"

_SCHEDULES: TypeAdapter[str | IntervalSpec | CronSpec | DateSpec] = TypeAdapter(Schedule)
# A fixed locale: words must not change with the server's LANG, and cron-descriptor warns
# (an error under pytest) when it has to guess one.
_OPTIONS = Options(locale_code="en_US", use_24hour_time_format=True)
_BLANKS = re.compile(r"[ \t]+")
#: cronline.py's last year: cron-descriptor reads a year `a/n` as running to 9999
_LAST_YEAR = 2099
_INTERVAL_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_DURATIONS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))
_POSITIONS = ("1", "2", "3", "4", "5", "L")  # APScheduler's 1st … 5th, last


def describe(schedule: dict[str, Any] | str) -> str:
    """One schedule as TaskInfo.schedules has it, in words; a readable fallback, never raises."""
    try:
        return _describe(_SCHEDULES.validate_python(schedule))
    except Exception:  # the dashboard must show something, whatever a schedule holds
        logger.debug("no words for schedule %r", schedule, exc_info=True)
        return _fallback(schedule)


def describe_all(schedules: Sequence[dict[str, Any] | str]) -> str:
    """A task's schedules in words, joined by "; "; NO_SCHEDULE when it has none."""
    if not schedules:
        return NO_SCHEDULE
    words = [describe(schedule) for schedule in schedules]
    return "; ".join([words[0], *(_mid_sentence(text) for text in words[1:])])


def _describe(spec: str | IntervalSpec | CronSpec | DateSpec) -> str:
    if isinstance(spec, str):
        return _line_words(spec)
    if isinstance(spec, DateSpec):
        return _extras(f"Once, at {_moment(spec.run_date)}", spec.timezone)
    main = _interval_words(spec) if isinstance(spec, IntervalSpec) else _mapping_words(spec)
    return _extras(main, spec.timezone, spec.start_date, spec.end_date, spec.jitter)


def _line_words(line: str) -> str:
    if is_reboot(line):
        return "When the server starts"
    parsed = parse_line(line)
    text = line.strip(" \t\r\n")
    fields = _BLANKS.split(MACROS[text.lower()] if text.startswith("@") else text)
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) == 6:
        fields = [*fields, "*"]
    fields[5] = _line_weekdays(fields[5], parsed)
    fields[6] = ",".join(_line_year(item) for item in fields[6].split(","))
    return _calendar_words(tuple(fields), either=not (parsed.dom_star or parsed.dow_star))


def _line_weekdays(field: str, parsed: CronLine) -> str:
    if field.startswith("*") and len(parsed.weekdays) == 7:
        return "*"
    # From the days cronline allows: cron-descriptor reads `0-7` as Sunday through Sunday,
    # `3/2` as Wednesday through Saturday (its weekdays stop at 6) and repeats `0,7`.
    return _weekday_field(parsed.weekdays)


def _weekday_field(days: Iterable[int]) -> str:
    """Weekdays (0 or 7 = Sunday) as a crontab field, Monday first, runs of 3 or more as ranges."""
    runs: list[list[int]] = []
    for day in sorted({day or 7 for day in days}):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        f"{run[0]}-{run[-1]}" if len(run) >= 3 else ",".join(map(str, run)) for run in runs
    )


def _line_year(item: str) -> str:
    base, slash, step = item.partition("/")
    if slash and base != "*" and "-" not in base:
        return f"{base}-{_LAST_YEAR}/{step}"
    return item


@lru_cache(maxsize=1024)
def _calendar_words(fields: tuple[str, ...], *, either: bool) -> str:
    """Seven crontab fields (second … year) in words; `either`: day of month OR weekday."""
    whole = ExpressionDescriptor(" ".join(fields), _OPTIONS)
    weekday = ""
    if fields[5] != "*":
        # Worded without the day of the month, so it says "only on" in every version; the
        # joining word is ours, by cron(8)'s rule: cron-descriptor 2.0 never says "or", 2.2
        # says it for `*/2` too, which cron ANDs.
        days_free = ExpressionDescriptor(" ".join([*fields[:3], "*", *fields[4:]]), _OPTIONS)
        weekday = days_free.get_day_of_week_description()
        if either:
            weekday = ", or " + weekday.removeprefix(", ").removeprefix("only ")
    text = (
        whole.get_time_of_day_description()
        + whole.get_day_of_month_description()
        + weekday
        + whole.get_month_description()
        + whole.get_year_description()
    )
    text = whole.transform_verbosity(text, use_verbose_format=False)
    return str(ExpressionDescriptor.transform_case(text, CasingTypeEnum.Sentence))


def _mapping_words(spec: CronSpec) -> str:
    # The zone does not change which values the fields allow; UTC spares a local-zone lookup.
    trigger = CronTrigger(timezone="UTC", **spec.fields())
    fields = {field.name: field.expressions for field in trigger.fields}
    line = _mapping_line(fields)
    if line is None:
        return "Cron: " + ", ".join(f"{name}={value}" for name, value in spec.fields().items())
    return _calendar_words(line, either=False)


def _mapping_line(fields: dict[str, list[Any]]) -> tuple[str, ...] | None:
    """A mapping's fields as seven crontab fields (second … year), or None where none say them."""
    days = _mapping_days(fields["day"], fields["day_of_week"])
    names = ("second", "minute", "hour", "month", "year")
    plain = {name: _plain(fields[name]) for name in names}
    if days is None or _plain(fields["week"]) != "*" or None in plain.values():
        return None
    second, minute, hour, month, year = (str(plain[name]) for name in names)
    return (second, minute, hour, days[0], month, days[1], year)


def _mapping_days(day: list[Any], weekday: list[Any]) -> tuple[str, str] | None:
    weekdays = _weekdays(weekday)
    if weekdays is None:
        return None
    if len(day) == 1 and isinstance(day[0], WeekdayPositionExpression):
        # `2nd fri` is a day expression in APScheduler, a weekday one (`5#2`) in crontab words.
        if weekdays != "*":
            return None
        position = _POSITIONS[day[0].option_num]
        separator = "" if position == "L" else "#"
        return "*", f"{(day[0].weekday + 1) % 7}{separator}{position}"
    if len(day) == 1 and isinstance(day[0], LastDayOfMonthExpression):
        return "L", weekdays
    days = _plain(day)
    return None if days is None else (days, weekdays)


def _plain(expressions: list[Any]) -> str | None:
    """Expressions crontab writes the same way (`*`, `*/5`, `1-5`, `jan-mar`), or None."""
    if all(isinstance(e, RangeExpression) or type(e) is AllExpression for e in expressions):
        return ",".join(str(e) for e in expressions)
    return None


def _weekdays(expressions: list[Any]) -> str | None:
    """APScheduler's weekdays (0 = Monday) as a crontab field, or None where it has no words."""
    days: set[int] = set()
    for e in expressions:
        if type(e) is AllExpression and not e.step:
            return "*"
        if type(e) is AllExpression:
            days.update(range(0, 7, e.step))
        elif isinstance(e, RangeExpression):
            days.update(range(e.first, (6 if e.last is None else e.last) + 1, e.step or 1))
        else:
            return None
    return _weekday_field(day + 1 for day in days)


def _interval_words(spec: IntervalSpec) -> str:
    amounts = [(getattr(spec, unit), unit[:-1]) for unit in _INTERVAL_UNITS if getattr(spec, unit)]
    if not amounts:
        raise ValueError("an interval of no length")  # refused by make_trigger: the fallback
    if len(amounts) == 1 and amounts[0][0] == 1:
        return f"Every {amounts[0][1]}"
    # In the units the task gave: "every 90 minutes" stays so, as its author wrote it.
    return "Every " + _joined([_amount(value, unit) for value, unit in amounts])


def _extras(
    main: str,
    zone: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    jitter: float | None = None,
) -> str:
    text = f"{main} ({zone})" if zone else main
    span = [f"from {_moment(start)}" if start else "", f"until {_moment(end)}" if end else ""]
    if any(span):
        text += ", " + " ".join(part for part in span if part)
    if jitter:
        text += f", with up to {_duration(jitter)} of random delay"
    return text


def _moment(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")
    offset = moment.utcoffset()
    if offset is None:
        return text
    minutes = int(offset.total_seconds()) // 60
    if not minutes:
        return f"{text} UTC"
    sign = "+" if minutes > 0 else "-"
    return f"{text} {sign}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"


def _duration(seconds: float) -> str:
    for unit, length in _DURATIONS:
        if seconds >= length and seconds % length == 0:
            return _amount(seconds / length, unit)
    return _amount(seconds, "second")


def _amount(value: float, unit: str) -> str:
    number = str(int(value)) if float(value).is_integer() else str(value)
    return f"{number} {unit}" if value == 1 else f"{number} {unit}s"


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _mid_sentence(text: str) -> str:
    # "At 09:30" continues a sentence as "at 09:30"; a raw line or name keeps its case.
    return text[0].lower() + text[1:] if text[1:2].islower() else text


def _fallback(schedule: object) -> str:
    if isinstance(schedule, str):
        text = schedule.strip()
    elif isinstance(schedule, dict):
        text = ", ".join(f"{key}={value}" for key, value in schedule.items())
    else:
        text = str(schedule)
    return text or "Empty schedule"
