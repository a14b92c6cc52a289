"""Schedule lag: how late a scheduled run's first statement executes, against bare Python.

    .venv/bin/python bench/lag.py --tasks 40 --duration 30

40 tasks fire every second (`scheduler: {trigger: interval, seconds: 1, start_date: …}`),
once with their start dates staggered across the second (25 ms apart) and once all at the
same instant. Each task.py prints time.time() as its first statement (after `import time`)
and then TASSE_SCHEDULED_AT; lag = printed time - scheduled time. The first 2 s of each
run are left out (warm-up). Tasse and the bare loop below take turns, in 3 rounds.

Floors in the same run:
- isolated: from just before subprocess.Popen([python, "task.py"]) to the child's printed
  time, one child at a time (the target's floor: lag p99 ≤ this median + 10 ms);
- same load: a bare loop in this process that sleeps until each due time of the same
  schedule and Popens the same task.py: what a perfect scheduler gets on this machine
  when 40 interpreters a second compete for its 2 cores.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from harness import (
    cpu_seconds,
    discard,
    machine_note,
    ms,
    new_parser,
    percentile,
    print_summaries,
    print_targets,
    serve,
    task_environ,
    temp_data_dir,
    verdict,
    write_task,
)

TARGET_OVER_FLOOR = 0.010
WARM_UP = 2.0
SCRIPT = """import time
now = time.time()
import os

print(now, os.environ["TASSE_SCHEDULED_AT"])
"""


def child_env(scheduled: float | None = None) -> dict[str, str]:
    """The environment a task sees, near enough (Tasse sets PYTHONUNBUFFERED too)."""
    iso = datetime.fromtimestamp(scheduled or time.time(), UTC).isoformat()
    return task_environ(TASSE_SCHEDULED_AT=iso)


def parse_lags(text: str, since: float) -> list[float]:
    """Lags from lines `<time.time()> <TASSE_SCHEDULED_AT>` whose schedule is after `since`."""
    lags = []
    for line in text.splitlines():
        try:
            printed, iso = line.split()
            scheduled = datetime.fromisoformat(iso).timestamp()
        except ValueError:
            continue  # a partial line from a run stopped at shutdown
        if scheduled >= since:
            lags.append(float(printed) - scheduled)
    return lags


def isolated_floor(folder: Path, samples: int) -> list[float]:
    """Popen → the child's first statement, one child at a time."""
    floors = []
    for _ in range(samples):
        env = child_env()
        started = time.time()
        child = subprocess.Popen([sys.executable, "task.py"], cwd=folder, env=env, stdout=-1)
        out, _ = child.communicate()
        floors.append(float(out.split()[0]) - started)
    return floors


def same_load_floor(folder: Path, offsets: list[float], duration: float) -> list[float]:
    """Run the same schedule with a bare sleep-then-Popen loop; return its lags."""
    base = int(time.time()) + 1
    due = sorted(base + second + offset for second in range(int(duration)) for offset in offsets)
    children: list[subprocess.Popen[bytes]] = []
    output: list[str] = []
    for when in due:
        time.sleep(max(0.0, when - time.time()))
        argv = [sys.executable, "task.py"]
        children.append(subprocess.Popen(argv, cwd=folder, env=child_env(when), stdout=-1))
        while children and children[0].poll() is not None:
            output.append(children.pop(0).communicate()[0].decode())
    output += [child.communicate()[0].decode() for child in children]
    return parse_lags("".join(output), base + WARM_UP)


def tasse_lags(offsets: list[float], duration: float) -> tuple[dict[str, list[float]], str]:
    """Run the schedule in `tasse serve`; lags split at the run's recorded started_at.

    started_at is taken when Tasse decides to launch, just before it spawns the process:
    `due → started_at` is the scheduler's share, `started_at → child` the spawn's share.
    """
    data_dir = temp_data_dir("lag")
    start = int(time.time()) - 60  # in the past: the first fire is the next whole period
    names = [f"lag-{index:02d}" for index in range(len(offsets))]
    for name, offset in zip(names, offsets, strict=True):
        start_date = datetime.fromtimestamp(start + offset, UTC).isoformat()
        schedule = f"scheduler:\n  trigger: interval\n  seconds: 1\n  start_date: '{start_date}'\n"
        write_task(data_dir / "tasks", name, schedule, SCRIPT)
    runs = {}
    with serve(data_dir, len(names)) as server, server.client() as client:
        since, cpu = time.time() + WARM_UP, cpu_seconds(server.pid)
        time.sleep(duration)
        cpu = cpu_seconds(server.pid) - cpu
        for name in names:
            answer = client.get(f"/tasks/{name}/runs", params={"limit": 1000})
            runs.update({run["id"]: run for run in answer.json()})
    parts: dict[str, list[float]] = {"lag": [], "due → started_at": [], "started_at → child": []}
    for log in (data_dir / "logs").glob("*/runs/*.log"):
        run = runs.get(log.stem)  # (runs started after the history was read are left out)
        for lag in parse_lags(log.read_text(), since) if run else []:
            dispatch = _seconds(run["started_at"]) - _seconds(run["scheduled_at"])
            parts["lag"].append(lag)
            parts["due → started_at"].append(dispatch)
            parts["started_at → child"].append(lag - dispatch)
    statuses = Counter(run["status"] for run in runs.values())
    note = f"runs by status {dict(statuses)}; server CPU {cpu / duration:.0%} of a core"
    note += f", {cpu / max(1, len(runs)) * 1000:.1f} ms per run"
    discard(data_dir)
    return parts, note


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--duration", type=float, default=30, help="Tasse seconds per mode")
    parser.add_argument("--baseline-duration", type=float, default=18, help="bare loop seconds")
    parser.add_argument("--rounds", type=int, default=3, help="Tasse and bare alternate this often")
    parser.add_argument("--stagger-ms", type=float, default=25)
    parser.add_argument("--floor-samples", type=int, default=60)
    args = parser.parse_args()

    print(machine_note())
    folder = temp_data_dir("lag-floor")
    (folder / "task.py").write_text(SCRIPT)
    floors = isolated_floor(folder, args.floor_samples // 2)
    stagger = args.stagger_ms / 1000
    modes = {
        f"staggered {args.stagger_ms:g} ms": [i * stagger for i in range(args.tasks)],
        "all at once": [0.0] * args.tasks,
    }
    # Tasse and the bare loop take turns, so that a burst of load from the machine's other
    # users lands on both rather than on one.
    results: dict[str, tuple[dict[str, list[float]], list[float]]] = {
        mode: ({"lag": [], "due → started_at": [], "started_at → child": []}, []) for mode in modes
    }
    for _ in range(args.rounds):
        for mode, offsets in modes.items():
            parts, note = tasse_lags(offsets, args.duration / args.rounds)
            for key, values in parts.items():
                results[mode][0][key].extend(values)
            results[mode][1].extend(
                same_load_floor(folder, offsets, args.baseline_duration / args.rounds)
            )
            print(f"  {mode}: {note}; {machine_note().split(', ', 2)[2]}", flush=True)
    floors += isolated_floor(folder, args.floor_samples - len(floors))
    discard(folder)

    floor = statistics.median(floors)
    print(f"\nlag of scheduled runs, {args.tasks} tasks every second (ms)")
    samples = {"floor: isolated Popen": floors}
    for mode, (parts, bare) in results.items():
        samples[f"{mode}: Tasse lag"] = parts["lag"]
        samples[f"{mode}: Tasse, due → started_at"] = parts["due → started_at"]
        samples[f"{mode}: Tasse, started_at → child"] = parts["started_at → child"]
        samples[f"{mode}: bare loop, same load"] = bare
    print_summaries(samples)
    verdicts = []
    for mode, (parts, bare) in results.items():
        p99 = percentile(parts["lag"], 99)
        verdicts.append(
            [
                f"{mode}: p99 ≤ floor + 10 ms = {ms(floor + TARGET_OVER_FLOOR)} ms",
                f"{ms(p99)} ms (bare loop p99 {ms(percentile(bare, 99))} ms)",
                verdict(p99 <= floor + TARGET_OVER_FLOOR),
            ]
        )
    print_targets(verdicts)


if __name__ == "__main__":
    main()
