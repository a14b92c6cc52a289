"""The dashboard's SVG charts, read back as XML the way a browser would draw them."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from markupsafe import Markup

from tasse.http.pages.charts import duration_chart, outcome_calendar, outcome_strip, timeline
from tasse.http.pages.svg import Clock, duration_ticks, format_duration
from tasse.models import Run, RunStatus, RunTrigger

NS = "{http://www.w3.org/2000/svg}"
BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")
T0 = datetime(2025, 11, 3, 10, 0, tzinfo=UTC)
LEDGER = (RunStatus.skipped, RunStatus.missed, RunStatus.coalesced)
HOSTILE = '<script>alert("x")</script>'


def make_run(
    task: str = "backup",
    status: RunStatus = RunStatus.succeeded,
    *,
    at: datetime = T0,
    seconds: float | None = 10.0,
    run_id: str | None = None,
) -> Run:
    """A run fired at `at`: ledger outcomes never start, a running one has no end."""
    run_id = run_id or f"{at:%Y%m%d-%H%M%S-%f}-{task[:6]}"
    base = Run(id=run_id, task=task, trigger=RunTrigger.schedule, status=status, scheduled_at=at)
    if status in LEDGER:
        return base.model_copy(update={"finished_at": at})
    if status is RunStatus.queued:
        return base
    end = (
        None if status is RunStatus.running or seconds is None else at + timedelta(seconds=seconds)
    )
    return base.model_copy(update={"started_at": at, "finished_at": end})


def svg_of(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    root = ET.fromstring(str(markup))
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    return root


def marks(root: ET.Element, kind: str) -> list[ET.Element]:
    """The rects of one kind ("bar", "mark", "tick", "day", "cell"), in document order."""
    return [e for e in root.iter(f"{NS}rect") if kind in (e.get("class") or "").split()]


def status_of(mark: ET.Element) -> str:
    return next(c[3:] for c in (mark.get("class") or "").split() if c.startswith("st-"))


def title_of(mark: ET.Element) -> str:
    title = mark.find(f"{NS}title")
    assert title is not None, ET.tostring(mark)
    return title.text or ""


def link_of(root: ET.Element, mark: ET.Element) -> str | None:
    parents = {child: parent for parent in root.iter() for child in parent}
    parent = parents[mark]
    return parent.get("href") if parent.tag == f"{NS}a" else None


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{NS}text")]


def num(mark: ET.Element, name: str) -> float:
    return float(mark.get(name) or "nan")


# -- shared pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.4, "0.4 s"),
        (42, "42 s"),
        (120, "2 min"),
        (125, "2 min 5 s"),
        (3780, "1 h 3 min"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_duration_ticks_are_two_to_four_and_cover_the_longest() -> None:
    for longest in [0, 0.05, 0.7, 3, 29, 31, 59, 61, 100, 299, 601, 3599, 5000, 40000, 200000]:
        ticks = duration_ticks(longest)
        assert 2 <= len(ticks) <= 4, (longest, ticks)
        assert ticks[0] == 0
        assert ticks[-1] >= longest


def test_times_show_in_the_zone_with_its_abbreviation() -> None:
    clock = Clock(BERLIN)
    assert clock.of(datetime(2025, 11, 3, 13, 5, 9, tzinfo=UTC)) == "2025-11-03 14:05:09 CET"
    assert clock.of(datetime(2025, 7, 3, 13, 5, 59, tzinfo=UTC)) == "2025-07-03 15:05:59 CEST"


@pytest.mark.parametrize(
    ("zone", "midnight"),
    [
        ("Europe/Berlin", datetime(2025, 11, 3, 23, 0, tzinfo=UTC)),
        ("Asia/Kathmandu", datetime(2025, 11, 3, 18, 15, tzinfo=UTC)),  # +5:45
        # Liberia kept -0:44:30 until 1972: its midnight fell inside a quarter hour of UTC
        ("Africa/Monrovia", datetime(1970, 6, 1, 0, 44, 30, tzinfo=UTC)),
    ],
)
def test_a_moment_falls_on_its_local_day(zone: str, midnight: datetime) -> None:
    clock = Clock(ZoneInfo(zone))
    moments = [midnight + timedelta(seconds=s) for s in range(-3600, 3600, 7)]
    assert [clock.day(m) for m in moments] == [m.astimezone(ZoneInfo(zone)).date() for m in moments]
    assert clock.day(midnight - timedelta(seconds=1)) < clock.day(midnight)


@pytest.mark.parametrize("day", [date(2025, 3, 30), date(2025, 10, 26)])
def test_a_day_with_a_clock_change_still_puts_each_moment_on_its_local_day(day: date) -> None:
    clock = Clock(BERLIN)
    start = datetime.combine(day, time(), BERLIN).astimezone(UTC) - timedelta(hours=3)
    moments = [start + timedelta(minutes=m) for m in range(0, 30 * 60, 5)]
    assert [clock.day(m) for m in moments] == [m.astimezone(BERLIN).date() for m in moments]


# -- duration_chart -------------------------------------------------------------------------


def test_one_bar_per_run_oldest_left_and_as_tall_as_it_took() -> None:
    durations = [10, 40, 5, 90, 20]
    runs = [make_run(at=T0 + timedelta(minutes=i), seconds=s) for i, s in enumerate(durations)]
    root = svg_of(duration_chart(list(reversed(runs)), zone=BERLIN))

    bars = marks(root, "bar")
    assert len(bars) == len(runs)
    assert [num(b, "x") for b in bars] == sorted(num(b, "x") for b in bars)
    heights = [num(b, "height") for b in bars]
    assert sorted(range(5), key=heights.__getitem__) == sorted(range(5), key=durations.__getitem__)
    # bars stand on one baseline
    assert len({round(num(b, "y") + num(b, "height"), 1) for b in bars}) == 1
    assert [link_of(root, b) for b in bars] == [f"/runs/{r.id}" for r in runs]
    assert (
        title_of(bars[3])
        == f"backup · {runs[3].id} · succeeded · 2025-11-03 11:03:00 CET · 1 min 30 s"
    )


def test_the_y_axis_has_a_few_readable_ticks() -> None:
    runs = [make_run(at=T0 + timedelta(minutes=i), seconds=s) for i, s in enumerate([20, 100])]
    labels = texts(svg_of(duration_chart(runs, zone=UTC_ZONE)))
    assert labels == ["0 s", "1 min", "2 min"]


def test_fires_that_did_not_run_are_marks_in_their_place_below_the_bars() -> None:
    kinds = [RunStatus.succeeded, RunStatus.missed, RunStatus.failed, RunStatus.skipped]
    kinds += [RunStatus.coalesced, RunStatus.succeeded]
    runs = [make_run(status=k, at=T0 + timedelta(minutes=i)) for i, k in enumerate(kinds)]
    root = svg_of(duration_chart(runs, zone=UTC_ZONE))

    bars, ledger = marks(root, "bar"), marks(root, "mark")
    assert [status_of(b) for b in bars] == ["succeeded", "failed", "succeeded"]
    assert [status_of(m) for m in ledger] == ["missed", "skipped", "coalesced"]
    # in time order across both kinds: the missed fire sits between the first two bars
    assert num(bars[0], "x") < num(ledger[0], "x") < num(bars[1], "x") < num(ledger[1], "x")
    baseline = num(bars[0], "y") + num(bars[0], "height")
    assert all(num(m, "y") >= baseline for m in ledger)
    assert "did not run" in title_of(ledger[0])
    assert link_of(root, ledger[0]) == f"/runs/{runs[1].id}"


def test_a_running_run_grows_until_now_and_says_so() -> None:
    done = make_run(at=T0, seconds=60)
    going = make_run(status=RunStatus.running, at=T0 + timedelta(minutes=5))
    now = T0 + timedelta(minutes=7)
    root = svg_of(duration_chart([done, going], zone=UTC_ZONE, now=now))

    first, second = marks(root, "bar")
    assert status_of(second) == "running"
    assert num(second, "height") == pytest.approx(2 * num(first, "height"), rel=0.02)
    assert title_of(second).endswith("running · 2025-11-03 10:05:00 UTC · 2 min so far")


def test_only_the_last_hundred_runs_are_drawn() -> None:
    runs = [make_run(at=T0 + timedelta(minutes=i)) for i in range(150)]
    root = svg_of(duration_chart(runs, zone=UTC_ZONE))
    links = [link_of(root, b) for b in marks(root, "bar")]
    assert links == [f"/runs/{r.id}" for r in runs[50:]]


def test_no_runs_yet() -> None:
    root = svg_of(duration_chart([], zone=UTC_ZONE))
    assert texts(root) == ["no runs yet"]
    assert root.get("aria-label") == "no runs yet"


# -- outcome_calendar ---------------------------------------------------------------------------


def cells(root: ET.Element) -> dict[str, ET.Element]:
    """The calendar's cells by day (their titles start with the date)."""
    return {title_of(c)[:10]: c for c in marks(root, "day")}


def test_a_day_with_a_failure_is_failed_and_counts_what_happened() -> None:
    day = [make_run(at=T0 + timedelta(minutes=i)) for i in range(24)]
    day += [make_run(status=RunStatus.failed, at=T0 + timedelta(hours=2))]
    day += [make_run(status=RunStatus.missed, at=T0 + timedelta(hours=3))]
    root = svg_of(outcome_calendar(day, today=date(2025, 11, 5), zone=UTC_ZONE))

    cell = cells(root)["2025-11-03"]
    assert status_of(cell) == "failed"
    assert title_of(cell) == "2025-11-03: 24 succeeded, 1 failed, 1 missed"
    assert status_of(cells(root)["2025-11-04"]) == "none"
    assert title_of(cells(root)["2025-11-04"]) == "2025-11-04: no runs"


@pytest.mark.parametrize(
    ("statuses", "worst"),
    [
        ([RunStatus.succeeded, RunStatus.timed_out, RunStatus.missed], "timed_out"),
        ([RunStatus.succeeded, RunStatus.interrupted], "interrupted"),
        ([RunStatus.cancelled, RunStatus.missed, RunStatus.succeeded], "missed"),
        ([RunStatus.skipped, RunStatus.cancelled], "cancelled"),
        ([RunStatus.succeeded, RunStatus.coalesced], "coalesced"),
        ([RunStatus.succeeded, RunStatus.skipped], "skipped"),
        ([RunStatus.succeeded, RunStatus.succeeded], "succeeded"),
    ],
)
def test_a_day_takes_its_worst_outcome(statuses: list[RunStatus], worst: str) -> None:
    runs = [make_run(status=s, at=T0 + timedelta(minutes=i)) for i, s in enumerate(statuses)]
    root = svg_of(outcome_calendar(runs, today=date(2025, 11, 3), zone=UTC_ZONE))
    assert status_of(cells(root)["2025-11-03"]) == worst


def test_a_run_near_midnight_counts_on_its_local_day() -> None:
    late = make_run(status=RunStatus.failed, at=datetime(2025, 11, 3, 23, 30, tzinfo=UTC))
    in_utc = cells(svg_of(outcome_calendar([late], today=date(2025, 11, 5), zone=UTC_ZONE)))
    in_berlin = cells(svg_of(outcome_calendar([late], today=date(2025, 11, 5), zone=BERLIN)))
    assert (status_of(in_utc["2025-11-03"]), status_of(in_utc["2025-11-04"])) == ("failed", "none")
    assert (status_of(in_berlin["2025-11-03"]), status_of(in_berlin["2025-11-04"])) == (
        "none",
        "failed",
    )


def test_weeks_are_columns_and_weekdays_rows() -> None:
    root = svg_of(outcome_calendar([], today=date(2025, 11, 5), zone=UTC_ZONE))  # a Wednesday
    by_day = cells(root)
    assert len(by_day) == 90
    assert all(status_of(c) == "none" for c in by_day.values())
    monday, wednesday = by_day["2025-11-03"], by_day["2025-11-05"]
    assert num(monday, "x") == num(wednesday, "x") == max(num(c, "x") for c in by_day.values())
    assert num(monday, "y") < num(by_day["2025-11-04"], "y") < num(wednesday, "y")
    assert num(by_day["2025-11-02"], "x") < num(monday, "x")  # Sunday ends the week before
    assert num(by_day["2025-11-02"], "y") == max(num(c, "y") for c in by_day.values())
    labels = texts(root)
    assert labels[:3] == ["Mon", "Wed", "Fri"]
    assert labels[3:] == ["Aug", "Sep", "Oct", "Nov"]


def test_a_month_that_begins_in_the_last_week_has_room_for_its_name() -> None:
    root = svg_of(outcome_calendar([], today=date(2026, 12, 2), zone=UTC_ZONE))
    months = [e for e in root.iter(f"{NS}text") if "month" in (e.get("class") or "")]
    assert months[-1].text == "Dec"
    # three letters of the 10 px label font take about 20 px
    assert num(months[-1], "x") + 20 <= float(root.get("width") or 0)


# -- timeline -----------------------------------------------------------------------------------

SINCE = datetime(2025, 11, 3, 0, 0, tzinfo=BERLIN)
UNTIL = SINCE + timedelta(days=1)
#: the plot's x range (timeline.py: a 150 px label column, 8 px right of the plot)
LEFT, RIGHT = 150, 960 - 8


def x_of(moment: datetime) -> float:
    return LEFT + (moment - SINCE) / (UNTIL - SINCE) * (RIGHT - LEFT)


def draw(runs: list[Run]) -> ET.Element:
    return svg_of(timeline(runs, since=SINCE, until=UNTIL, zone=BERLIN))


def test_a_bar_spans_its_run_and_is_clipped_to_the_window() -> None:
    inside = make_run("a", at=SINCE + timedelta(hours=6), seconds=3 * 3600)
    before = make_run("b", at=SINCE - timedelta(hours=1), seconds=2 * 3600)
    after = make_run("c", at=UNTIL - timedelta(hours=1), seconds=5 * 3600)
    outside = make_run("c", at=UNTIL + timedelta(hours=1))
    root = draw([inside, before, after, outside])

    bars = marks(root, "bar")
    assert len(bars) == 3
    a, b, c = bars
    assert num(a, "x") == pytest.approx(x_of(inside.started_at or T0), abs=1)
    assert num(a, "width") == pytest.approx((RIGHT - LEFT) / 8, abs=1)
    assert num(b, "x") == LEFT
    assert num(b, "width") == pytest.approx((RIGHT - LEFT) / 24, abs=1)
    assert num(c, "x") + num(c, "width") == pytest.approx(RIGHT, abs=1)
    assert num(c, "width") == pytest.approx((RIGHT - LEFT) / 24, abs=1)


def test_a_running_run_reaches_until() -> None:
    going = make_run(status=RunStatus.running, at=UNTIL - timedelta(hours=2))
    (bar,) = marks(draw([going]), "bar")
    assert status_of(bar) == "running"
    assert num(bar, "x") + num(bar, "width") == pytest.approx(RIGHT, abs=1)
    assert "2 h so far" in title_of(bar)


def test_a_short_run_still_shows_and_fires_that_did_not_run_are_ticks() -> None:
    short = make_run(at=SINCE + timedelta(hours=1), seconds=0.5)
    missed = make_run(status=RunStatus.missed, at=SINCE + timedelta(hours=2))
    skipped = make_run(status=RunStatus.skipped, at=SINCE + timedelta(hours=3))
    root = draw([short, missed, skipped])

    (bar,) = marks(root, "bar")
    assert num(bar, "width") >= 2
    assert title_of(bar) == f"backup · {short.id} · succeeded · 2025-11-03 01:00:00 CET · 0.5 s"
    ticks = marks(root, "tick")
    assert [status_of(t) for t in ticks] == ["missed", "skipped"]
    middle = num(ticks[0], "x") + num(ticks[0], "width") / 2
    assert middle == pytest.approx(x_of(SINCE + timedelta(hours=2)), abs=1)
    assert num(ticks[0], "height") < num(bar, "height")
    assert "did not run" in title_of(ticks[0])


def test_one_row_per_task_by_name_each_label_a_link() -> None:
    runs = [make_run(name, at=SINCE + timedelta(hours=i)) for i, name in enumerate("cab")]
    root = draw(runs)
    labels = [e for e in root.iter(f"{NS}text") if "task" in (e.get("class") or "")]
    assert [e.text for e in labels] == ["a", "b", "c"]
    assert [link_of(root, e) for e in labels] == ["/tasks/a", "/tasks/b", "/tasks/c"]
    bars = {title_of(b)[0]: num(b, "y") for b in marks(root, "bar")}
    assert bars["a"] < bars["b"] < bars["c"]


def test_a_row_with_a_title_shows_it_and_names_the_task_in_its_tooltip() -> None:
    runs = [make_run(name, at=SINCE + timedelta(hours=1)) for name in ("nightly", "b")]
    chart = timeline(runs, since=SINCE, until=UNTIL, zone=BERLIN, titles={"nightly": "Backup DB"})
    labels = [e for e in svg_of(chart).iter(f"{NS}text") if "task" in (e.get("class") or "")]
    assert [e.text for e in labels] == ["b", "Backup DB"]  # sorted by name, shown by title
    assert [title.text for title in labels[1].iter(f"{NS}title")] == ["Backup DB (nightly)"]
    assert list(labels[0].iter(f"{NS}title")) == []


def test_the_time_axis_is_local_time_with_steps_for_the_span() -> None:
    day = [e.text for e in draw([]).iter(f"{NS}text") if e.get("class") == "label"]
    assert day[:3] == ["Nov 3", "03:00", "06:00"]
    assert day[-1] == "Nov 4"

    def labels(hours: float) -> list[str | None]:
        root = svg_of(timeline([], since=SINCE, until=SINCE + timedelta(hours=hours), zone=BERLIN))
        return [e.text for e in root.iter(f"{NS}text") if e.get("class") == "label"]

    assert labels(2)[:3] == ["Nov 3", "00:15", "00:30"]
    assert labels(6)[:3] == ["Nov 3", "01:00", "02:00"]


def test_the_time_axis_skips_the_hour_that_a_clock_change_removes() -> None:
    spring = datetime(2025, 3, 30, 0, 0, tzinfo=BERLIN)
    until = spring.astimezone(UTC) + timedelta(hours=5)  # 06:00 local, the clocks having sprung
    root = svg_of(timeline([], since=spring, until=until, zone=BERLIN))
    labels = [e.text for e in root.iter(f"{NS}text") if e.get("class") == "label"]
    assert labels == ["Mar 30", "01:00", "03:00", "04:00", "05:00", "06:00"]


def test_runs_a_minute_apart_on_a_day_merge_into_one_bar_that_says_how_many() -> None:
    runs = [make_run(at=SINCE + timedelta(minutes=m), seconds=3) for m in range(60)]
    runs[30] = make_run(status=RunStatus.failed, at=SINCE + timedelta(minutes=30), seconds=7)
    root = draw(list(reversed(runs)))  # newest first, as the store lists them

    bars = marks(root, "bar")
    assert [status_of(b) for b in bars] == ["succeeded", "succeeded", "failed"]
    first, second, failed = bars
    assert (first.get("data-runs"), second.get("data-runs")) == ("30", "29")
    assert title_of(first) == (
        "backup · 30 runs succeeded · 2025-11-03 00:00:00 CET to 2025-11-03 00:29:03 CET"
    )
    assert runs[30].id in title_of(failed)
    assert "Runs of 1 tasks" in (root.get("aria-label") or "")
    assert "60 shown: 59 succeeded, 1 failed" in (root.get("aria-label") or "")


def test_runs_far_apart_keep_their_own_bars() -> None:
    runs = [make_run(at=SINCE + timedelta(hours=h), seconds=60) for h in range(24)]
    bars = marks(draw(runs), "bar")
    assert len(bars) == 24
    assert all(b.get("data-runs") is None for b in bars)


def test_an_empty_window() -> None:
    root = draw([])
    assert "no runs in this period" in texts(root)
    with pytest.raises(ValueError, match="until after since"):
        timeline([], since=UNTIL, until=SINCE, zone=BERLIN)


# -- outcome_strip ------------------------------------------------------------------------------


def test_the_strip_shows_the_last_outcomes_oldest_first() -> None:
    statuses = [RunStatus.succeeded] * 22 + [RunStatus.failed, RunStatus.missed, RunStatus.running]
    runs = [make_run(status=s, at=T0 + timedelta(minutes=i)) for i, s in enumerate(statuses)]
    random.Random(3).shuffle(runs)
    root = svg_of(outcome_strip(runs, zone=BERLIN))

    squares = marks(root, "cell")
    assert len(squares) == 20
    assert [status_of(s) for s in squares[-3:]] == ["failed", "missed", "running"]
    assert [num(s, "x") for s in squares] == sorted(num(s, "x") for s in squares)
    ordered = sorted(runs, key=lambda r: r.scheduled_at or T0)
    assert [link_of(root, s) for s in squares] == [f"/runs/{r.id}" for r in ordered[5:]]
    assert title_of(squares[-3]).startswith(f"backup · {ordered[-3].id} · failed · 2025-11-03")
    assert "latest running" in (root.get("aria-label") or "")


def test_a_short_strip_lines_up_at_the_right_and_an_empty_one_says_so() -> None:
    short = svg_of(outcome_strip([make_run()], count=5))
    (square,) = marks(short, "cell")
    assert num(square, "x") + num(square, "width") == num(short, "width")
    assert texts(svg_of(outcome_strip([]))) == ["no runs yet"]


# -- hostile text -------------------------------------------------------------------------------


def test_hostile_names_and_ids_stay_text() -> None:
    runs = [
        make_run(HOSTILE, at=SINCE + timedelta(hours=1), run_id='1"><script>x</script>'),
        make_run(HOSTILE, status=RunStatus.missed, at=SINCE + timedelta(hours=2)),
    ]
    charts = [
        duration_chart(runs, zone=BERLIN),
        outcome_calendar(runs, today=date(2025, 11, 3), zone=BERLIN),
        timeline(runs, since=SINCE, until=UNTIL, zone=BERLIN),
        outcome_strip(runs),
    ]
    for chart in charts:
        root = svg_of(chart)
        assert not [e for e in root.iter() if e.tag.endswith("script")]
        titles = [e.text or "" for e in root.iter(f"{NS}title")]
        assert titles
        assert all(HOSTILE in t for t in titles if "·" in t)
    timeline_root = svg_of(charts[2])
    (label,) = [e for e in timeline_root.iter(f"{NS}text") if "task" in (e.get("class") or "")]
    assert link_of(timeline_root, label) == "/tasks/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E"
    strip = svg_of(charts[3])
    assert link_of(strip, marks(strip, "cell")[0]) == "/runs/1%22%3E%3Cscript%3Ex%3C%2Fscript%3E"
