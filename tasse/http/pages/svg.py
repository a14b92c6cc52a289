"""What every chart shares: the <svg> element, run order, titles, durations and local times.

Text goes into the markup only through `markupsafe.escape` (or, for what this module
formats itself from numbers and enums, as is). Colours are never set here: marks carry
`st-<status>` classes and the page's stylesheet colours them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from tasse.models import RunLike, RunStatus

#: the outcomes of fires that did not run (runs/ledger.py): no start, no duration
LEDGER = frozenset({RunStatus.skipped, RunStatus.missed, RunStatus.coalesced})
#: each status's mark class and its words in a title, made once
CLASS = {status: f"st-{status.value}" for status in RunStatus}
WORDS = {status: status.value.replace("_", " ") for status in RunStatus}
#: between the parts of a title
SEP = " · "
#: readable axis steps in seconds; 1-2-5 below a minute, then clock-like
#: the seconds of a quarter hour, the time a local date is cached for
_DAY = 86_400
#: date.toordinal() of 1970-01-01: a day count since the epoch plus this is a date's ordinal
_EPOCH_ORDINAL = 719_163
_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


def open_svg(kind: str, width: int, height: int, label: str) -> str:
    """The opening <svg> tag of a chart: its size, role="img" and the summary as aria-label."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">'
    )


def empty_svg(kind: str, width: int, height: int, text: str) -> Markup:
    """A small chart that only says `text` (no runs to draw)."""
    return Markup(
        f'{open_svg(kind, width, height, text)}<text class="label empty" x="{width // 2}" '
        f'y="{height // 2 + 4}" text-anchor="middle">{escape(text)}</text></svg>'
    )


def moment(run: RunLike) -> datetime | None:
    """When a run happened for ordering and days: its fire time, else its start or end."""
    return run.scheduled_at or run.started_at or run.finished_at


def chronological(runs: Iterable[RunLike]) -> list[RunLike]:
    """Runs oldest first; one without any time (queued, never fired) counts as newest."""

    def key(run: RunLike) -> tuple[float, str]:
        when = moment(run)
        return (math.inf if when is None else when.timestamp(), run.id)

    return sorted(runs, key=key)


def duration(run: RunLike, now: datetime) -> float | None:
    """Seconds from start to end (to `now` while running); None for a run that never started."""
    if run.started_at is None or run.status in LEDGER:
        return None
    end = run.finished_at or (now if run.status is RunStatus.running else run.started_at)
    return max(0.0, (end - run.started_at).total_seconds())


def format_duration(seconds: float) -> str:
    """A duration as people read it: "0.4 s", "42 s", "2 min 5 s", "1 h 3 min"."""
    if seconds < 10 and not float(seconds).is_integer():
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole // 60, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def duration_ticks(longest: float) -> list[float]:
    """2 to 4 readable ticks from 0 whose last one is at or above `longest`."""
    step = next((s for s in _STEPS if longest <= 3 * s), None)
    if step is None:
        step = 3600 * math.ceil(longest / 3 / 3600)
    count = max(1, math.ceil(longest / step))
    return [step * i for i in range(count + 1)]


def tally(statuses: Iterable[RunStatus] | Mapping[RunStatus, int]) -> str:
    """How many of each status, in the order RunStatus lists them: "24 succeeded, 1 missed"."""
    counts = Counter(statuses)
    return ", ".join(f"{counts[s]} {WORDS[s]}" for s in RunStatus if counts[s])


def run_href(run_id: str) -> str:
    """The run page's address, ready for an attribute."""
    return str(escape(f"/runs/{quote(run_id, safe='')}"))


def task_href(name: str) -> str:
    """The task page's address, ready for an attribute."""
    return str(escape(f"/tasks/{quote(name, safe='')}"))


class Clock:
    """Local times in one zone as "2025-11-03 14:05:09 CET", each minute formatted once."""

    def __init__(self, zone: ZoneInfo):
        self.zone = zone
        #: a minute's text before and after its seconds; ("", "") where the cache can't serve
        self._minutes: dict[int, tuple[str, str]] = {}
        #: each UTC day's offset from UTC in seconds; None where the offset changes in it
        self._offsets: dict[int, int | None] = {}

    def day(self, when: datetime) -> date:
        """The local date of an aware datetime."""
        timestamp = when.timestamp()
        utc_day = math.floor(timestamp / _DAY)
        if utc_day not in self._offsets:
            self._offsets[utc_day] = self._day_offset(utc_day)
        offset = self._offsets[utc_day]
        if offset is None:
            return when.astimezone(self.zone).date()
        return date.fromordinal(_EPOCH_ORDINAL + math.floor((timestamp + offset) / _DAY))

    def at(self, timestamp: float) -> str:
        """The local time of a POSIX timestamp, to the second."""
        minute, second = divmod(math.floor(timestamp), 60)
        parts = self._minutes.get(minute)
        if parts is None:
            parts = self._minutes[minute] = self._minute(minute)
        if not parts[0]:
            return self.full(timestamp)
        return f"{parts[0]}:{second:02d}{parts[1]}"

    def of(self, when: datetime) -> str:
        """The local time of an aware datetime, to the second."""
        return self.at(when.timestamp())

    def full(self, timestamp: float) -> str:
        """The local time of a timestamp, formatted without the cache."""
        local = datetime.fromtimestamp(timestamp, self.zone)
        return f"{_minute_text(local)}:{local.second:02d} {local.tzname()}"

    def _day_offset(self, utc_day: int) -> int | None:
        # Two lookups a day instead of one a run: a 90-day calendar of a task that runs each
        # minute reads 130,000 runs. A day with a change of offset (DST) is left to per run.
        first, last = (
            datetime.fromtimestamp(utc_day * _DAY + s, self.zone).utcoffset() for s in (0, _DAY - 1)
        )
        if first is None or first != last:
            return None
        return int(first.total_seconds())

    def _minute(self, minute: int) -> tuple[str, str]:
        local = datetime.fromtimestamp(minute * 60, self.zone)
        # An offset with seconds (local mean time before 1900) shifts the seconds too.
        if local.second:
            return "", ""
        return _minute_text(local), f" {local.tzname()}"


def _minute_text(local: datetime) -> str:
    # by hand: strftime takes twice as long, and a day's timeline formats a thousand minutes
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"


def describe(run: RunLike, clock: Clock, now: datetime) -> str:
    """A run's tooltip, unescaped: task, id, status, when, and how long (or why it did not run)."""
    parts = [run.task, run.id, WORDS[run.status]]
    when = moment(run) if run.started_at is None else run.started_at
    if when is not None:
        parts.append(("due " if run.started_at is None else "") + clock.of(when))
    parts.append(_how_long(run, now))
    return SEP.join(parts)


def _how_long(run: RunLike, now: datetime) -> str:
    if run.status in LEDGER:
        return f"did not run: {run.error}" if run.error else "did not run"
    seconds = duration(run, now)
    if seconds is None:
        return "not started"
    text = format_duration(seconds)
    return f"{text} so far" if run.status is RunStatus.running else text
