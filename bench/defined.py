"""Issue 4: defined tasks and the job store — next fires, start-up and GET /tasks on PostgreSQL.

    /tmp/venv/bin/python bench/defined.py --tasks 10000 --repeat 3

Targets (issue 4):
1. `GET /tasks/{name}/next?count=100` ≤ 5 ms, for a crontab-line task, a cron-mapping task
   and an interval task (median and p95 of many requests; baselines in the same run and on
   the same server: `GET /health`, and `GET /tasks/{name}`, which computes nothing);
2. 10,000 API-defined tasks on PostgreSQL: start-up ≤ 5 s, from spawning
   `tasse serve --store-address postgresql://… --store-table-name <unique>` to a
   `GET /health` that reports all of them (as bench/startup.py measures readiness);
3. `GET /tasks` with those 10,000 tasks ≤ 300 ms (median, p95).
Also: the same start-up on SQLite for comparison, 0 tasks on PostgreSQL as the baseline,
and peak RSS. A latency target passes when its p95 is within it (so its median is too);
start-up is judged on the median of the timed starts.

The tasks are written straight into the job store beforehand with
`RunStore.save_task(name, "api", definition)`, each definition validated and dumped exactly
as `POST /tasks` stores it: crontab lines (5, 6 and 7 fields, names, day OR weekday),
cron and interval mappings, some with a time zone, half commands and half python_refs,
every one different, none due during a run (intervals of an hour or more, crons in
January). The five tasks `next-*` are among them: the target's three (a crontab line
and a cron mapping of the same schedule, an interval), a day-OR-weekday crontab line and a
weekly cron mapping.

Starts alternate between the configurations. Each configuration's data folder (the
defined tasks' work folders, the python_refs' shared bare environment) is made by a first,
"cold" start that is reported apart; the timed starts then find it, as a restart does.
The tables get a unique prefix per run and are dropped at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from harness import (
    Server,
    bare_interpreter,
    cpu_seconds,
    discard,
    git,
    machine_note,
    new_parser,
    print_summaries,
    print_table,
    print_targets,
    proc_stats,
    serve,
    summary,
    temp_data_dir,
    timed_get,
    verdict,
    wait_env,
)
from sqlalchemy import create_engine, text

from tasse.schedule.triggers import upcoming
from tasse.store.runs import RunStore
from tasse.tasks.definitions import TaskDefinition, to_task
from tasse.tasks.triggers import build_triggers

PG_ADDRESS = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_NEXT_MS = 5.0
TARGET_START_S = 5.0
TARGET_LIST_MS = 300.0
NEXT_COUNT = 100

#: the tasks `next?count=100` is asked of: label → (name, how it is scheduled)
NEXT_TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "crontab line": ("next-crontab", {"schedule": "*/15 9-17 * * mon-fri"}),
    "cron mapping": (
        "next-cron",
        {
            "scheduler": {
                "trigger": "cron",
                "day_of_week": "mon-fri",
                "hour": "9-17",
                "minute": "*/15",
            }
        },
    ),
    "interval": ("next-interval", {"schedules": [{"trigger": "interval", "minutes": 15}]}),
    # Beyond the target's three: what a schedule's shape costs.
    "crontab line, day OR weekday": ("next-either", {"schedule": "0 12 1,15 * fri"}),
    "cron mapping, weekly": (
        "next-weekly",
        {"scheduler": {"trigger": "cron", "day_of_week": "fri", "hour": 12}},
    ),
}
#: the labels the target names
TARGET_KINDS = ("crontab line", "cron mapping", "interval")


# -- the tasks ------------------------------------------------------------------------------


def schedule_of(index: int) -> dict[str, Any]:
    """One of five schedule forms; (minute, hour, day) never repeats below 40,320 tasks."""
    minute, hour = index % 60, (index // 60) % 24
    day, second = 1 + (index // 1440) % 28, (index // 1440) % 60
    kind = index % 5
    if kind == 0:  # a 5-field crontab line as the `schedule:` shorthand
        return {"schedule": f"{minute} {hour} {day} 1 *"}
    if kind == 1:  # 7 fields, names, day OR weekday: two APScheduler triggers
        return {"schedules": [f"{second} {minute} {hour} {day} jan mon 2099"]}
    if kind == 2:  # the APScheduler mapping form
        cron = {"trigger": "cron", "month": 1, "day": day, "hour": hour, "minute": minute}
        return {"scheduler": cron}
    if kind == 3:
        return {"schedules": [{"trigger": "interval", "minutes": 60 + index}]}
    return {"schedule": {"trigger": "interval", "hours": 1 + index % 100, "seconds": index}}


def definition_of(index: int) -> dict[str, Any]:
    """Task number `index`: a command or a python_ref, on one of the schedule forms."""
    body: dict[str, Any] = {"name": f"d{index:05d}", "description": f"defined task {index}"}
    body.update(schedule_of(index))
    if index % 7 == 0:
        body["timezone"] = "Europe/Berlin"
    if index % 2:
        body.update(python_ref="builtins:print", args=[index], kwargs={"sep": " "})
    else:
        body.update(command=["echo", f"task {index}"], env={"BENCH_INDEX": str(index)})
    return body


def definitions(count: int) -> list[dict[str, Any]]:
    """`count` definitions, the `next-*` tasks first, as POST /tasks would store them."""
    bodies = list(next_bodies().values())
    bodies += [definition_of(index) for index in range(len(bodies), count)]
    return [
        TaskDefinition.model_validate(body).model_dump(mode="json", exclude_defaults=True)
        for body in bodies[:count]
    ]


def fill_store(address: str, table: str, bodies: list[dict[str, Any]]) -> float:
    """Create the store's tables (migrations) and save every task; seconds it took."""
    started = time.perf_counter()
    store = RunStore(address, None, table)
    try:
        for body in bodies:
            store.save_task(body["name"], "api", body)
    finally:
        store.close()
    return time.perf_counter() - started


def drop_tables(address: str, tables: list[str]) -> None:
    """Drop every table of these store prefixes (runs, tasks, fire times, Alembic's)."""
    engine = create_engine(address.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as connection:
            for table in tables:
                for suffix in ("runs", "tasks", "fire_times", "alembic_version"):
                    connection.execute(text(f'DROP TABLE IF EXISTS "{table}_{suffix}"'))
    finally:
        engine.dispose()


# -- starts ---------------------------------------------------------------------------------


class Config:
    """One way of starting: a data folder, extra flags, how many tasks to expect."""

    def __init__(self, label: str, tasks: int, extra: list[str]):
        self.label, self.tasks, self.extra = label, tasks, extra
        self.data_dir = temp_data_dir("defined")
        self.starts: list[dict[str, float]] = []
        self.cold: dict[str, float] = {}
        self.argv: list[str] = []


def one_start(config: Config, while_up: Callable[[Server], None] | None = None) -> dict[str, float]:
    """Start a server; seconds to ready, CPU it used, memory; then `while_up(server)`."""
    with serve(config.data_dir, config.tasks, *config.extra, timeout=180) as server:
        cpu = cpu_seconds(server.pid)
        stats = proc_stats(server.pid)
        assert server.process is not None
        config.argv = [str(part) for part in server.process.args]  # type: ignore[union-attr]
        if server.health["errors"]:
            raise RuntimeError(f"{server.health['errors']} task errors, see {server.log_path}")
        if while_up is not None:
            while_up(server)
        stopping = time.perf_counter()
    stopped = time.perf_counter()
    return {
        "seconds": server.ready_at - server.started_at,
        "cpu": cpu,
        "hwm_mb": stats["VmHWM"] / 1024,
        "rss_mb": stats["VmRSS"] / 1024,
        "threads": stats["Threads"],
        "stop": stopped - stopping,
    }


def env_status(server: Server, name: str, timeout: float = 300) -> str:
    """Wait until the task's environment is built (the cold start builds the bare one)."""
    with server.client(timeout=10) as client:
        try:
            env = wait_env(client, name, ("ready", "failed", "none"), timeout, poll=0.2)
        except TimeoutError:
            return "still building"
    return str(env["status"])


# -- requests -------------------------------------------------------------------------------


def interleaved(
    client: httpx.Client,
    paths: dict[str, str],
    rounds: int,
    check: Callable[[str, httpx.Response], None],
) -> dict[str, list[float]]:
    """Each path once per round, in rotating order, so load bursts hit every path alike."""
    labels = list(paths)
    times: dict[str, list[float]] = {label: [] for label in labels}
    for number in range(rounds):
        shift = number % len(labels)
        for label in labels[shift:] + labels[:shift]:
            elapsed, answer = timed_get(client, paths[label])
            check(label, answer)
            times[label].append(elapsed)
    return times


def cpu_per_request(
    client: httpx.Client, pid: int, paths: dict[str, str], count: int
) -> dict[str, float]:
    """The server's CPU seconds per request, from a batch of `count` of each."""
    result = {}
    for label, path in paths.items():
        before = cpu_seconds(pid)
        for _ in range(count):
            client.get(path)
        result[label] = (cpu_seconds(pid) - before) / count
    return result


def in_process_next(bodies: dict[str, dict[str, Any]], samples: int) -> dict[str, list[float]]:
    """What the route computes, timed here: `upcoming(triggers, 100, now)` for each task."""
    times: dict[str, list[float]] = {}
    for label, body in bodies.items():
        task = to_task(TaskDefinition.model_validate(body), "api", Path("/nonexistent"))
        triggers = build_triggers(task, "UTC")
        upcoming(triggers, NEXT_COUNT, datetime.now(UTC))  # warm-up
        samples_ = []
        for _ in range(samples):
            started = time.perf_counter()
            fires = upcoming(triggers, NEXT_COUNT, datetime.now(UTC))
            samples_.append(time.perf_counter() - started)
        assert len(fires) == NEXT_COUNT, (label, len(fires))
        times[label] = samples_
    return times


class Measurements:
    """The request measurements, made on a running server with every task loaded."""

    def __init__(self, tasks: int, rounds: int, list_samples: int, cpu_batch: int):
        self.tasks, self.rounds, self.list_samples = tasks, rounds, list_samples
        self.cpu_batch = cpu_batch
        self.next_times: dict[str, list[float]] = {}
        self.next_cpu: dict[str, float] = {}
        self.list_times: dict[str, list[float]] = {}
        self.list_cpu: dict[str, float] = {}
        self.list_bytes = 0
        self.stats_after: dict[str, int] = {}

    def __call__(self, server: Server) -> None:
        time.sleep(2.0)  # let what follows start-up (environment checks, watcher) settle
        with httpx.Client(base_url=server.url, timeout=60) as client:
            self.next_fires(client, server.pid)
            self.list_tasks(client, server.pid)
        self.stats_after = proc_stats(server.pid)

    def next_fires(self, client: httpx.Client, pid: int) -> None:
        paths = {
            f"next, {label}": f"/tasks/{name}/next?count={NEXT_COUNT}"
            for label, (name, _) in NEXT_TASKS.items()
        }
        paths["GET /health (baseline)"] = "/health"
        paths["GET /tasks/{name} (baseline)"] = "/tasks/next-cron"

        def check(label: str, answer: httpx.Response) -> None:
            if label.startswith("next") and len(answer.json()) != NEXT_COUNT:
                raise RuntimeError(f"{label}: {len(answer.json())} fire times, not {NEXT_COUNT}")

        interleaved(client, paths, 20, check)  # warm-up
        # The same schedule as a crontab line and as a mapping must give the same times.
        line, mapping = (client.get(paths[f"next, {k}"]).json() for k in TARGET_KINDS[:2])
        if line != mapping:
            print(f"  !! next-crontab and next-cron differ: {line[:3]} … vs {mapping[:3]} …")
        self.next_times = interleaved(client, paths, self.rounds, check)
        self.next_cpu = cpu_per_request(client, pid, paths, self.cpu_batch)

    def list_tasks(self, client: httpx.Client, pid: int) -> None:
        paths = {"GET /tasks": "/tasks", "GET /health (baseline)": "/health"}

        def check(label: str, answer: httpx.Response) -> None:
            if label == "GET /tasks":
                self.list_bytes = len(answer.content)
                if len(answer.json()) != self.tasks:
                    raise RuntimeError(f"GET /tasks: {len(answer.json())} tasks")

        interleaved(client, paths, 2, check)  # warm-up
        self.list_times = interleaved(client, paths, self.list_samples, check)
        self.list_cpu = cpu_per_request(client, pid, {"GET /tasks": "/tasks"}, 5)


# -- the run --------------------------------------------------------------------------------


def git_state() -> str:
    """The commit, and whether the working tree differs from it."""
    dirty = [line[3:] for line in git("status", "--porcelain").splitlines()]
    changed = [path for path in dirty if path.startswith("tasse/")]
    note = f", tasse/ differs from it in {len(changed)} file(s)" if changed else ""
    return f"commit {git('rev-parse', '--short', 'HEAD')}{note}"


def start_row(label: str, config: Config) -> list[str]:
    times = [s["seconds"] for s in config.starts]
    return [
        label,
        f"{statistics.median(times):.2f}",
        f"{min(times):.2f}-{max(times):.2f}",
        f"{statistics.median(s['cpu'] for s in config.starts):.2f}",
        f"{config.cold['seconds']:.2f}",
        f"{max(s['hwm_mb'] for s in config.starts):.0f}",
        f"{max(s['rss_mb'] for s in config.starts):.0f}",
        f"{max(s['threads'] for s in config.starts):.0f}",
        f"{statistics.median(s['stop'] for s in config.starts):.2f}",
    ]


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed starts per configuration")
    parser.add_argument("--rounds", type=int, default=300, help="requests per path, for next")
    parser.add_argument("--list-samples", type=int, default=20, help="GET /tasks requests")
    parser.add_argument("--cpu-batch", type=int, default=200, help="requests per CPU batch")
    parser.add_argument("--pg-address", default=PG_ADDRESS)
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite comparison")
    parser.add_argument("--keep", action="store_true", help="keep the tables and data folders")
    args = parser.parse_args()
    if args.tasks < len(NEXT_TASKS):
        parser.error(f"--tasks must be at least {len(NEXT_TASKS)}")
    # Server() drops TASSE_* from the server's environment; Supertask's names count too.
    for key in [key for key in os.environ if key.startswith("ST_STORE_")]:
        del os.environ[key]

    print(machine_note())
    print(git_state())
    table = f"bench{datetime.now():%H%M%S}_{os.getpid()}"
    empty_table = f"{table}_0"
    print(f"store tables: {table}_*, {empty_table}_* on {args.pg_address}", flush=True)

    bodies = definitions(args.tasks)
    configs = {
        "pg": Config(
            "PostgreSQL",
            args.tasks,
            ["--store-address", args.pg_address, "--store-table-name", table],
        ),
        "pg0": Config(
            "PostgreSQL, 0 tasks",
            0,
            ["--store-address", args.pg_address, "--store-table-name", empty_table],
        ),
    }
    if not args.no_sqlite:
        configs["sqlite"] = Config("SQLite", args.tasks, ["--store-table-name", table])
    measured = Measurements(args.tasks, args.rounds, args.list_samples, args.cpu_batch)
    try:
        fill_stores(configs, args.pg_address, table, empty_table, bodies)
        python_ref_task = next(b["name"] for b in bodies if "python_ref" in b)
        run_starts(configs, args.repeat, python_ref_task)
        print("requests, on a PostgreSQL server with every task loaded…", flush=True)
        measured_start = one_start(configs["pg"], measured)
        bare = bare_interpreter(10)
    finally:
        if not args.keep:
            drop_tables(args.pg_address, [table, empty_table])
            for config in configs.values():
                discard(config.data_dir)
    report(args, configs, measured, measured_start, bare)


def fill_stores(
    configs: dict[str, Config],
    pg_address: str,
    table: str,
    empty_table: str,
    bodies: list[dict[str, Any]],
) -> None:
    """Save the tasks in PostgreSQL (and SQLite); create the empty store's tables too."""
    filled = fill_store(pg_address, table, bodies)
    print(f"saved {len(bodies)} tasks in PostgreSQL in {filled:.1f} s", flush=True)
    fill_store(pg_address, empty_table, [])
    if "sqlite" in configs:
        address = f"sqlite:///{configs['sqlite'].data_dir / 'tasse.db'}"
        filled = fill_store(address, table, bodies)
        print(f"saved {len(bodies)} tasks in SQLite in {filled:.1f} s", flush=True)


def run_starts(configs: dict[str, Config], repeat: int, python_ref_task: str) -> None:
    """A cold start of each configuration, then `repeat` rounds of timed starts."""
    for config in configs.values():
        status: list[str] = []

        def build_env(server: Server, status: list[str] = status) -> None:
            status.append(env_status(server, python_ref_task))

        config.cold = one_start(config, build_env if config.tasks else None)
        print(
            f"  {config.label}: cold start {config.cold['seconds']:.2f} s"
            + (f", bare environment {status[0]}" if status else ""),
            flush=True,
        )
    for _ in range(repeat):
        for config in configs.values():
            config.starts.append(one_start(config))
    for config in configs.values():
        times = ", ".join(f"{s['seconds']:.2f} s" for s in config.starts)
        print(f"  {config.label}: {times}", flush=True)


def report(
    args: argparse.Namespace,
    configs: dict[str, Config],
    measured: Measurements,
    measured_start: dict[str, float],
    bare: float,
) -> None:
    print()
    print("The server, as every start ran it (port and folder vary):")
    print("  " + " ".join(configs["pg"].argv))
    print()
    tasks = f"{args.tasks:,}"
    rows = [start_row(f"{tasks} tasks, {c.label}", c) for k, c in configs.items() if k != "pg0"]
    rows.append(start_row("0 tasks, PostgreSQL (baseline)", configs["pg0"]))
    rows.append(["python -c pass (baseline)", f"{bare:.3f}"] + [""] * 7)
    headers = ["start-up", "ready s (median)", "range", "CPU s to ready", "cold start s"]
    headers += ["peak RSS MB", "RSS MB", "threads", "stop s"]
    print_table(headers, rows)

    print()
    in_process = in_process_next(next_bodies(), 300)
    samples = dict(measured.next_times)
    samples.update({f"in-process upcoming(), {k}": v for k, v in in_process.items()})
    print_summaries(samples, corner="next?count=100, round trip (ms)")
    print()
    print_table(
        ["server CPU per request (ms)", "n", "CPU"],
        [[label, args.cpu_batch, f"{cpu * 1000:.2f}"] for label, cpu in measured.next_cpu.items()],
    )

    print()
    print_summaries(measured.list_times, corner=f"{tasks} tasks listed (ms)")
    after = measured.stats_after
    print(
        f"GET /tasks: {measured.list_bytes / 1e6:.1f} MB of JSON, "
        f"server CPU {measured.list_cpu['GET /tasks'] * 1000:.0f} ms per request; "
        f"peak RSS after the requests {after['VmHWM'] / 1024:.0f} MB "
        f"(at ready: {measured_start['hwm_mb']:.0f} MB)"
    )

    pg, health = configs["pg"], measured.next_times["GET /health (baseline)"]
    start = statistics.median(s["seconds"] for s in pg.starts)
    rows = []
    for label in NEXT_TASKS:
        stats = summary(measured.next_times[f"next, {label}"])
        extra = "" if label in TARGET_KINDS else " (beyond the target's three)"
        rows.append(
            [
                f"next?count=100 ≤ {TARGET_NEXT_MS:g} ms, {label}{extra}",
                f"p50 {stats['p50'] * 1000:.1f} ms, p95 {stats['p95'] * 1000:.1f} ms",
                f"GET /health p50 {statistics.median(health) * 1000:.1f} ms",
                verdict(stats["p95"] * 1000 <= TARGET_NEXT_MS),
            ]
        )
    base = statistics.median(s["seconds"] for s in configs["pg0"].starts)
    rows.append(
        [
            f"start-up, {tasks} tasks on PostgreSQL ≤ {TARGET_START_S:g} s",
            f"{start:.2f} s (median of {len(pg.starts)})",
            f"0 tasks: {base:.2f} s",
            verdict(start <= TARGET_START_S),
        ]
    )
    if "sqlite" in configs:
        sqlite = statistics.median(s["seconds"] for s in configs["sqlite"].starts)
        rows.append(
            [
                f"start-up, {tasks} tasks on SQLite (comparison)",
                f"{sqlite:.2f} s",
                f"PostgreSQL: {start:.2f} s",
                "reference",
            ]
        )
    listed = summary(measured.list_times["GET /tasks"])
    list_health = statistics.median(measured.list_times["GET /health (baseline)"])
    rows.append(
        [
            f"GET /tasks, {tasks} tasks ≤ {TARGET_LIST_MS:g} ms",
            f"p50 {listed['p50'] * 1000:.0f} ms, p95 {listed['p95'] * 1000:.0f} ms",
            f"GET /health p50 {list_health * 1000:.1f} ms",
            verdict(listed["p95"] * 1000 <= TARGET_LIST_MS)
            if listed["p50"] * 1000 <= TARGET_LIST_MS
            else "MISS",
        ]
    )
    peak = max(after["VmHWM"] / 1024, *(s["hwm_mb"] for s in pg.starts))
    rows.append(
        [
            f"peak RSS, {tasks} tasks on PostgreSQL (no target)",
            f"{peak:.0f} MB",
            f"0 tasks: {max(s['hwm_mb'] for s in configs['pg0'].starts):.0f} MB",
            "reference",
        ]
    )
    print_targets(rows, ["target", "measured", "baseline, same run", "verdict"])


def next_bodies() -> dict[str, dict[str, Any]]:
    """The `next-*` definitions by label."""
    return {
        label: {"name": name, "command": ["true"], **schedule}
        for label, (name, schedule) in NEXT_TASKS.items()
    }


if __name__ == "__main__":
    main()
