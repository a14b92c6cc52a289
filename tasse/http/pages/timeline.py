"""The timeline: one row per task, each run a bar over its time within a window.

A day of a busy server is tens of thousands of runs (40 tasks a minute: 57,600), so the
loop over runs only compares datetimes; and runs whose bars would lie on top of each other
with the same status are drawn as one bar, its title saying how many (on a day's timeline
a pixel is about 108 s, so the 2 px bars of runs a minute apart overlap: drawn one by one they
would be 10 MB of SVG, each bar hidden under the next). Local times and durations in titles
are formatted once per minute and per tenth of a second.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from tasse.http.pages.svg import (
    CLASS,
    SEP,
    WORDS,
    Clock,
    describe,
    format_duration,
    moment,
    open_svg,
    tally,
    task_href,
)
from tasse.models import RunLike, RunStatus

#: the task names' column, the time axis above the rows, the space right of the plot
_LABEL_WIDTH, _AXIS_HEIGHT, _PAD = 150, 22, 8
#: the narrowest bar, so a run of a second still shows on a day's timeline
_MIN_BAR = 2
#: time axis steps in minutes (each divides a day), and the fewest pixels between ticks
_TICK_MINUTES = (5, 15, 30, 60, 180, 360, 720, 1440)
_TICK_GAP = 100
#: longer task names are cut, with the whole name in the label's title
_NAME_CHARS = 22
# (looked up once: an enum member read off its class costs as much as a run's comparisons)
_RUNNING, _SUCCEEDED = RunStatus.running, RunStatus.succeeded


@dataclass
class _Plot:
    """The window (as timestamps, and as datetimes in UTC), its scale, what the marks share."""

    lo: float
    hi: float
    scale: float
    left: int
    width: int
    since: datetime
    until: datetime
    #: how long a run of `_MIN_BAR` pixels takes
    min_bar: timedelta
    clock: Clock
    #: duration texts by tenths of a second
    lengths: dict[int, str] = field(default_factory=dict)
    #: how many runs of each status the marks show, for the summary
    counts: Counter[RunStatus] = field(default_factory=Counter)


def timeline(
    runs: Sequence[RunLike],
    *,
    since: datetime,
    until: datetime,
    zone: ZoneInfo,
    width: int = 960,
    row_height: int = 18,
    titles: Mapping[str, str] | None = None,
) -> Markup:
    """One row per task, each run a bar from start to end, fires that did not run as ticks.

    A row is labelled with its task's title where `titles` has one (the name in its tooltip).
    """
    if until <= since:
        raise ValueError(f"a timeline needs until after since, not {since} to {until}")
    rows = _by_task(runs)
    lo, hi = since.timestamp(), until.timestamp()
    plot_width = width - _LABEL_WIDTH - _PAD
    clock = Clock(zone)
    scale = plot_width / (hi - lo)
    # in UTC, as the store's times are: datetimes with one tzinfo compare fastest
    window = since.astimezone(UTC), until.astimezone(UTC), timedelta(seconds=_MIN_BAR / scale)
    plot = _Plot(lo, hi, scale, _LABEL_WIDTH, plot_width, *window, clock)
    height = _AXIS_HEIGHT + max(len(rows), 1) * row_height + 4
    parts = ["", _time_axis(since, until, zone, plot, height)]
    for index, (task, task_runs) in enumerate(rows):
        top = _AXIS_HEIGHT + index * row_height
        parts.append(_row_label(task, (titles or {}).get(task), top, row_height))
        _row_marks(task_runs, str(escape(task)), top, row_height, plot, parts)
    if not plot.counts:
        x, y = _LABEL_WIDTH + plot_width // 2, _AXIS_HEIGHT + row_height - 5
        parts.append(f'<text class="label empty" x="{x}" y="{y}" text-anchor="middle">')
        parts.append("no runs in this period</text>")
    parts[0] = open_svg("timeline", width, height, _summary(len(rows), since, until, zone, plot))
    parts.append("</svg>")
    return Markup("".join(parts))


def _by_task(runs: Iterable[RunLike]) -> list[tuple[str, list[RunLike]]]:
    tasks: defaultdict[str, list[RunLike]] = defaultdict(list)
    for run in runs:
        tasks[run.task].append(run)
    return sorted(tasks.items())


def _summary(tasks: int, since: datetime, until: datetime, zone: ZoneInfo, plot: _Plot) -> str:
    window = f"{since.astimezone(zone):%Y-%m-%d %H:%M} to {until.astimezone(zone):%Y-%m-%d %H:%M}"
    shown = plot.counts.total()
    counts = f": {tally(plot.counts)}" if shown else ": no runs"
    return f"Runs of {tasks} tasks, {window} ({zone}), {shown:,} shown{counts}"


def _row_label(task: str, title: str | None, top: int, row_height: int) -> str:
    label = title or task
    short = label if len(label) <= _NAME_CHARS else f"{label[: _NAME_CHARS - 1]}…"
    said = f"{title} ({task})" if title else task
    whole = f"<title>{escape(said)}</title>" if said != short else ""
    return (
        f'<a href="{task_href(task)}"><text class="label task" x="{_LABEL_WIDTH - 6}" '
        f'y="{top + row_height - 5}" text-anchor="end">{escape(short)}{whole}</text></a>'
    )


class _Span:
    """Runs next to each other in a row whose bars overlap and share a status: one bar."""

    __slots__ = ("begin", "first", "limit", "run", "stop")

    def __init__(self, first: int, run: RunLike, begin: datetime, limit: datetime):
        #: the span's runs are `first` up to `stop` in the row's lists of start and end times
        self.first, self.stop, self.run = first, first + 1, run
        #: from the first run's start to where the bar ends, at least `_MIN_BAR` wide
        self.begin, self.limit = begin, limit


def _row_marks(
    runs: Sequence[RunLike], task: str, top: int, row_height: int, plot: _Plot, out: list[str]
) -> None:
    """Append a row's marks to `out`: bars, failures over successes, then ticks and running."""
    others: list[RunLike] = []
    ends: list[datetime] = []
    spans = _spans(runs, plot, ends, others)
    place = f'y="{top + 2}" height="{row_height - 4}"'
    # drawn over the successes, so a failure among them is not hidden by its neighbours
    ordered = [s for s in spans if s.run.status is _SUCCEEDED] + [
        s for s in spans if s.run.status is not _SUCCEEDED
    ]
    out += [_bar(span, task, place, plot, ends[span.first : span.stop]) for span in ordered]
    out += [_other_mark(run, top, row_height, plot) for run in others]


def _spans(
    runs: Sequence[RunLike], plot: _Plot, ends: list[datetime], others: list[RunLike]
) -> list[_Span]:
    """The hot loop: a row's ended runs as bars, merged where they overlap with one status.

    Each ended run's end goes to `ends` in the order seen; runs without a start or an end go
    to `others`. Runs in time order merge best (the store lists them newest first, so those
    are turned around); in any order the drawing is right. Only datetimes are compared here:
    timestamps and pixels are for the few bars.
    """
    since, until, wide = plot.since, plot.until, plot.min_bar
    spans: list[_Span] = []
    # the open span's status and ends are locals: attributes cost, 57,600 times a day
    status, begin, limit = None, since, since
    keep = ends.append
    for run in reversed(runs) if runs and runs[0].id > runs[-1].id else runs:
        started, finished = run.started_at, run.finished_at
        if started is None or finished is None:
            others.append(run)
            continue
        if finished < since or started > until:
            continue
        keep(finished)
        if run.status is status and begin <= started <= limit:
            # (comparisons: a call of max() costs more, 57,600 times a day)
            reach = started + wide
            reach = finished if finished > reach else reach
            limit = reach if reach > limit else limit
            continue
        if spans:
            spans[-1].limit, spans[-1].stop = limit, len(ends) - 1
        status, begin, limit = run.status, started, max(finished, started + wide)
        spans.append(_Span(len(ends) - 1, run, begin, limit))
    if spans:
        spans[-1].limit, spans[-1].stop = limit, len(ends)
    return spans


def _bar(span: _Span, task: str, place: str, plot: _Plot, ends: list[datetime]) -> str:
    """One bar: a run's with its own title, or several runs' with their count and extent."""
    of, status, count = plot.clock.of, span.run.status, span.stop - span.first
    plot.counts[status] += count
    if count == 1:
        length = _length((ends[0] - span.begin).total_seconds(), plot)
        title = f"{escape(span.run.id)}{SEP}{WORDS[status]}{SEP}{of(span.begin)}{SEP}{length}"
        merged = ""
    else:
        # (a span's runs come in order of start, so its first run starts it)
        title = f"{count} runs {WORDS[status]}{SEP}{of(span.begin)} to {of(max(ends))}"
        merged = f' data-runs="{count}"'
    x, x_end = _pixels(span.begin.timestamp(), span.limit.timestamp(), plot) or (0, 0)
    return (
        f'<rect class="bar {CLASS[status]}" x="{plot.left + x}" {place} '
        f'width="{x_end - x}"{merged}><title>{task}{SEP}{title}</title></rect>'
    )


def _length(seconds: float, plot: _Plot) -> str:
    """A duration's text, formatted once per tenth of a second."""
    tenths = int(seconds * 10)
    text = plot.lengths.get(tenths)
    if text is None:
        text = plot.lengths[tenths] = format_duration(tenths / 10)
    return text


def _other_mark(run: RunLike, top: int, row_height: int, plot: _Plot) -> str:
    """A run still going (a bar to `until`), or a fire that did not run (a tick at its time)."""
    if run.started_at is not None:
        end = run.finished_at or (plot.until if run.status is _RUNNING else run.started_at)
        span = _pixels(run.started_at.timestamp(), end.timestamp(), plot)
        if span is None:
            return ""
        x, x_end = span
        size = f'y="{top + 2}" height="{row_height - 4}" width="{x_end - x}"'
        kind = "bar"
    else:
        when = moment(run)
        if when is None or not plot.lo <= when.timestamp() <= plot.hi:
            return ""
        # half a row high from its foot, so a tick does not read as a short run
        x = int((when.timestamp() - plot.lo) * plot.scale) - _MIN_BAR // 2
        size = f'y="{top + row_height // 2}" height="{row_height - row_height // 2 - 2}" width="2"'
        kind = "tick"
    plot.counts[run.status] += 1
    title = escape(describe(run, plot.clock, plot.until))
    return (
        f'<rect class="{kind} {CLASS[run.status]}" x="{plot.left + x}" {size}>'
        f"<title>{title}</title></rect>"
    )


def _pixels(start: float, end: float, plot: _Plot) -> tuple[int, int] | None:
    """A bar's ends in pixels from the plot's left, clipped to the window, at least 2 px."""
    if end < plot.lo or start > plot.hi:
        return None
    x = int((max(start, plot.lo) - plot.lo) * plot.scale)
    x_end = int((min(end, plot.hi) - plot.lo) * plot.scale)
    if x_end - x < _MIN_BAR:
        x = min(x, plot.width - _MIN_BAR)
        x_end = x + _MIN_BAR
    return x, x_end


def _time_axis(since: datetime, until: datetime, zone: ZoneInfo, plot: _Plot, height: int) -> str:
    most = max(2, plot.width // _TICK_GAP)
    span = (plot.hi - plot.lo) / 60
    minutes = next((m for m in _TICK_MINUTES if span / m <= most), None)
    minutes = minutes or 1440 * math.ceil(span / 1440 / most)
    parts = ['<g class="axis">']
    for tick in _ticks(since, until, zone, minutes):
        x = plot.left + int((tick.timestamp() - plot.lo) * plot.scale)
        text = f"{tick:%b} {tick.day}" if (tick.hour, tick.minute) == (0, 0) else f"{tick:%H:%M}"
        # a label at the right edge ends there rather than being cut in half
        anchor = "end" if x > plot.left + plot.width - _TICK_GAP // 4 else "middle"
        parts.append(
            f'<line class="grid" x1="{x}" x2="{x}" y1="{_AXIS_HEIGHT - 4}" y2="{height}"/>'
            f'<text class="label" x="{x}" y="{_AXIS_HEIGHT - 8}" text-anchor="{anchor}">'
            f"{text}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _ticks(since: datetime, until: datetime, zone: ZoneInfo, minutes: int) -> list[datetime]:
    """Local wall-clock times on a multiple of `minutes` past local midnight, in the window."""
    local = since.astimezone(zone).replace(tzinfo=None)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    past = (local - midnight) // timedelta(minutes=1) // minutes * minutes
    wall, step = midnight + timedelta(minutes=past), timedelta(minutes=minutes)
    ticks, lo, hi = [], since.timestamp(), until.timestamp()
    while (tick := wall.replace(tzinfo=zone)).timestamp() <= hi:
        # a wall time in a spring-forward gap does not exist: it gets no tick
        exists = tick.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
        if exists and tick.timestamp() >= lo:
            ticks.append(tick)
        wall += step
    return ticks
