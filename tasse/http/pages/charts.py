"""Server-drawn SVG charts of runs for the dashboard's pages, as `Markup` for Jinja2.

Pure functions of `Run`s (and the zone to show times in); the timeline lives in
`timeline.py` and is importable from here too. Every mark carries `st-<status>`, and
every chart `role="img"` with a summary in `aria-label`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from tasse.http.pages.svg import (
    CLASS,
    WORDS,
    Clock,
    chronological,
    describe,
    duration,
    duration_ticks,
    empty_svg,
    format_duration,
    moment,
    open_svg,
    run_href,
    tally,
)
from tasse.http.pages.timeline import timeline
from tasse.models import RunLike, RunStatus

__all__ = ["duration_chart", "outcome_calendar", "outcome_strip", "timeline"]

#: the duration chart's margins: tick labels at left, marks of fires that did not run below
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 6, 8, 12
#: how many runs the duration chart shows
_LAST = 100
#: a few runs still get narrow bars rather than slabs across the chart
_MIN_SLOTS = 30
#: the strip's squares and the calendar's cells: size and distance apart
_SQUARE, _SQUARE_PITCH = 10, 12
_CELL, _CELL_PITCH, _CAL_LEFT, _CAL_TOP = 11, 13, 30, 16
#: pixels a three-letter month name takes beyond its column
_MONTH_LABEL = 14
#: a day's cell takes the first of these it saw: the worst outcome of the day
SEVERITY = (
    RunStatus.failed,
    RunStatus.timed_out,
    RunStatus.interrupted,
    RunStatus.missed,
    RunStatus.cancelled,
    RunStatus.skipped,
    RunStatus.coalesced,
    RunStatus.succeeded,
    RunStatus.running,
    RunStatus.queued,
)
_WEEKDAYS = ((0, "Mon"), (2, "Wed"), (4, "Fri"))


@dataclass(frozen=True)
class _Bars:
    """The duration chart's vertical scale and what its titles need."""

    base: float
    plot_height: float
    top: float
    bar_width: float
    clock: Clock
    now: datetime

    def y(self, seconds: float) -> float:
        """The height on the chart of a duration."""
        return self.base - seconds / self.top * self.plot_height


def duration_chart(
    runs: Sequence[RunLike],
    *,
    zone: ZoneInfo,
    width: int = 720,
    height: int = 160,
    now: datetime | None = None,
) -> Markup:
    """Bars of the last 100 runs' durations, oldest left; fires that did not run on the baseline."""
    shown = chronological(runs)[-_LAST:]
    if not shown:
        return empty_svg("durations", width, 32, "no runs yet")
    now = now or datetime.now(UTC)
    lengths = [duration(run, now) for run in shown]
    ticks = duration_ticks(max((s for s in lengths if s is not None), default=0.0))
    slots = max(len(shown), _MIN_SLOTS)
    slot = (width - _LEFT - _RIGHT) / slots
    bars = _Bars(
        height - _BOTTOM, height - _BOTTOM - _TOP, ticks[-1], slot * 0.75, Clock(zone), now
    )
    parts = [open_svg("durations", width, height, _durations_label(shown, lengths))]
    parts.append(_duration_axis(ticks, width, bars))
    for index, (run, seconds) in enumerate(zip(shown, lengths, strict=True)):
        x = _LEFT + (slots - len(shown) + index) * slot
        parts.append(_duration_mark(run, seconds, x, bars))
    parts.append("</svg>")
    return Markup("".join(parts))


def _durations_label(shown: Sequence[RunLike], lengths: Sequence[float | None]) -> str:
    tasks = {run.task for run in shown}
    of = f" of {next(iter(tasks))}" if len(tasks) == 1 else ""
    longest = max((s for s in lengths if s is not None), default=None)
    tail = "" if longest is None else f"; longest {format_duration(longest)}"
    counts = tally(run.status for run in shown)
    return f"Durations of the last {len(shown)} runs{of}, oldest first: {counts}{tail}"


def _duration_axis(ticks: Sequence[float], width: int, bars: _Bars) -> str:
    lines = ['<g class="axis">']
    for value in ticks:
        y = bars.y(value)
        kind = "baseline" if value == 0 else "grid"
        lines.append(
            f'<line class="{kind}" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="label" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{format_duration(value)}</text>"
        )
    lines.append("</g>")
    return "".join(lines)


def _duration_mark(run: RunLike, seconds: float | None, x: float, bars: _Bars) -> str:
    title = escape(describe(run, bars.clock, bars.now))
    size = f'x="{x:.1f}" width="{bars.bar_width:.1f}"'
    if seconds is None:
        # below the baseline, so a fire that did not run reads as a gap, not a short run
        shape = f'<rect class="mark {CLASS[run.status]}" {size} y="{bars.base + 3:.1f}" height="4">'
    else:
        tall = max(1.0, bars.base - bars.y(seconds))
        y = bars.base - tall
        shape = f'<rect class="bar {CLASS[run.status]}" {size} y="{y:.1f}" height="{tall:.1f}">'
    return f'<a href="{run_href(run.id)}">{shape}<title>{title}</title></rect></a>'


def outcome_strip(
    runs: Sequence[RunLike],
    *,
    count: int = 20,
    zone: ZoneInfo | None = None,
    now: datetime | None = None,
) -> Markup:
    """The last `count` outcomes as small squares, oldest first, each linking to its run."""
    if count < 1:
        raise ValueError(f"an outcome strip needs a count of 1 or more, not {count}")
    width = count * _SQUARE_PITCH - (_SQUARE_PITCH - _SQUARE)
    shown = chronological(runs)[-count:]
    if not shown:
        return empty_svg("strip", max(width, 80), 14, "no runs yet")
    clock, now = Clock(zone or ZoneInfo("UTC")), now or datetime.now(UTC)
    label = f"Last {len(shown)} outcomes, oldest first: {tally(r.status for r in shown)}"
    parts = [open_svg("strip", width, _SQUARE, f"{label}; latest {WORDS[shown[-1].status]}")]
    # newest at the right edge, so strips of task rows line up at their latest run
    first = count - len(shown)
    for index, run in enumerate(shown):
        x = (first + index) * _SQUARE_PITCH
        parts.append(
            f'<a href="{run_href(run.id)}"><rect class="cell {CLASS[run.status]}" x="{x}" y="0" '
            f'width="{_SQUARE}" height="{_SQUARE}"><title>{escape(describe(run, clock, now))}'
            "</title></rect></a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def outcome_calendar(
    runs: Sequence[RunLike], *, today: date, zone: ZoneInfo, days: int = 90
) -> Markup:
    """One cell per day of the last `days` days, weeks as columns, coloured by its worst outcome."""
    if days < 1:
        raise ValueError(f"an outcome calendar needs 1 day or more, not {days}")
    first = today - timedelta(days=days - 1)
    monday = first - timedelta(days=first.weekday())
    counts = _per_day(runs, zone, first, today)
    dates = [first + timedelta(days=n) for n in range(days)]
    worst = {day: _worst(counts[day]) for day in dates if day in counts}
    # room at the right for a month's name that starts in the last weeks ("Dec")
    width = _CAL_LEFT + ((today - monday).days // 7 + 1) * _CELL_PITCH + _MONTH_LABEL
    height = _CAL_TOP + 7 * _CELL_PITCH
    label = f"Worst outcome of each day, {first} to {today} ({zone}), in days: "
    label += ", ".join(filter(None, [tally(worst.values()), f"{days - len(worst)} without runs"]))
    parts = [open_svg("calendar", width, height, label), _calendar_labels(dates, monday)]
    parts += [_day_cell(day, monday, counts.get(day), worst.get(day)) for day in dates]
    parts.append("</svg>")
    return Markup("".join(parts))


def _per_day(
    runs: Iterable[RunLike], zone: ZoneInfo, first: date, last: date
) -> dict[date, Counter[RunStatus]]:
    counts: defaultdict[date, Counter[RunStatus]] = defaultdict(Counter)
    clock = Clock(zone)
    for run in runs:
        when = moment(run)
        day = None if when is None else clock.day(when)
        if day is not None and first <= day <= last:
            counts[day][run.status] += 1
    return counts


def _worst(counts: Mapping[RunStatus, int]) -> RunStatus:
    return next(status for status in SEVERITY if counts.get(status))


def _day_cell(
    day: date, monday: date, counts: Counter[RunStatus] | None, worst: RunStatus | None
) -> str:
    x = _CAL_LEFT + (day - monday).days // 7 * _CELL_PITCH
    y = _CAL_TOP + day.weekday() * _CELL_PITCH
    kind = "st-none" if worst is None else CLASS[worst]
    what = tally(counts) if counts else "no runs"
    return (
        f'<rect class="day {kind}" x="{x}" y="{y}" width="{_CELL}" height="{_CELL}">'
        f"<title>{day.isoformat()}: {escape(what)}</title></rect>"
    )


def _calendar_labels(dates: Sequence[date], monday: date) -> str:
    parts = ['<g class="axis">']
    for row, name in _WEEKDAYS:
        y = _CAL_TOP + row * _CELL_PITCH + _CELL - 2
        parts.append(
            f'<text class="label" x="{_CAL_LEFT - 4}" y="{y}" text-anchor="end">{name}</text>'
        )
    starts = [d for d in dates if d.day == 1 or d == dates[0]]
    months = [(d - monday).days // 7 for d in starts]
    # the first, partial month is named only if its label fits before the next one
    if len(months) > 1 and months[1] - months[0] < 3:
        months, starts = months[1:], starts[1:]
    for column, start in zip(months, starts, strict=True):
        x = _CAL_LEFT + column * _CELL_PITCH
        parts.append(f'<text class="label month" x="{x}" y="{_CAL_TOP - 5}">{start:%b}</text>')
    parts.append("</g>")
    return "".join(parts)
