"""The overview's reads: GET /tasks pages and filters, /counts, /runs, recent outcomes.

    .venv/bin/python bench/listing.py --tasks 10000 --runs 100000 --rounds 50

Target: the overview's first page in ≤ 50 ms of server time with 10,000 tasks and 100,000
runs in history: `GET /tasks?limit=50` and the 50 rows' strips of their last 20 outcomes
(`recent_outcomes`), medians added up. `GET /counts` (the numbers above the list) is
reported beside it; with `--index`, after adding the index on the runs' (finished_at,
status) it was measured with (not in the migrations yet).

The tasks are folders (`harness.write_task`, the start-up benchmark's schedules, none due
during the run) with a description each ("nightly job <n>"). The runs are written straight
into the job store before the server starts: the first page's 50 tasks have 1,000 each (as
many as a task keeps), the others share the rest, over the past days. The newest run of
every tenth task failed, of every 25th timed out; older ones failed, were missed or
succeeded. Each HTTP figure is the round trip of one request on a kept-alive
loopback connection, body read: an upper bound of the server's time (`GET /health`, which
computes nothing, is the floor). `recent_outcomes` is the store's query timed in this
process on the same database, as `Tasse.recent_outcomes` runs it on a thread.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import (
    cpu_seconds,
    discard,
    fixture_yaml,
    machine_note,
    new_parser,
    print_summaries,
    print_targets,
    serve,
    temp_data_dir,
    timed_get,
    verdict,
    where,
    write_task,
)

import tasse
from tasse.models import Run, RunStatus, RunTrigger
from tasse.store.runs import RunStore

TARGET_PAGE_MS = 50.0
PAGE = 50
#: runs of each of the first page's tasks: as many as a task keeps (`keep_runs`)
DEEP = 1000


def make_folders(tasks_dir: Path, count: int) -> None:
    """`count` task folders t00000…, each with a description."""
    for index in range(count):
        yaml = fixture_yaml(index) + f"description: nightly job {index}\n"
        write_task(tasks_dir, f"t{index:05d}", yaml, f"print({index})\n")


def outcome(index: int, age: int) -> RunStatus:
    """Run `age` (0: the newest) of task `index`."""
    if age == 0:
        if index % 25 == 0:
            return RunStatus.timed_out
        return RunStatus.failed if index % 10 == 0 else RunStatus.succeeded
    if (index + age) % 11 == 0:
        return RunStatus.missed
    return RunStatus.failed if (index + age) % 7 == 0 else RunStatus.succeeded


def history(tasks: int, total: int, now: datetime) -> list[Run]:
    """About `total` runs: DEEP of each first page's task, half-hourly; the rest 12-hourly."""
    runs = []
    rest = max(1, (total - PAGE * DEEP) // max(1, tasks - PAGE))
    for index in range(tasks):
        deep = index < PAGE
        for age in range(DEEP if deep else rest):
            ago = timedelta(hours=age / 2 if deep else 12 * age, seconds=1 + index * 4.3)
            runs.append(past_run(index, age, now - ago))
    return runs


def past_run(index: int, age: int, start: datetime) -> Run:
    """Run `age` (0: the newest) of task `index`, two seconds long unless it was missed."""
    status = outcome(index, age)
    ran = status is not RunStatus.missed
    return Run(
        id=f"{start:%Y%m%d-%H%M%S-%f}-{index:06x}",
        task=f"t{index:05d}",
        trigger=RunTrigger.schedule,
        status=status,
        exit_code=(0 if status is RunStatus.succeeded else 1) if ran else None,
        scheduled_at=start,
        started_at=start if ran else None,
        finished_at=start + timedelta(seconds=2),
    )


def fill_store(address: str, runs: list[Run]) -> float:
    """Write the runs into the store (10,000 a transaction); the seconds it took."""
    started = time.perf_counter()
    store = RunStore(address)
    try:
        for first in range(0, len(runs), 10_000):
            store.add(*runs[first : first + 10_000])
    finally:
        store.close()
    return time.perf_counter() - started


def add_index(address: str) -> None:
    """The index on (finished_at, status) this benchmark proposes, not in the migrations yet."""
    store = RunStore(address)
    try:
        with store.engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE INDEX ix_tasse_runs_finished_at ON tasse_runs (finished_at, status)"
            )
    finally:
        store.close()
    print("with the proposed index on runs (finished_at, status)")


def wait_idle(pid: int, timeout: float = 120.0) -> float:
    """Wait until the server uses under 5 % of a CPU (its first retention pass is over)."""
    started = time.perf_counter()
    before = cpu_seconds(pid)
    while time.perf_counter() - started < timeout:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < 0.05:
            break
        before = now
    return time.perf_counter() - started


def time_outcomes(address: str, names: list[str], rounds: int) -> list[float]:
    """Seconds of each `recent_outcomes(names, 20)`, the store opened once."""
    store = RunStore(address)
    try:
        store.recent_outcomes(names, 20)  # warm: connection, statement cache
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            found = store.recent_outcomes(names, 20)
            samples.append(time.perf_counter() - started)
        assert all(len(strip) == 20 for strip in found.values()), "fewer than 20 runs"
        return samples
    finally:
        store.close()


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50, help="requests per path")
    parser.add_argument(
        "--index", action="store_true", help="add the proposed index on (finished_at, status)"
    )
    args = parser.parse_args()
    print(machine_note())
    print(where(Path(tasse.__file__).parent))
    data_dir = temp_data_dir("listing")
    address = f"sqlite:///{data_dir / 'tasse.db'}"
    try:
        started = time.perf_counter()
        make_folders(data_dir / "tasks", args.tasks)
        print(f"{args.tasks} folders written in {time.perf_counter() - started:.1f} s")
        now = datetime.now(UTC)
        runs = history(args.tasks, args.runs, now)
        print(f"{args.tasks} tasks, {len(runs)} runs written in {fill_store(address, runs):.1f} s")
        if args.index:
            add_index(address)
        names = [f"t{index:05d}" for index in range(PAGE)]  # the first page, by name
        day_ago = f"{now - timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
        paths = {
            "GET /health (floor)": "/health",
            f"GET /tasks?limit={PAGE}": f"/tasks?limit={PAGE}",
            f"GET /tasks?limit={PAGE}&q=t012 (100 match)": f"/tasks?limit={PAGE}&q=t012",
            f"GET /tasks?limit={PAGE}&q=NIGHTLY (all match)": f"/tasks?limit={PAGE}&q=NIGHTLY",
            f"GET /tasks?status=failed&sort=last&limit={PAGE}": (
                f"/tasks?status=failed&sort=last&limit={PAGE}"
            ),
            f"GET /tasks?sort=next&limit={PAGE}": f"/tasks?sort=next&limit={PAGE}",
            f"GET /tasks?sort=state&limit={PAGE}": f"/tasks?sort=state&limit={PAGE}",
            "GET /counts": "/counts",
            "GET /runs?since=<24 h ago> (1,000 newest)": f"/runs?since={day_ago}",
            "GET /runs?since=<24 h ago>&limit=100": f"/runs?since={day_ago}&limit=100",
        }
        samples: dict[str, list[float]] = {}
        started = time.perf_counter()
        with serve(data_dir, args.tasks, timeout=120) as server, server.client() as client:
            print(f"server ready in {time.perf_counter() - started:.1f} s")
            print(f"idle after {wait_idle(server.pid):.1f} s more")
            for label, path in paths.items():
                for _ in range(3):  # warm-up
                    timed_get(client, path)
                samples[label] = [timed_get(client, path)[0] for _ in range(args.rounds)]
            total = timed_get(client, "/tasks?limit=1")[1].headers["X-Total-Count"]
            failed = timed_get(client, "/tasks?status=failed&limit=1")[1].headers["X-Total-Count"]
            counted = timed_get(client, "/counts")[1].json()
            samples["GET /tasks (all, as before)"] = [
                timed_get(client, "/tasks")[0] for _ in range(5)
            ]
        samples[f"recent_outcomes({PAGE} names, 20)"] = time_outcomes(address, names, args.rounds)
        print(f"X-Total-Count {total}; failed {failed}; counts {counted}")
        print()
        print_summaries(samples, corner="ms")
        parts = (f"GET /tasks?limit={PAGE}", f"recent_outcomes({PAGE} names, 20)")
        page = sum(statistics.median(samples[label]) for label in parts) * 1000
        counts = statistics.median(samples["GET /counts"]) * 1000
        print_targets(
            [
                [
                    f"overview's first page ≤ {TARGET_PAGE_MS:g} ms",
                    f"{page:.1f} ms (medians: " + " + ".join(parts) + ")",
                    verdict(page <= TARGET_PAGE_MS),
                ],
                ["(beside it) GET /counts", f"{counts:.1f} ms (median)", ""],
            ]
        )
    finally:
        discard(data_dir)


if __name__ == "__main__":
    main()
