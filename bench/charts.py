"""The dashboard's charts: what the timeline of a busy day costs (40 tasks x 1440 runs).

    .venv/bin/python bench/charts.py --samples 30

In this process, no server: 40 tasks with a run every minute for 24 h (57,600 runs, shown
in Europe/Berlin), durations from 0.2 s to several minutes, about 1 % failed, some fires
skipped or missed, and each task's last run still going. `timeline()` over the whole day
is called `--samples` times after a warm-up call; the median is the figure, against the
target of 150 ms, and against a floor: a loop that only reads each run's task, status,
start and end, which any timeline must (so the ratio says what drawing adds, whatever the
box's speed and load). Also measured: the SVG's size, and the other three charts on one
task's 1440 runs (the duration chart and the strip draw their last few; the calendar
counts them all).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from harness import (
    machine_note,
    new_parser,
    print_summaries,
    print_targets,
    verdict,
    where,
)

import tasse
from tasse.http.pages.charts import duration_chart, outcome_calendar, outcome_strip, timeline
from tasse.models import Run, RunStatus, RunTrigger, new_run_id

ZONE = ZoneInfo("Europe/Berlin")
SINCE = datetime(2025, 11, 3, tzinfo=ZONE).astimezone(UTC)
UNTIL = SINCE + timedelta(days=1)
TASKS, PER_TASK = 40, 1440
TARGET = 0.150


def one_run(task: str, due: datetime, rng: random.Random, last: bool) -> Run:
    """A run fired at `due`: most succeed within seconds, some fail, skip or miss."""
    roll = rng.random()
    base = {"id": new_run_id(due), "task": task, "trigger": RunTrigger.schedule}
    if roll < 0.003:
        status = RunStatus.missed if roll < 0.0015 else RunStatus.skipped
        return Run(**base, status=status, scheduled_at=due, finished_at=due, error="late")
    started = due + timedelta(milliseconds=rng.randint(1, 900))
    if last:
        return Run(**base, status=RunStatus.running, scheduled_at=due, started_at=started)
    seconds = rng.lognormvariate(1.0, 1.2)
    status = RunStatus.failed if roll > 0.99 else RunStatus.succeeded
    finished = started + timedelta(seconds=seconds)
    return Run(**base, status=status, scheduled_at=due, started_at=started, finished_at=finished)


def busy_day() -> list[Run]:
    """Every task's runs of the day, one a minute."""
    rng = random.Random(20251103)
    return [
        one_run(f"task-{t:02d}", SINCE + timedelta(minutes=m), rng, m == PER_TASK - 1)
        for t in range(TASKS)
        for m in range(PER_TASK)
    ]


def read_runs(runs: list[Run]) -> None:
    """The floor: a loop that only reads what any timeline must of each run."""
    for run in runs:
        _ = (run.task, run.status, run.started_at, run.finished_at)


def measured(call: Callable[[], object], samples: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each of `samples` calls, after one warm-up call.

    CPU time too, since on a shared box the wall time counts other processes' turns.
    """
    call()
    wall, cpu = [], []
    for _ in range(samples):
        started, used = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return wall, cpu


def main() -> None:
    """Measure and print the tables."""
    parser = new_parser(__doc__)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    runs = busy_day()
    one = [run for run in runs if run.task == "task-00"]
    svg = timeline(runs, since=SINCE, until=UNTIL, zone=ZONE)
    print(machine_note())
    print(where(Path(tasse.__file__).parent))
    print(f"{len(runs):,} runs; the timeline's SVG is {len(svg.encode()) / 1e6:.1f} MB")
    calls: dict[str, Callable[[], object]] = {
        "timeline, 57,600 runs": lambda: timeline(runs, since=SINCE, until=UNTIL, zone=ZONE),
        "floor: read 57,600 runs": lambda: read_runs(runs),
        "duration_chart, 1440 runs": lambda: duration_chart(one, zone=ZONE, now=UNTIL),
        "outcome_calendar, 1440 runs": lambda: outcome_calendar(
            one, today=date(2025, 11, 3), zone=ZONE
        ),
        "outcome_strip, 1440 runs": lambda: outcome_strip(one),
    }
    wall, cpu = {}, {}
    for label, call in calls.items():
        wall[label], cpu[label] = measured(call, args.samples)
    print_summaries(wall, corner="wall ms")
    print()
    print_summaries(cpu, corner="CPU ms")
    medians = [statistics.median(s["timeline, 57,600 runs"]) for s in (wall, cpu)]
    print_targets(
        [
            [
                f"timeline of 57,600 runs < 150 ms ({kind})",
                f"{m * 1000:.1f} ms",
                verdict(m < TARGET),
            ]
            for kind, m in zip(("wall", "CPU"), medians, strict=True)
        ]
    )


if __name__ == "__main__":
    main()
