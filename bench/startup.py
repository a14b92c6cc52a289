"""Start-up with many task folders: time until every task is scheduled and the API answers.

    .venv/bin/python bench/startup.py --tasks 10000 --repeat 3

Target: ≤ 3 s to a GET /health that reports all tasks; peak RSS ≤ 200 MB; no thread or
file handle per task. Baselines in the same run: a bare interpreter (`python -c pass`) and
`tasse serve` with no task at all. Each start uses a fresh store (the SQLite file and logs
are deleted between starts; the task folders are kept, so the page cache is warm).
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

from harness import (
    OVERFLOW,
    bare_interpreter,
    cpu_seconds,
    discard,
    machine_note,
    make_tasks,
    new_parser,
    print_table,
    print_targets,
    proc_stats,
    serve,
    temp_data_dir,
    verdict,
)

TARGET_SECONDS = 3.0
TARGET_RSS_MB = 200
#: how long the ready server is watched for CPU use
IDLE_SECONDS = 3.0


def fresh_state(data_dir: Path) -> None:
    """Forget history and logs (a fresh store) but keep the task folders."""
    shutil.rmtree(data_dir / "logs", ignore_errors=True)
    for path in data_dir.glob("tasse.db*"):
        path.unlink()


def one_start(data_dir: Path, tasks: int, extra: list[str]) -> dict[str, float]:
    """Start a server on `data_dir` with a fresh store; seconds to ready and process stats."""
    fresh_state(data_dir)
    with serve(data_dir, tasks, *extra, timeout=120) as server:
        stats = proc_stats(server.pid)
        # An idle server should be idle: CPU used in the seconds after it became ready.
        time.sleep(IDLE_SECONDS / 2)
        cpu = cpu_seconds(server.pid)
        time.sleep(IDLE_SECONDS)
        idle_cpu = (cpu_seconds(server.pid) - cpu) / IDLE_SECONDS
        later = proc_stats(server.pid)
        overflows = server.log_count(OVERFLOW)
        errors = server.health["errors"]
    return {
        "seconds": server.ready_at - server.started_at,
        "idle_cpu": idle_cpu,
        "overflows": overflows,
        "errors": errors,
        "hwm_mb": max(stats["VmHWM"], later["VmHWM"]) / 1024,
        "rss_mb": later["VmRSS"] / 1024,
        "threads": max(stats["Threads"], later["Threads"]),
        "fds": max(stats["fds"], later["fds"]),
    }


def measure(data_dir: Path, tasks: int, repeat: int, extra: list[str]) -> dict[str, float]:
    """Medians (peaks for memory, threads, fds) over `repeat` starts."""
    starts = [one_start(data_dir, tasks, extra) for _ in range(repeat)]
    times = [s["seconds"] for s in starts]
    print(f"  {tasks} tasks: " + ", ".join(f"{t:.2f} s" for t in times), flush=True)
    return {
        "seconds": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "hwm_mb": max(s["hwm_mb"] for s in starts),
        "rss_mb": max(s["rss_mb"] for s in starts),
        "threads": max(s["threads"] for s in starts),
        "fds": max(s["fds"] for s in starts),
        "idle_cpu": max(s["idle_cpu"] for s in starts),
        "overflows": max(s["overflows"] for s in starts),
        "errors": max(s["errors"] for s in starts),
    }


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="starts per configuration")
    parser.add_argument("--log-level", help="passed to tasse serve (default: its own, INFO)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders")
    args = parser.parse_args()
    extra = ["--log-level", args.log_level] if args.log_level else []

    print(machine_note())
    empty_dir, full_dir = temp_data_dir("startup-empty"), temp_data_dir("startup")
    made = make_tasks(full_dir / "tasks", args.tasks)
    print(f"created {args.tasks} task folders in {made:.1f} s under {full_dir}", flush=True)

    bare = bare_interpreter(10)
    empty = measure(empty_dir, 0, args.repeat, extra)
    full = measure(full_dir, args.tasks, args.repeat, extra)

    rows = []
    for label, result in ((f"{args.tasks} tasks", full), ("0 tasks (baseline)", empty)):
        rows.append(
            [
                label,
                f"{result['seconds']:.2f}",
                f"{result['min']:.2f}-{result['max']:.2f}",
                f"{result['hwm_mb']:.0f}",
                f"{result['rss_mb']:.0f}",
                int(result["threads"]),
                int(result["fds"]),
                f"{result['idle_cpu']:.0%}",
                int(result["overflows"]),
                int(result["errors"]),
            ]
        )
    rows.append(["python -c pass (baseline)", f"{bare:.3f}"] + [""] * 8)
    print()
    headers = ["", "ready s (median)", "range", "peak RSS MB", "RSS MB", "threads", "open fds"]
    headers += ["CPU when idle", "inotify overflows", "task errors"]
    print_table(headers, rows)

    extra_threads = full["threads"] - empty["threads"]
    extra_fds = full["fds"] - empty["fds"]
    print_targets(
        [
            [
                f"ready ≤ {TARGET_SECONDS:g} s",
                f"{full['seconds']:.2f} s",
                verdict(full["seconds"] <= TARGET_SECONDS),
            ],
            [
                f"peak RSS ≤ {TARGET_RSS_MB} MB",
                f"{full['hwm_mb']:.0f} MB",
                verdict(full["hwm_mb"] <= TARGET_RSS_MB),
            ],
            [
                "no thread or fd per task",
                f"+{extra_threads:.0f} threads, +{extra_fds:.0f} fds vs 0 tasks",
                verdict(extra_threads < 5 and extra_fds < 5),
            ],
            [
                "idle after start-up (not a stated target)",
                f"{full['idle_cpu']:.0%} of a core, {full['overflows']:.0f} inotify overflows",
                verdict(full["idle_cpu"] < 0.05),
            ],
        ],
    )
    if not args.keep:
        for data_dir in (empty_dir, full_dir):
            discard(data_dir)


if __name__ == "__main__":
    main()
