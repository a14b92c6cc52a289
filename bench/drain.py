"""Issue 16, workers: 2,000 runs of `sleep 1` drained by 4 workers of 4 slots each.

    .venv/bin/python bench/drain.py --runs 2000

Target: the runs use ≥ 90 % of the slots' capacity, (runs x 1 s) / (slots x wall time),
the wall time from the first POST to the last run's `finished_at`. Also measured, without
targets, for the capacity model: the store rows written per run, PostgreSQL's CPU per
1,000 runs, and the Tasse processes' CPU per run.

One `tasse serve --cluster --run-on workers` node and `--workers` `tasse worker`s with
`--concurrency` slots each on a private PostgreSQL (the tests' launcher,
`tests/cluster/harness.py`). One task, `overlap: parallel` (so no `max_parallel`; the node
has no `--max-concurrent-runs`), whose script is `sleep 1`. After a settling pause, the
idle cluster is measured for `--idle` seconds (heartbeats, lease, polls: the rate that is
subtracted from the drain's rows and CPU for the "net" figures); then `--posters` threads
POST /tasks/<name>/run on the scheduler node `--runs` times as fast as it answers, and the
store is polled every 0.5 s until every run has ended.

Rows written: n_tup_ins + n_tup_upd + n_tup_del of pg_stat_user_tables over the tasse_*
and procrastinate_* tables, read after 11 s of quiet (a backend reports its counts at
most once a second, an idle one within 10 s). PostgreSQL's CPU: utime + stime of the
postmaster, of its live children, and of the children it reaped (cutime + cstime), from
/proc.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import httpx
from harness import (
    cpu_seconds,
    machine_note,
    new_parser,
    print_summaries,
    print_table,
    print_targets,
    verdict,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cluster.harness import Rig

TARGET = 0.90
TASK = "sleep1"
#: seconds without activity after which every backend has reported its counts
STATS_SETTLE = 11.0
TABLES = "relname LIKE 'tasse\\_%' OR relname LIKE 'procrastinate\\_%'"


def main() -> int:
    parser = new_parser(__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="slots of each worker")
    parser.add_argument("--posters", type=int, default=4, help="threads POSTing the runs")
    parser.add_argument("--idle", type=float, default=10, help="seconds of the idle baseline")
    parser.add_argument(
        "--profile",
        type=Path,
        help="a folder: py-spy samples (--gil) the scheduler and w1 while the runs are POSTed"
        " (10 s) and mid-drain (20 s, from 30 s after the first POST); a summary is printed",
    )
    args = parser.parse_args()
    print(machine_note())
    slots = args.workers * args.concurrency
    with Rig() as rig:
        rig.task(TASK, "overlap: parallel\n", script="sleep 1\n")
        node = rig.start("s", flags=("--run-on", "workers"))
        rig.wait_for_scheduler()
        workers = [f"w{index}" for index in range(1, args.workers + 1)]
        for name in workers:
            rig.start_worker(name, flags=("--concurrency", str(args.concurrency)))
        assert node.process is not None
        pids = {"scheduler": node.process.pid}
        pids.update({name: rig.workers[name].pid for name in workers})
        meter = Meter(rig, pids)
        time.sleep(STATS_SETTLE)
        idle = meter.between(lambda: time.sleep(args.idle))
        print(f"idle {args.idle:g} s: {idle.summary()}", flush=True)
        drained = meter.between(lambda: drain(rig, node.http.base_url, args, pids), settle=True)
        runs = rig.query(
            "SELECT node, EXTRACT(EPOCH FROM started_at AT TIME ZONE 'UTC'),"
            " EXTRACT(EPOCH FROM finished_at AT TIME ZONE 'UTC'), status"
            " FROM tasse_runs WHERE task = :task",
            task=TASK,
        )
    code = report(args, slots, idle, drained, runs)
    if args.profile:
        print_profiles(args.profile)
    return code


# -- the drain ------------------------------------------------------------------------------


class Drain:
    """What one drain saw: POST times, the backlog over time, its wall time."""

    def __init__(self) -> None:
        self.first_post = self.last_post = float("nan")
        self.posts: list[float] = []
        #: (time.time(), jobs todo, jobs doing, runs ended) every 0.5 s
        self.backlog: list[tuple[float, int, int, int]] = []
        #: (time.time(), CPU seconds of the scheduler node, of PostgreSQL) at each poll
        self.cpu: list[tuple[float, float, float]] = []
        self.refused: Counter[int] = Counter()
        #: seconds from the first POST to the poll that saw every run ended
        self.seconds = float("nan")
        self.lock = threading.Lock()


def drain(rig: Rig, url: Any, args: Any, pids: dict[str, int]) -> Drain:
    """POST the runs from `--posters` threads; poll the store until all of them ended."""
    scheduler = pids["scheduler"]
    profiled = {"scheduler": scheduler, "w1": pids["w1"]} if args.profile else {}
    spies = Spies(args.profile, profiled)
    seen = Drain()
    base, extra = divmod(args.runs, args.posters)
    share = [base + (i < extra) for i in range(args.posters)]
    threads = [threading.Thread(target=_post, args=(str(url), n, seen)) for n in share]
    seen.first_post = time.time()
    for thread in threads:
        thread.start()
    spies.record("posting", 10)
    deadline = time.time() + args.runs / (args.workers * args.concurrency) * 3 + 120
    while time.time() < deadline:
        todo, doing, ended = _backlog(rig)
        now = time.time()
        seen.backlog.append((now, todo, doing, ended))
        seen.cpu.append((now, cpu_seconds(scheduler), postgres_cpu(rig)))
        if ended >= args.runs:
            seen.seconds = time.time() - seen.first_post
            break
        if time.time() - seen.first_post >= 30:
            spies.record("steady", 20)
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    spies.wait()
    seen.last_post = max(seen.posts, default=float("nan"))
    return seen


def _post(url: str, count: int, seen: Drain) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(count):
            answer = client.post(f"/tasks/{TASK}/run")
            with seen.lock:
                if answer.status_code == 202:
                    seen.posts.append(time.time())
                else:
                    seen.refused[answer.status_code] += 1


def _backlog(rig: Rig) -> tuple[int, int, int]:
    jobs = dict(rig.query("SELECT status, count(*) FROM procrastinate_jobs GROUP BY status"))
    ended = rig.query(
        "SELECT count(*) FROM tasse_runs WHERE task = :task"
        " AND status NOT IN ('queued', 'running')",
        task=TASK,
    )[0][0]
    return jobs.get("todo", 0), jobs.get("doing", 0), ended


# -- profiles ------------------------------------------------------------------------------


class Spies:
    """py-spy recordings of some processes, each window once (nothing without a folder)."""

    def __init__(self, folder: Path | None, pids: dict[str, int]):
        self.folder = folder
        self.pids = pids
        self.spies: list[subprocess.Popen[bytes]] = []
        self.windows: set[str] = set()

    def record(self, window: str, seconds: int) -> None:
        if self.folder is None or window in self.windows:
            return
        self.windows.add(window)
        self.folder.mkdir(parents=True, exist_ok=True)
        spy = str(Path(sys.executable).with_name("py-spy"))
        for role, pid in self.pids.items():
            output = self.folder / f"{window}-{role}.txt"
            argv = [spy, "record", "--gil", "-r", "100", "-f", "raw", "-d", str(seconds)]
            argv += ["-p", str(pid)]
            self.spies.append(
                subprocess.Popen([*argv, "-o", str(output)], stdout=DEVNULL, stderr=DEVNULL)
            )

    def wait(self) -> None:
        for spy in self.spies:
            spy.wait(60)


def print_profiles(folder: Path) -> None:
    """For each recording, the Tasse functions with the most samples (inclusive)."""
    for recording in sorted(folder.glob("*.txt")):
        inclusive: Counter[str] = Counter()
        total = 0
        for line in recording.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            total += int(count)
            frames = {_tasse_frame(frame) for frame in stack.split(";")} - {None}
            for frame in frames:
                inclusive[frame] += int(count)
        print(f"\n{recording.name}: {total} samples (100/s, the thread holding the GIL)")
        rows = [[f, n, f"{n / total:.0%}"] for f, n in inclusive.most_common(12)]
        print_table(["Tasse function (file)", "samples", "share"], rows)


def _tasse_frame(frame: str) -> str | None:
    """`Class.function (tasse/part/module.py)` for a frame of Tasse's code, else None."""
    found = re.match(r"(.+) \((?:.*/)?(tasse/[^:]+):\d+\)$", frame)
    return f"{found[1]} ({found[2]})" if found else None


# -- rows and CPU ---------------------------------------------------------------------------


class Measure:
    """Rows written, CPU seconds by process, and wall seconds between two readings."""

    def __init__(self, rows: Counter[str], cpu: dict[str, float], seconds: float, result: Any):
        self.rows = rows
        self.cpu = cpu
        self.seconds = seconds
        self.result = result

    def total_rows(self) -> int:
        return sum(self.rows.values())

    def summary(self) -> str:
        cpu = ", ".join(f"{role} {seconds:.2f} s" for role, seconds in self.cpu.items())
        rows = self.total_rows()
        return f"{rows} rows written ({rows / self.seconds:.1f}/s); CPU {cpu}"


class Meter:
    """Reads the store's write counters and the processes' CPU."""

    def __init__(self, rig: Rig, pids: dict[str, int]):
        self.rig = rig
        self.pids = pids

    def between(self, work: Callable[[], Any], settle: bool = False) -> Measure:
        """The rows and CPU of `work` (read after the counters settled, if `settle`)."""
        rows, cpu, started = self.rows(), self.cpu(), time.time()
        result = work()
        if settle:
            time.sleep(STATS_SETTLE)
        rows_after, cpu_after = self.rows(), self.cpu()
        spent = {role: cpu_after[role] - cpu[role] for role in cpu}
        return Measure(rows_after - rows, spent, time.time() - started, result)

    def rows(self) -> Counter[str]:
        found = self.rig.query(
            f"SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
            f" WHERE {TABLES}"
        )
        counts: Counter[str] = Counter()
        for table, inserted, updated, deleted in found:
            counts[f"{table} ins"] += inserted
            counts[f"{table} upd"] += updated
            counts[f"{table} del"] += deleted
        return counts

    def cpu(self) -> dict[str, float]:
        spent = {role: cpu_seconds(pid) for role, pid in self.pids.items()}
        spent["postgres"] = postgres_cpu(self.rig)
        return spent


def postgres_cpu(rig: Rig) -> float:
    """CPU seconds of the private cluster: its postmaster, live backends and reaped ones."""
    postmaster, *children = rig.postgres.processes()
    total = _stat_ticks(postmaster, reaped=True)
    total += sum(_stat_ticks(pid) for pid in children)
    return total / os.sysconf("SC_CLK_TCK")


def _stat_ticks(pid: int, reaped: bool = False) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # a backend that ended since it was listed: its parent has it now
        return 0
    ticks = int(fields[11]) + int(fields[12])
    return ticks + (int(fields[13]) + int(fields[14]) if reaped else 0)


# -- the report -----------------------------------------------------------------------------


def report(args: Any, slots: int, idle: Measure, drained: Measure, runs: list[Any]) -> int:
    """The tables: the drain, its timeline, rows and CPU; then the target."""
    seen: Drain = drained.result
    statuses = Counter(status for *_, status in runs)
    finished = [float(f) for _, _, f, status in runs if f is not None]
    wall = max(finished) - seen.first_post
    capacity = args.runs * 1.0 / (slots * wall)
    posted = seen.last_post - seen.first_post
    print(f"\n{args.runs} runs on {args.workers} workers x {args.concurrency} slots")
    print(f"statuses {dict(statuses)}; refused POSTs {dict(seen.refused) or 'none'}")
    print(
        f"POSTs: {len(seen.posts)} in {posted:.1f} s ({len(seen.posts) / posted:.0f}/s);"
        f" wall time {wall:.1f} s (ideal {args.runs / slots:.1f} s)"
    )
    print(enqueue_note(seen, args.runs))
    timeline(seen, runs)
    durations = [float(f) - float(s) for _, s, f, status in runs if status == "succeeded"]
    gaps = slot_gaps(runs)
    print()
    print_summaries(
        {
            "run started_at → finished_at (s)": durations,
            "slot idle: a finish → the next start on its worker (s)": gaps,
        },
        fmt=lambda s: f"{s:.3f}",
    )
    over, idle_slot = statistics.mean(durations) - 1.0, statistics.mean(gaps)
    print(
        f"means: a run's own overhead beyond 1 s {over * 1000:.1f} ms, a slot's idle time"
        f" between runs {idle_slot * 1000:.1f} ms: a slot's cycle is"
        f" {(1 + over + idle_slot) * 1000:.0f} ms for 1 s of work"
    )
    print(follow_cost(seen))
    resources(args.runs, idle, drained)
    ok = capacity >= TARGET and statuses.get("succeeded", 0) == args.runs
    print_targets(
        [
            [
                "≥ 90 % of slot capacity, all succeeded",
                f"{capacity:.1%} ({args.runs} x 1 s / ({slots} x {wall:.1f} s))",
                verdict(ok),
            ]
        ]
    )
    return 0 if ok else 1


def enqueue_note(seen: Drain, runs: int) -> str:
    """When the store had every run's job (by the polls), and the scheduler's CPU till then."""
    enqueued = next((t for t, todo, doing, ended in seen.backlog if todo + doing + ended >= runs))
    took = enqueued - seen.first_post
    cpu = _cpu_until(seen, enqueued)
    return (
        f"every run's job in the store (jobs + ended runs = {runs}) {took:.1f} s after the"
        f" first POST ({runs / took:.0f}/s); scheduler CPU till then {cpu * 1000 / runs:.1f} ms"
        " per run"
    )


def _cpu_until(seen: Drain, moment: float) -> float:
    """The scheduler's CPU seconds from the first poll to the poll at `moment`."""
    first = seen.cpu[0][1]
    return next(cpu for t, cpu, _ in seen.cpu if t >= moment) - first


def _shares(seen: Drain, low: float, high: float) -> tuple[str, str]:
    """The scheduler's and PostgreSQL's CPU, in % of a core, between two times."""
    inside = [sample for sample in seen.cpu if low <= sample[0] < high]
    if len(inside) < 2:
        return "", ""
    (t0, s0, p0), (t1, s1, p1) = inside[0], inside[-1]
    return f"{(s1 - s0) / (t1 - t0):.0%}", f"{(p1 - p0) / (t1 - t0):.0%}"


def follow_cost(seen: Drain) -> str:
    """The scheduler's CPU against the runs it follows (queued or running), once the POSTs
    are over: a least-squares line through the 0.5 s polls, in 5 s windows."""
    after = [b for b in seen.backlog if b[0] > seen.last_post + 1]
    cpu = {t: c for t, c, _ in seen.cpu}
    points = []
    for start in range(0, len(after) - 10, 10):
        (t0, todo, doing, _), (t1, *_) = after[start], after[start + 10]
        share = (cpu[t1] - cpu[t0]) / (t1 - t0)
        points.append((todo + doing, share))
    if len(points) < 3:
        return "too few polls after the POSTs for the cost of following"
    slope, intercept = statistics.linear_regression(*zip(*points, strict=True))
    return (
        f"scheduler CPU after the POSTs ≈ {intercept:.1%} of a core + {slope * 1e6:.0f} µs per"
        f" second per run it follows (least squares, {len(points)} windows of 5 s)"
    )


def timeline(seen: Drain, runs: list[Any]) -> None:
    """Starts, ends and the queue's backlog, by 10 % of the drain."""
    starts = sorted(float(s) for _, s, _, _ in runs if s is not None)
    ends = sorted(float(f) for _, _, f, _ in runs if f is not None)
    begin, end = seen.first_post, max(ends)
    step = (end - begin) / 10
    rows = []
    for tenth in range(10):
        low, high = begin + tenth * step, begin + (tenth + 1) * step
        posted = sum(low <= t < high for t in seen.posts)
        started = sum(low <= t < high for t in starts)
        backlog = [(todo, doing) for t, todo, doing, _ in seen.backlog if low <= t < high]
        todo = statistics.median(b[0] for b in backlog) if backlog else 0
        doing = statistics.median(b[1] for b in backlog) if backlog else 0
        rows.append(
            [
                f"{low - begin:.1f}\N{EN DASH}{high - begin:.1f}",
                posted,
                f"{started / step:.1f}",
                f"{todo:g}",
                f"{doing:g}",
                *_shares(seen, low, high),
            ]
        )
    print()
    headers = ["s since the first POST", "POSTs", "starts/s", "jobs todo", "jobs doing"]
    print_table([*headers, "scheduler CPU", "PostgreSQL CPU"], rows)


def slot_gaps(runs: list[Any]) -> list[float]:
    """For each worker, the k-th end → the (k + slots)-th start, its slots kept busy."""
    by_node: dict[str, tuple[list[float], list[float]]] = {}
    for node, started, finished, _ in runs:
        if started is None or finished is None:
            continue
        starts, ends = by_node.setdefault(node, ([], []))
        starts.append(float(started))
        ends.append(float(finished))
    gaps = []
    for starts, ends in by_node.values():
        starts.sort()
        ends.sort()
        slots = _slots_of(starts, ends)
        gaps += [starts[k + slots] - ends[k] for k in range(len(ends) - slots)]
    return gaps


def _slots_of(starts: list[float], ends: list[float]) -> int:
    """The most runs that were running at once on a worker."""
    events = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def resources(runs: int, idle: Measure, drained: Measure) -> None:
    """Rows written per run (by table, then all) and CPU per 1,000 runs, gross and net."""
    rate = drained.seconds / idle.seconds
    print(f"\nstore rows written per run (the drain's {drained.seconds:.1f} s; idle for as long)")
    rows = []
    for key in sorted(drained.rows):
        if drained.rows[key] or idle.rows[key]:
            rows.append(
                [key, f"{drained.rows[key] / runs:.2f}", f"{idle.rows[key] * rate / runs:.2f}"]
            )
    gross, quiet = drained.total_rows(), idle.total_rows() * rate
    rows.append(["all", f"{gross / runs:.2f}", f"{quiet / runs:.2f}"])
    rows.append(["all, net of idle", f"{(gross - quiet) / runs:.2f}", ""])
    print_table(["table, counter", "per run", "idle, per run"], rows)
    print(f"\nCPU seconds per 1,000 runs (the drain's {drained.seconds:.1f} s)")
    cpu_rows = []
    busy = drained.result.seconds
    for role, spent in drained.cpu.items():
        quiet_cpu = idle.cpu[role] * rate
        settling = idle.cpu[role] / idle.seconds * (drained.seconds - busy)
        cpu_rows.append(
            [
                role,
                f"{spent * 1000 / runs:.2f}",
                f"{(spent - quiet_cpu) * 1000 / runs:.2f}",
                f"{(spent - settling) / busy:.0%}",
                f"{idle.cpu[role] / idle.seconds:.0%}",
            ]
        )
    print_table(["process", "gross", "net of idle", "of a core, drain", "idle"], cpu_rows)
    print("(of a core, drain: from the first POST to the poll that saw all ended)")


if __name__ == "__main__":
    sys.exit(main())
