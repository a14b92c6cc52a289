"""Issue 11: what a next fire time costs, on wall-clock time, against the path it replaced.

    .venv/bin/python bench/nextfire.py --samples 200 --rounds 200

In this process, old and new taking turns in each sample:
- old: `git show main:tasse/schedule/triggers.py` and `…/crontab.py`, loaded as modules:
  a crontab line as one or two APScheduler CronTriggers with the DST patches (`_exists`,
  `_end_of_gap`), a mapping as APScheduler's CronTrigger, listings by its `upcoming()`;
- new: this tree (`CrontabTrigger` and `CronMappingTrigger` through firing.py and
  wallclock.py, listings by `upcoming()` and `listing()` as the scheduler's jobs use it).
Measured per schedule, in Europe/Berlin from 2025-03-29 12:00 (so listings cross the
spring-forward night):
1. a step: `get_next_fire_time(fire, fire)`, the call APScheduler makes after each fire,
   chained through 100 fires (the median of all calls);
2. a listing: `upcoming(triggers, 100, now)` (`tasse next`, and `GET /tasks/{name}/next`'s
   work from a job's next run time).
Then over HTTP, on a real `tasse serve` of this tree with one task per schedule:
`GET /tasks/{name}/next?count=100`, with `GET /health` as the baseline, interleaved.
Ratios are new ÷ old of the medians. Also counted: the listings' times that differ between
old and new (the DST fixes), and that each equals the chained steps (listing = firing).
"""

from __future__ import annotations

import statistics
import sys
import time
import types
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from harness import (
    discard,
    git,
    machine_note,
    new_parser,
    print_summaries,
    print_table,
    serve,
    temp_data_dir,
    timed_get,
    write_task,
)

from tasse.schedule.specs import CronSpec
from tasse.schedule.triggers import make_trigger, upcoming

ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2025, 3, 29, 12, 0, tzinfo=ZONE)
COUNT = 100

#: label → a crontab line, or the fields of a `trigger: cron` mapping
SCHEDULES: dict[str, str | dict[str, str]] = {
    "line */15 9-17 * * mon-fri": "*/15 9-17 * * mon-fri",
    "line 0 12 1,15 * fri (day OR weekday)": "0 12 1,15 * fri",
    "line 0,30 2 * * * (in the gap)": "0,30 2 * * *",
    "line @monthly": "@monthly",
    "line */10 * * * * * (seconds)": "*/10 * * * * *",
    "mapping mon-fri 9-17 */15": {"day_of_week": "mon-fri", "hour": "9-17", "minute": "*/15"},
    "mapping fri 12:00 (weekly)": {"day_of_week": "fri", "hour": "12"},
}


def old_triggers_module(ref: str) -> types.ModuleType:
    """`ref`'s tasse/schedule/triggers.py, importing `ref`'s crontab.py (both from git)."""
    crontab = types.ModuleType("bench_old_crontab")
    sys.modules[crontab.__name__] = crontab  # (dataclasses look their module up)
    exec(
        compile(git("show", f"{ref}:tasse/schedule/crontab.py"), "old crontab.py", "exec"),
        vars(crontab),
    )
    source = git("show", f"{ref}:tasse/schedule/triggers.py").replace(
        "from tasse.schedule.crontab import", f"from {crontab.__name__} import"
    )
    triggers = types.ModuleType("bench_old_triggers")
    sys.modules[triggers.__name__] = triggers
    exec(compile(source, "old triggers.py", "exec"), vars(triggers))
    return triggers


def schedule_of(spec: str | dict[str, str]) -> Any:
    return spec if isinstance(spec, str) else CronSpec.model_validate({"trigger": "cron", **spec})


def steps(trigger: Any, first: datetime) -> list[float]:
    """Seconds of each of COUNT chained `get_next_fire_time(fire, fire)` calls."""
    times, fire = [], first
    for _ in range(COUNT):
        started = time.perf_counter()
        fire = trigger.get_next_fire_time(fire, fire)
        times.append(time.perf_counter() - started)
    return times


def listing_time(listing: Callable[..., object], trigger: Any) -> float:
    """Seconds of one listing of COUNT times from NOW."""
    started = time.perf_counter()
    listing([trigger], COUNT, NOW)
    return time.perf_counter() - started


def in_process(old: types.ModuleType, samples: int) -> dict[str, dict[str, list[float]]]:
    """Per schedule: old and new step and listing times, taking turns."""
    found: dict[str, dict[str, list[float]]] = {}
    for label, spec in SCHEDULES.items():
        schedule = schedule_of(spec)
        pair = {"old": old.make_trigger(schedule, ZONE), "new": make_trigger(schedule, ZONE)}
        listings = {"old": old.upcoming, "new": upcoming}
        result: dict[str, list[float]] = {
            key: [] for key in ("old step", "new step", "old list", "new list")
        }
        for kind, trigger in pair.items():  # warm-up
            listings[kind]([trigger], COUNT, NOW)
        for _ in range(samples):
            for kind, trigger in pair.items():
                first = trigger.get_next_fire_time(None, NOW)
                result[f"{kind} step"] += steps(trigger, first)
                result[f"{kind} list"].append(listing_time(listings[kind], trigger))
        found[label] = result
    return found


def differences(old: types.ModuleType) -> list[list[str]]:
    """Per schedule: how many of the 100 listed times old and new disagree on, and whether
    the new listing is the chain of scheduler steps."""
    rows = []
    for label, spec in SCHEDULES.items():
        schedule = schedule_of(spec)
        old_times = [
            t.astimezone(UTC) for t in old.upcoming([old.make_trigger(schedule, ZONE)], COUNT, NOW)
        ]
        trigger = make_trigger(schedule, ZONE)
        new_times = [t.astimezone(UTC) for t in upcoming([trigger], COUNT, NOW)]
        chained, fire = [], trigger.get_next_fire_time(None, NOW)
        while fire is not None and len(chained) < COUNT:
            chained.append(fire.astimezone(UTC))
            fire = trigger.get_next_fire_time(fire, datetime.now(UTC))  # a scheduler's `now`
        differ = len(set(old_times) ^ set(new_times))
        rows.append([label, str(differ), "yes" if chained == new_times else "NO"])
    return rows


def over_http(rounds: int) -> dict[str, list[float]]:
    """GET /tasks/{name}/next?count=100 per schedule and GET /health, interleaved."""
    data_dir = temp_data_dir("nextfire")
    names = {}
    try:
        for index, (label, spec) in enumerate(SCHEDULES.items()):
            name = f"next{index}"
            if isinstance(spec, str):
                yaml = f'timezone: Europe/Berlin\nschedule: "{spec}"\n'
            else:
                fields = ", ".join(f'{key}: "{value}"' for key, value in spec.items())
                yaml = f"timezone: Europe/Berlin\nscheduler: {{trigger: cron, {fields}}}\n"
            write_task(data_dir / "tasks", name, yaml, "print()\n")
            names[label] = name
        paths = {label: f"/tasks/{name}/next?count={COUNT}" for label, name in names.items()}
        paths["GET /health (baseline)"] = "/health"
        times: dict[str, list[float]] = {label: [] for label in paths}
        with serve(data_dir, len(names)) as server, server.client() as client:
            time.sleep(1.0)
            labels = list(paths)
            for number in range(rounds + 10):
                shift = number % len(labels)
                for label in labels[shift:] + labels[:shift]:
                    elapsed, answer = timed_get(client, paths[label])
                    if label in names and len(answer.json()) != COUNT:
                        raise RuntimeError(f"{label}: {len(answer.json())} times")
                    if number >= 10:  # (the first ten rounds warm up)
                        times[label].append(elapsed)
        return times
    finally:
        discard(data_dir)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def ratio_rows(
    found: dict[str, dict[str, list[float]]], what: str, fmt: Callable[[float], str]
) -> list[list[str]]:
    rows = []
    for label, result in found.items():
        old, new = (
            statistics.median(result[f"old {what}"]),
            statistics.median(result[f"new {what}"]),
        )
        rows.append([label, fmt(old), fmt(new), f"{new / old:.2f}"])
    return rows


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--samples", type=int, default=200, help="chains and listings per schedule")
    parser.add_argument("--rounds", type=int, default=200, help="HTTP requests per path")
    parser.add_argument("--old", default="main", help="the git revision to compare with")
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    print(machine_note())
    commits = [git("rev-parse", "--short", ref) for ref in ("HEAD", args.old)]
    print(f"new: commit {commits[0]}; old: {args.old} = {commits[1]}")
    old = old_triggers_module(args.old)
    print()
    print_table(
        [
            "listing of 100 from 2025-03-29 12:00 Berlin",
            "times old and new differ on",
            "listing = chained steps",
        ],
        differences(old),
    )
    found = in_process(old, args.samples)
    print()
    print_table(
        ["step: get_next_fire_time(fire, fire), µs median", "old", "new", "new ÷ old"],
        ratio_rows(found, "step", us),
    )
    print()
    print_table(
        ["upcoming(triggers, 100, now), ms median", "old", "new", "new ÷ old"],
        ratio_rows(found, "list", lambda s: f"{s * 1000:.2f}"),
    )
    if not args.no_http:
        print()
        print_summaries(over_http(args.rounds), corner="GET …/next?count=100, new, round trip (ms)")


if __name__ == "__main__":
    main()
