"""One crontab line as Debian's cron reads it: the values each field allows, and its `*` flags.

Extensions to Debian's syntax, kept from the parser this replaced (schedule/crontab.py): a
leading seconds field (6 fields), a trailing year field (7 fields), macros in any case
(`@DAILY`), and `a/n` as `a-<last>/n` (Debian refuses it: "step specified without range").
Debian silently reads a reversed range (`5-2`) as empty; here it is an error. Only ASCII is
accepted, and only ASCII spaces and tabs separate fields.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_BLANKS = re.compile(r"[ \t]+")
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
_MONTH_LENGTHS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_LAYOUTS = {
    5: (_MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY),
    6: (_SECOND, _MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY),
    7: (_SECOND, _MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY, _YEAR),
}


@dataclass(frozen=True, kw_only=True)
class CronLine:
    """A parsed crontab line: the values each field allows and Debian's `*` flags."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    #: 0 = Sunday … 6 = Saturday (a 7 in the line is stored as 0)
    weekdays: frozenset[int]
    #: None: every year
    years: frozenset[int] | None
    #: Debian's DOM_STAR / DOW_STAR: the field starts with `*`; with either set, a day must
    #: match both the day of the month and the weekday, otherwise either one
    dom_star: bool
    dow_star: bool
    #: Debian's MIN_STAR / HR_STAR (and ours for seconds): the field starts with `*`
    second_star: bool
    minute_star: bool
    hour_star: bool
    sorted_seconds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    sorted_minutes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    sorted_hours: tuple[int, ...] = field(init=False, repr=False, compare=False)
    sorted_days: tuple[int, ...] = field(init=False, repr=False, compare=False)
    sorted_years: tuple[int, ...] | None = field(init=False, repr=False, compare=False)
    #: False for a line no calendar day matches, such as `0 0 30 2 *`
    some_day_matches: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, values, low, high in (
            ("seconds", self.seconds, 0, 59),
            ("minutes", self.minutes, 0, 59),
            ("hours", self.hours, 0, 23),
            ("days", self.days, 1, 31),
            ("months", self.months, 1, 12),
            ("weekdays", self.weekdays, 0, 6),
            ("years", self.years or {1}, 1, 9999),
        ):
            if not values or min(values) < low or max(values) > high:
                raise ValueError(f"{name} of {self.text!r} must be values in {low}-{high}")
        # Sorted copies for the fire-time search, which bisects them.
        object.__setattr__(self, "sorted_seconds", tuple(sorted(self.seconds)))
        object.__setattr__(self, "sorted_minutes", tuple(sorted(self.minutes)))
        object.__setattr__(self, "sorted_hours", tuple(sorted(self.hours)))
        object.__setattr__(self, "sorted_days", tuple(sorted(self.days)))
        years = None if self.years is None else tuple(sorted(self.years))
        object.__setattr__(self, "sorted_years", years)
        object.__setattr__(self, "some_day_matches", self._some_day_matches())

    def _some_day_matches(self) -> bool:
        if not (self.dom_star or self.dow_star):
            return True  # a day of the month or a weekday: every month has every weekday
        # Both must match: some allowed day must exist in some allowed month (each weekday
        # falls on it in some year); a set of years is searched to its end instead.
        return min(self.days) <= max(_MONTH_LENGTHS[month] for month in self.months)

    @property
    def wildcard(self) -> bool:
        """cron(8)'s wildcard job (a time field starts with `*`, or @hourly): no DST catch-up."""
        return self.second_star or self.minute_star or self.hour_star


def is_reboot(line: str) -> bool:
    """`@reboot`: once, when the server starts (no calendar, so parse_line refuses it)."""
    return line.strip(" \t\r\n").lower() == "@reboot"


def parse_line(line: str) -> CronLine:
    """Parse a crontab line: 5 fields, 6 (a leading second), 7 (and a trailing year) or a macro.

    Raises ValueError naming the field and the value at fault.
    """
    text = line.strip(" \t\r\n")
    _refuse_non_ascii(text)
    if text.startswith("@"):
        text = _expand(text)
    parts = _BLANKS.split(text)
    if len(parts) not in _LAYOUTS:
        raise ValueError(
            f"a crontab line has 5, 6 or 7 fields (minute hour day month weekday, with "
            f"a leading second and a trailing year); {line!r} has {len(parts)}"
        )
    if len(parts) == 5:
        parts = ["0", *parts]
    sets = [_values(spec, part) for spec, part in zip(_LAYOUTS[len(parts)], parts, strict=False)]
    year = None if len(parts) < 7 or parts[6] == "*" else frozenset(sets[6])
    return CronLine(
        text=line,
        seconds=frozenset(sets[0]),
        minutes=frozenset(sets[1]),
        hours=frozenset(sets[2]),
        days=frozenset(sets[3]),
        months=frozenset(sets[4]),
        weekdays=frozenset(value % 7 for value in sets[5]),
        years=year,
        # Debian's entry.c sets these flags from the first character of the field only.
        dom_star=parts[3].startswith("*"),
        dow_star=parts[5].startswith("*"),
        second_star=parts[0].startswith("*"),
        minute_star=parts[1].startswith("*"),
        hour_star=parts[2].startswith("*"),
    )


def _expand(text: str) -> str:
    if is_reboot(text):
        raise ValueError("@reboot has no fire times (check is_reboot before parse_line)")
    if text.lower() not in MACROS:
        raise ValueError(f"unknown macro {text!r} (known: {', '.join(MACROS)}, @reboot)")
    # The expansion gives the same flags as Debian's entry.c: only @hourly is a wildcard job
    # (HR_STAR); the day flags differ there but select the same days.
    return MACROS[text.lower()]


def _refuse_non_ascii(text: str) -> None:
    for index, char in enumerate(text):
        if not char.isascii():
            name = unicodedata.name(char, "an unnamed character")
            parts = _BLANKS.split(text)
            where = f"character {index + 1}"
            if len(parts) in _LAYOUTS:
                position = len(_BLANKS.split(text[: index + 1])) - 1
                where = f"field {_LAYOUTS[len(parts)][position].name}"
            raise ValueError(
                f"{where}: {char!r} (U+{ord(char):04X} {name}) in {text!r} is not ASCII; "
                "fields take ASCII digits, names and * , - / and are separated by spaces or tabs"
            )


def _values(spec: _Field, text: str) -> set[int]:
    values: set[int] = set()
    for item in text.lower().split(","):
        values.update(_item_values(spec, item, text))
    return values


def _item_values(spec: _Field, item: str, whole: str) -> range:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ValueError(f"field {spec.name}: step {step_text!r} in {whole!r} is not 1 or more")
        step = int(step_text)
    if base == "*":
        low, high = spec.low, spec.high
    elif "-" in base:
        start, _, end = base.partition("-")
        low, high = _number(spec, start, whole), _number(spec, end, whole)
        if low > high:
            raise ValueError(f"field {spec.name}: range {base!r} in {whole!r} runs backwards")
    else:
        low = _number(spec, base, whole)
        # `5/15` means from 5 to the end in steps of 15, as cronie and most crons read it.
        high = spec.high if slash else low
    return range(low, high + 1, step)


def _number(spec: _Field, text: str, whole: str) -> int:
    if text in spec.names:
        return spec.names.index(text) + spec.first_named
    # (the line is ASCII by now, so isdigit() cannot accept Arabic-Indic or full-width digits)
    if not text.isdigit():
        names = f" or a name ({spec.names[0]}, …)" if spec.names else ""
        raise ValueError(f"field {spec.name}: {text!r} in {whole!r} is not a number{names}")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise ValueError(
            f"field {spec.name}: {value} in {whole!r} is outside {spec.low}-{spec.high}"
        )
    return value
