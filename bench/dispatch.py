"""Issue 16, workers: from a fire to its task's first output line on a worker, against single mode.

    .venv/bin/python bench/dispatch.py --tasks 10 --duration 20 --rounds 2

Target: the p99 of the cluster's dispatch is at most 50 ms more than single-node mode's,
measured in the same run on the same machine.

`--tasks` tasks fire every second (crontab `* * * * * *`: all at the same instant, not
staggered), a shell script each whose first line is `date +%s.%N` and TASSE_SCHEDULED_AT;
latency = the printed time - the scheduled time, read from each run's log file in the data
folder of the node that ran it. Three set-ups take turns, `--rounds` times, each for
`--duration` seconds after a warm-up of 2 s (so that a burst of load from the machine's
other users lands on all of them):

- single, SQLite: a plain `tasse serve` (the default store);
- single, PostgreSQL: a plain `tasse serve` whose store is a database of its own on the same
  private PostgreSQL as the cluster's (the fair comparison: the same store server);
- cluster: one `tasse serve --cluster --run-on workers` node and two `tasse worker`s
  (`--concurrency`, 10 each by default: so that no fire waits for a free slot however
  procrastinate spreads a second's jobs), the tests' launcher (`tests/cluster/harness.py`).

Each latency is also split at the run's `started_at`: in single mode the server takes it
just before the spawn; on a worker it is the `queued → running` update. The cluster's
`due → started_at` is split further by the times its rows reach the store: the fire
claim's `claimed_at`, then benchmark-only triggers (`STAGE_TRIGGERS`, clock_timestamp()
into a side table) on the insert of the run's row (the scheduler's writer), of its
procrastinate job (the enqueue) and the job's `todo → doing` (procrastinate's fetch).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from harness import (
    cpu_seconds,
    machine_note,
    ms,
    new_parser,
    percentile,
    print_summaries,
    print_targets,
    verdict,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tasse.store.run_jobs import libpq_address
from tests.cluster.harness import Rig
from tests.http.test_api import Server

TARGET = 0.050
WARM_UP = 2.0
SCRIPT = 'echo "$(date +%s.%N) $TASSE_SCHEDULED_AT"\n'
SINGLE_SQLITE, SINGLE_POSTGRES, CLUSTER = "single, SQLite", "single, PostgreSQL", "cluster"

#: a run as this benchmark reads it: scheduled_at, started_at, the log file, and in the
#: cluster the times of its stages (`STAGES`, the last one started_at)
Sample = tuple[float, float, Path, list[float] | None]
#: the parts of the latency, in the order the tables show them
PARTS = ("fire → first line", "due → started_at", "started_at → first line")
#: the cluster's stages, each read from a row's time in the store (`stage_triggers`)
STAGES = ("claimed", "queued row", "job", "job fetched", "started_at")
PARTS += tuple(f"{a} → {b}" for a, b in zip(("due", *STAGES), STAGES, strict=False))
#: benchmark-only triggers that note when each stage's row was written (clock_timestamp)
STAGE_TRIGGERS = """
CREATE TABLE IF NOT EXISTS bench_stages (run_id text, stage text, at timestamptz);
CREATE OR REPLACE FUNCTION bench_run_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO bench_stages VALUES (NEW.id, 'queued row', clock_timestamp()); RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION bench_job_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO bench_stages VALUES (NEW.args ->> 'run_id', TG_ARGV[0], clock_timestamp());
RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER bench_run_row AFTER INSERT ON tasse_runs
    FOR EACH ROW EXECUTE FUNCTION bench_run_row();
CREATE OR REPLACE TRIGGER bench_job_row AFTER INSERT ON procrastinate_jobs
    FOR EACH ROW EXECUTE FUNCTION bench_job_row('job');
CREATE OR REPLACE TRIGGER bench_job_fetched AFTER UPDATE OF status ON procrastinate_jobs
    FOR EACH ROW WHEN (NEW.status = 'doing') EXECUTE FUNCTION bench_job_row('job fetched');
"""


def main() -> int:
    parser = new_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--duration", type=float, default=20, help="seconds per set-up and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10, help="slots of each worker")
    parser.add_argument("--workers", type=int, default=2, help="tasse worker processes")
    args = parser.parse_args()
    print(machine_note())
    names = [f"d{index:02d}" for index in range(args.tasks)]
    lags: dict[str, dict[str, list[float]]] = {}
    with Rig() as rig:
        for name in names:
            rig.task(name, "schedule: '* * * * * *'\n", script=SCRIPT)
        single_database(rig)
        setups = {
            SINGLE_SQLITE: lambda: single(rig, "single-sqlite", ()),
            SINGLE_POSTGRES: lambda: single(
                rig, "single-pg", ("--store-address", database_address(rig, "single"))
            ),
            CLUSTER: lambda: cluster(rig, args.concurrency, args.workers),
        }
        for round_number in range(1, args.rounds + 1):
            for label, setup in setups.items():
                parts, note = measure(setup, names, args.duration)
                mode = lags.setdefault(label, {part: [] for part in PARTS})
                for key, values in parts.items():
                    mode[key].extend(values)
                p99 = percentile(parts[PARTS[0]], 99)
                print(f"  round {round_number}, {label}: p99 {ms(p99)} ms; {note}", flush=True)
    report(lags, args.tasks)
    return 0 if _misses(lags) == 0 else 1


def report(lags: dict[str, dict[str, list[float]]], tasks: int) -> None:
    """The tables: latencies by set-up and part, then the targets."""
    print(f"\nfire → first output line, {tasks} tasks every second (ms)")
    samples = {}
    for label, parts in lags.items():
        samples.update({f"{label}: {part}": parts[part] for part in PARTS if parts[part]})
    print_summaries(samples)
    rows = []
    cluster_p99 = percentile(lags[CLUSTER][PARTS[0]], 99)
    for baseline in (SINGLE_SQLITE, SINGLE_POSTGRES):
        base = percentile(lags[baseline][PARTS[0]], 99)
        rows.append(
            [
                f"cluster p99 ≤ {baseline} p99 + 50 ms",
                f"{ms(cluster_p99)} - {ms(base)} = {ms(cluster_p99 - base)} ms",
                verdict(cluster_p99 - base <= TARGET),
            ]
        )
    print_targets(rows)


def _misses(lags: dict[str, dict[str, list[float]]]) -> int:
    cluster_p99 = percentile(lags[CLUSTER][PARTS[0]], 99)
    bases = (percentile(lags[b][PARTS[0]], 99) for b in (SINGLE_SQLITE, SINGLE_POSTGRES))
    return sum(cluster_p99 - base > TARGET for base in bases)


def measure(
    setup: Callable[[], Any], names: list[str], duration: float
) -> tuple[dict[str, list[float]], str]:
    """Start a set-up, let its tasks fire for `duration` s, stop it; its latencies."""
    with setup() as (listing, pids):
        since = time.time() + WARM_UP
        time.sleep(WARM_UP)
        cpu = {role: cpu_seconds(pid) for role, pid in pids.items()}
        time.sleep(duration)
        cpu = {role: cpu_seconds(pid) - cpu[role] for role, pid in pids.items()}
        until = time.time() - 1  # fires of the last second may still be running
        time.sleep(1)
        samples = [s for s in listing(names) if since <= s[0] < until]
    parts: dict[str, list[float]] = {part: [] for part in PARTS}
    unread = 0
    for scheduled, started, log, stages in samples:
        printed = first_time(log)
        if printed is None:
            unread += 1
            continue
        parts["fire → first line"].append(printed - scheduled)
        parts["due → started_at"].append(started - scheduled)
        parts["started_at → first line"].append(printed - started)
        if stages is not None:
            starts = [scheduled, *stages[:-1]]
            for before, after, name in zip(starts, stages, PARTS[3:], strict=True):
                parts[name].append(after - before)
    expected = len(names) * int(until - since)
    note = f"{len(parts[PARTS[0]])} runs of ~{expected} fires read ({unread} without a line)"
    runs = max(1, len(samples))
    note += "; CPU ms per run: " + ", ".join(
        f"{role} {seconds / runs * 1000:.1f}" for role, seconds in cpu.items()
    )
    return parts, note


def first_time(log: Path) -> float | None:
    """The time a run's log starts with (`date +%s.%N`), or None if it has no line yet."""
    try:
        return float(log.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _times(*times: Any) -> list[float] | None:
    """The stages' times; None for a run that has not all of them (before the triggers)."""
    return None if None in times else [float(t) for t in times]


def _epoch(column: str) -> str:
    return f"EXTRACT(EPOCH FROM {column} AT TIME ZONE 'UTC')"


def _stage(name: str) -> str:
    where = f"run_id = r.id AND stage = '{name}'"
    return f"(SELECT EXTRACT(EPOCH FROM min(at)) FROM bench_stages WHERE {where})"


STAGES_QUERY = f"""
SELECT r.id, r.task, r.node, {_epoch("r.scheduled_at")}, {_epoch("r.started_at")},
    {_epoch("c.claimed_at")}, {_stage("queued row")}, {_stage("job")}, {_stage("job fetched")}
FROM tasse_runs r JOIN tasse_fire_claims c ON c.task = r.task AND c.scheduled_at = r.scheduled_at
WHERE r.task = ANY(:names) AND r.started_at IS NOT NULL AND r.node IS NOT NULL
"""


# -- the set-ups ----------------------------------------------------------------------------


def single_database(rig: Rig) -> None:
    """A database of its own for the single node with a PostgreSQL store."""
    with psycopg.connect(libpq_address(rig.postgres.address), autocommit=True) as connection:
        connection.execute("CREATE DATABASE single")


def database_address(rig: Rig, database: str) -> str:
    return rig.postgres.address.rpartition("/")[0] + f"/{database}"


def folder(rig: Rig, name: str) -> Path:
    """A node's data folder, its tasks folder the shared one."""
    data = rig.root / name / "data"
    if not data.exists():
        data.mkdir(parents=True)
        (data / "tasks").symlink_to(rig.tasks)
    return data


@contextmanager
def single(rig: Rig, name: str, flags: tuple[str, ...]) -> Iterator[tuple[Any, dict[str, int]]]:
    """A plain `tasse serve` on the shared tasks folder (no --cluster)."""
    data = folder(rig, name)
    node = Server(data, env={"TASSE_LOG_LEVEL": "INFO"}, flags=list(flags))
    node.start(timeout=30)

    def listing(names: list[str]) -> list[Sample]:
        samples = []
        for task in names:
            runs = node.http.get(f"/tasks/{task}/runs", params={"limit": 1000}).json()
            for run in runs:
                if run["scheduled_at"] and run["started_at"]:
                    log = data / "logs" / task / "runs" / f"{run['id']}.log"
                    scheduled = _seconds(run["scheduled_at"])
                    samples.append((scheduled, _seconds(run["started_at"]), log, None))
        return samples

    try:
        assert node.process is not None
        yield listing, {"server": node.process.pid}
    finally:
        node.stop()


@contextmanager
def cluster(rig: Rig, concurrency: int, count: int) -> Iterator[tuple[Any, dict[str, int]]]:
    """One scheduler node that runs nothing itself, and `count` workers."""
    names = [f"w{index + 1}" for index in range(count)]
    node = rig.start("s", flags=("--run-on", "workers"))
    rig.wait_for_scheduler()
    workers = [rig.start_worker(w, flags=("--concurrency", str(concurrency))) for w in names]
    rig.execute(STAGE_TRIGGERS)  # the tables are there now: the scheduler's and a worker's

    def listing(names: list[str]) -> list[Sample]:
        rows = rig.query(STAGES_QUERY, names=names)
        return [
            (
                float(scheduled),
                float(started),
                rig.root / worker / "data" / "logs" / task / "runs" / f"{run_id}.log",
                _times(claimed, row, job, fetched, started),
            )
            for run_id, task, worker, scheduled, started, claimed, row, job, fetched in rows
        ]

    try:
        assert node.process is not None
        pids = {"scheduler": node.process.pid}
        yield listing, {**pids, **{name: w.pid for name, w in zip(names, workers, strict=True)}}
    finally:
        node.stop()
        for worker in workers:
            worker.terminate()
            worker.wait(30)


if __name__ == "__main__":
    sys.exit(main())
