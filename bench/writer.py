"""Issue 12, the writer: schedule lag on PostgreSQL against SQLite, and RecordWriter's throughput.

    .venv/bin/python bench/writer.py
    .venv/bin/python bench/writer.py --quick

Targets:
- store up, PostgreSQL on loopback: schedule lag p99 of 40 tasks staggered over each
  second within 5 ms of the same on SQLite (the loop no longer pays the store's latency);
- the writer's throughput: ≥ 2,000 run records/s sustained on PostgreSQL.

PostgreSQL is the machine's shared cluster (`--postgres`, default
postgresql://postgres@127.0.0.1:5432/test; fsync and synchronous_commit on, as
installed) under table names of this run's own (`--store-table-name bench12_<hex>_…`),
dropped at the end: only tables whose names start with that prefix are ever dropped.

*Lag* (`--lag-rounds` rounds, each a fresh `tasse serve` on SQLite and one on
PostgreSQL, the order swapped every round, `--lag-duration` s each; 2 s of warm-up left
out): the 40 tasks and the measure of bench/lag.py, its script and parsing imported from
it — lag = the task's `time.time()` as its first statement - `TASSE_SCHEDULED_AT`; also
the run's recorded `started_at` - `scheduled_at` (the scheduler's share).

*Throughput*, in this process: `RecordWriter(RunStore(address), Journal(path))` started,
and `put_runs([run])` once per record (one run per call, as Tasse hands them over), the
clock from the first call until `wait_written` returns:
- insert: N new runs (status running);
- update: the same N runs again, finished (each an upsert of an existing row);
- start + end: N new runs, each handed over at its start and again, finished, 2,000
  records later (so that no batch of 1,000 holds both states of a run and coalesces them):
  2N records;
- paced: start + end records offered at `--rate` records/s for `--paced` s (a producer
  thread, 100 hand-overs a second): how far behind the writer falls, how long it takes
  to catch up after the last one;
- floor: `RunStore.put` of N new runs in batches of 1,000 on this thread (no writer).
The same on SQLite (a file in /tmp) as a reference.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    SUMMARY_HEADERS,
    discard,
    machine_note,
    ms,
    new_parser,
    percentile,
    print_table,
    print_targets,
    serve,
    summary_row,
    temp_data_dir,
    verdict,
    where,
    write_task,
)
from lag import SCRIPT, WARM_UP, parse_lags
from sqlalchemy import text

import tasse
from tasse.models import Run, RunStatus, RunTrigger
from tasse.store.database import make_engine
from tasse.store.journal import Journal
from tasse.store.runs import RunStore
from tasse.store.writer import BATCH, RecordWriter

SHARED_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_LAG_DIFFERENCE = 0.005
TARGET_RECORDS_PER_S = 2000
#: a run's end is handed over this many records after its start
END_AFTER = 2 * BATCH


# -- lag: the same 40 tasks on SQLite and on PostgreSQL --------------------------------------


def store_lags(flags: tuple[str, ...], offsets: list[float], duration: float) -> dict[str, Any]:
    """bench/lag.py's staggered run on a server with these store flags."""
    data_dir = temp_data_dir("writer-lag")
    start = int(time.time()) - 60
    names = [f"lag-{index:02d}" for index in range(len(offsets))]
    for name, offset in zip(names, offsets, strict=True):
        start_date = datetime.fromtimestamp(start + offset, UTC).isoformat()
        schedule = f"scheduler:\n  trigger: interval\n  seconds: 1\n  start_date: '{start_date}'\n"
        write_task(data_dir / "tasks", name, schedule, SCRIPT)
    runs: dict[str, dict[str, Any]] = {}
    with serve(data_dir, len(names), *flags) as server, server.client() as client:
        since = time.time() + WARM_UP
        time.sleep(duration)
        for name in names:
            answer = client.get(f"/tasks/{name}/runs", params={"limit": 1000})
            runs.update({run["id"]: run for run in answer.json()})
    result: dict[str, Any] = {"lag": [], "due → started_at": []}
    for log in (data_dir / "logs").glob("*/runs/*.log"):
        run = runs.get(log.stem)
        for lag in parse_lags(log.read_text(), since) if run else []:
            result["lag"].append(lag)
            result["due → started_at"].append(_at(run["started_at"]) - _at(run["scheduled_at"]))
    result["statuses"] = Counter(run["status"] for run in runs.values())
    discard(data_dir)
    return result


def round_note(result: dict[str, Any]) -> str:
    """One server's lag p50/p99, its scheduler's share, its runs, the load."""
    lag, due = result["lag"], result["due → started_at"]
    return (
        f"lag p50 {ms(percentile(lag, 50))} p99 {ms(percentile(lag, 99))},"
        f" due → started_at p50 {ms(percentile(due, 50))} p99 {ms(percentile(due, 99))} ms;"
        f" runs {dict(result['statuses'])}; {machine_note().split(', ', 2)[2]}"
    )


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def measure_lag(postgres: str, prefix: str, args: Any) -> list[list[str]]:
    """Alternate SQLite and PostgreSQL servers; print the lags; the target's row."""
    offsets = [index * args.stagger / 1000 for index in range(args.tasks)]
    stores = {
        "SQLite": lambda r: (),
        "PostgreSQL": lambda r: (
            "--store-address",
            postgres,
            "--store-table-name",
            f"{prefix}_lag{r}",
        ),
    }
    pooled: dict[str, dict[str, list[float]]] = {
        s: {"lag": [], "due → started_at": []} for s in stores
    }
    per_round: dict[str, list[float]] = {store: [] for store in stores}
    for round_ in range(args.lag_rounds):
        # Each round in the other order, so that a rising or falling load from the machine's
        # other users does not land on one store only.
        order = list(stores.items()) if round_ % 2 == 0 else list(stores.items())[::-1]
        for store, flags in order:
            result = store_lags(flags(round_), offsets, args.lag_duration)
            for key in ("lag", "due → started_at"):
                pooled[store][key] += result[key]
            per_round[store].append(percentile(result["lag"], 99))
            print(f"  lag round {round_ + 1}, {store}: {round_note(result)}", flush=True)
    rows = [
        summary_row(f"{store}: {key}", values)
        for key in ("lag", "due → started_at")
        for store, parts in pooled.items()
        for values in [parts[key]]
    ]
    print(f"\nlag of {args.tasks} tasks staggered {args.stagger:g} ms over each second (ms)")
    print_table(["", *SUMMARY_HEADERS[1:]], rows)
    p99 = {store: percentile(parts["lag"], 99) for store, parts in pooled.items()}
    due = {store: percentile(parts["due → started_at"], 99) for store, parts in pooled.items()}
    difference = p99["PostgreSQL"] - p99["SQLite"]
    paired = statistics.median(
        pg - lite for pg, lite in zip(per_round["PostgreSQL"], per_round["SQLite"], strict=True)
    )
    measured = (
        f"pooled p99 {ms(p99['PostgreSQL'])} vs {ms(p99['SQLite'])} ms ({difference * 1000:+.1f});"
        f" median of the rounds' differences {paired * 1000:+.1f};"
        f" due → started_at p99 {ms(due['PostgreSQL'])} vs {ms(due['SQLite'])}"
    )
    return [
        [
            "lag p99, PostgreSQL - SQLite ≤ 5 ms",
            measured,
            verdict(difference <= TARGET_LAG_DIFFERENCE),
        ]
    ]


# -- throughput: RecordWriter in this process ------------------------------------------------


def new_runs(count: int) -> list[Run]:
    """`count` distinct runs, just started."""
    now = datetime.now(UTC)
    tag = secrets.token_hex(3)
    return [
        Run(
            id=f"{now + timedelta(microseconds=i):%Y%m%d-%H%M%S-%f}-{tag}",
            task=f"w{i % 40:02d}",
            trigger=RunTrigger.schedule,
            status=RunStatus.running,
            scheduled_at=now,
            started_at=now,
        )
        for i in range(count)
    ]


def ended(run: Run) -> Run:
    """The run, finished."""
    done = datetime.now(UTC)
    return run.model_copy(
        update={"status": RunStatus.succeeded, "exit_code": 0, "finished_at": done}
    )


@contextlib.contextmanager
def started_writer(store: RunStore) -> Iterator[RecordWriter]:
    """A RecordWriter of its own journal, started; stopped at the end."""
    folder = Path(tempfile.mkdtemp(prefix="tasse-bench-writer-"))
    writer = RecordWriter(store, Journal(folder / "records.jsonl"))
    writer.start()
    try:
        yield writer
    finally:
        writer.stop(30)
        shutil.rmtree(folder, ignore_errors=True)


def drain(writer: RecordWriter, store: RunStore, records: list[Run]) -> dict[str, float]:
    """Hand `records` over one at a time; seconds to hand them over and until written."""
    started = time.perf_counter()
    for run in records:
        writer.put_runs([run])
    handed = time.perf_counter()
    done = until_taken_and_written(writer)
    return {
        "records": len(records),
        "seconds": done - started,
        "handover": handed - started,
        **check_stored(writer, store, records),
    }


def until_taken_and_written(writer: RecordWriter, timeout: float = 600) -> float:
    """Wait until the writer holds nothing (its inbox and backlog empty); perf_counter then.

    Not `wait_written`: that also waits for every run to leave `pending_run`, which a run
    the writer dropped never does (see check_stored). A backlog is emptied only after
    its batch is in the store, so empty means written, or dropped.
    """
    deadline = time.perf_counter() + timeout
    while writer.pending_count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the writer still holds {writer.pending_count} after {timeout} s")
        time.sleep(0.002)
    return time.perf_counter()


def check_stored(writer: RecordWriter, store: RunStore, records: list[Run]) -> dict[str, float]:
    """Records whose newest state the store lacks, and runs the writer still shows pending."""
    newest = {run.id: run.status.value for run in records}
    suffixes = {run_id.rpartition("-")[2] for run_id in newest}
    query = text(f"SELECT id, status FROM {store.names.runs} WHERE id LIKE :suffix")
    stored: dict[str, str] = {}
    with store.engine.connect() as connection:
        for suffix in suffixes:
            rows = connection.execute(query, {"suffix": f"%-{suffix}"})
            stored.update((row.id, row.status) for row in rows)
    missing = sum(stored.get(run_id) != status for run_id, status in newest.items())
    stuck = sum(writer.pending_run(run_id) is not None for run_id in newest)
    return {"not in the store": missing, "left pending": stuck}


def start_and_end(runs: list[Run]) -> list[Run]:
    """Each run's start, and its end END_AFTER records later."""
    order: list[Run] = []
    for index, run in enumerate(runs):
        order.append(run)
        if index >= END_AFTER // 2:
            order.append(ended(runs[index - END_AFTER // 2]))
    order += [ended(run) for run in runs[len(runs) - END_AFTER // 2 :]]
    return order


def floor(store: RunStore, count: int) -> dict[str, float]:
    """RunStore.put of `count` new runs in batches, on this thread."""
    runs = new_runs(count)
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        store.put(runs[first : first + BATCH])
    return {"records": count, "seconds": time.perf_counter() - started, "handover": 0.0}


def paced(writer: RecordWriter, store: RunStore, rate: float, seconds: float) -> dict[str, float]:
    """Offer start + end records at `rate`/s for `seconds`; the worst backlog, the catch-up."""
    count = int(rate * seconds / 2)
    order = start_and_end(new_runs(count))
    per_tick = max(1, int(rate / 100))
    backlog: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            backlog.append(writer.pending_count)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    for tick, first in enumerate(range(0, len(order), per_tick)):
        time.sleep(max(0.0, started + tick / 100 - time.perf_counter()))
        for run in order[first : first + per_tick]:
            writer.put_runs([run])
    offered = time.perf_counter()
    caught_up = until_taken_and_written(writer)
    done.set()
    sampler.join()
    return {
        "records": len(order),
        "offered for": offered - started,
        "caught up after": caught_up - offered,
        "max backlog": max(backlog, default=0),
        **check_stored(writer, store, order),
    }


def measure_writer(store: RunStore, count: int, repeat: int) -> dict[str, list[dict[str, float]]]:
    """Each throughput scenario `repeat` times on one store."""
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(repeat):
        runs = new_runs(count)
        with started_writer(store) as writer:
            results.setdefault("insert", []).append(drain(writer, store, runs))
            finished = [ended(run) for run in runs]
            results.setdefault("update", []).append(drain(writer, store, finished))
        with started_writer(store) as writer:
            order = start_and_end(new_runs(count))
            results.setdefault("start + end", []).append(drain(writer, store, order))
        results.setdefault("floor: RunStore.put, 1,000 a call", []).append(floor(store, count))
    return results


def throughput_rows(store: str, results: dict[str, list[dict[str, float]]]) -> list[list[str]]:
    """Table rows: records/s median (range), seconds, hand-over µs per record."""
    rows = []
    for scenario, outcomes in results.items():
        rates = [o["records"] / o["seconds"] for o in outcomes]
        handover = statistics.median(o["handover"] / o["records"] for o in outcomes) * 1e6
        rows.append(
            [
                f"{store}: {scenario}",
                f"{int(outcomes[0]['records']):,}",
                f"{statistics.median(rates):,.0f} ({min(rates):,.0f} to {max(rates):,.0f})",
                f"{statistics.median(o['seconds'] for o in outcomes):.2f}",
                f"{handover:.1f}" if handover else "-",
                str(sum(int(o.get("not in the store", 0)) for o in outcomes)),
                str(sum(int(o.get("left pending", 0)) for o in outcomes)),
            ]
        )
    return rows


# -- the shared cluster: our tables only ----------------------------------------------------


@contextlib.contextmanager
def own_tables(postgres: str) -> Iterator[str]:
    """A table-name prefix of this run's own; its tables are dropped at the end."""
    prefix = f"bench12_{secrets.token_hex(3)}"
    try:
        yield prefix
    finally:
        drop_tables(postgres, prefix)


def drop_tables(postgres: str, prefix: str) -> None:
    """Drop the tables whose names start with `<prefix>_` (nothing else)."""
    engine = make_engine(postgres)
    query = text("SELECT schemaname, tablename FROM pg_tables WHERE left(tablename, :n) = :p")
    try:
        with engine.begin() as connection:
            found = connection.execute(query, {"n": len(prefix) + 1, "p": f"{prefix}_"}).all()
            for schema, table in found:
                connection.execute(text(f'DROP TABLE IF EXISTS "{schema}"."{table}" CASCADE'))
    finally:
        engine.dispose()
    print(f"dropped {len(found)} table(s) named {prefix}_*")


# -- the benchmark ---------------------------------------------------------------------------


def parse_args() -> Any:
    parser = new_parser(__doc__)
    parser.add_argument("--postgres", default=SHARED_POSTGRES, help="a PostgreSQL on loopback")
    parser.add_argument("--records", type=int, default=20_000, help="N, records per scenario")
    parser.add_argument("--repeat", type=int, default=3, help="throughput repetitions")
    parser.add_argument("--rate", type=float, default=2_500, help="paced: records/s offered")
    parser.add_argument("--paced", type=float, default=20, help="paced: seconds")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--stagger", type=float, default=25, help="ms between the tasks")
    parser.add_argument("--lag-rounds", type=int, default=4, help="even: balanced order")
    parser.add_argument("--lag-duration", type=float, default=12, help="s per server")
    parser.add_argument("--skip-lag", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--quick", action="store_true", help="5,000 records, 1 repeat, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.records, args.repeat, args.paced, args.lag_rounds = 5_000, 1, 5, 1
    return args


def run_throughput(postgres: str, prefix: str, args: Any) -> list[list[str]]:
    """Every scenario on SQLite and on PostgreSQL; print the table; the targets' rows."""
    folder = temp_data_dir("writer")
    stores = {
        "SQLite": RunStore(f"sqlite:///{folder / 'tasse.db'}"),
        "PostgreSQL": RunStore(postgres, table_name=f"{prefix}_w"),
    }
    rows, paced_results = [], {}
    try:
        for name, store in stores.items():
            rows += throughput_rows(name, measure_writer(store, args.records, args.repeat))
            with started_writer(store) as writer:
                paced_results[name] = paced(writer, store, args.rate, args.paced)
            print(f"  throughput on {name} done; {machine_note()}", flush=True)
    finally:
        for store in stores.values():
            store.close()
        discard(folder)
    print("\nRecordWriter throughput, records handed over one per put_runs call")
    headers = ["store: scenario", "records", "records/s median (range)", "s", "µs/put"]
    print_table([*headers, "not in the store", "left pending"], rows)
    print("\npaced, start + end records offered at a steady rate")
    for name, outcome in paced_results.items():
        print(f"  {name}: {outcome}")
    lost = sum(int(row[5]) for row in rows) + sum(
        int(outcome["not in the store"]) for outcome in paced_results.values()
    )
    handed = sum(
        int(row[1].replace(",", "")) * args.repeat for row in rows if "floor" not in row[0]
    )
    handed += sum(int(outcome["records"]) for outcome in paced_results.values())
    every = [
        "every record handed to the writer is in the store (both stores, all scenarios)",
        f"{lost} of {handed:,} not in the store",
        verdict(lost == 0),
    ]
    return [*throughput_targets(rows, paced_results["PostgreSQL"], args.rate), every]


def throughput_targets(
    rows: list[list[str]], paced_pg: dict[str, float], rate: float
) -> list[list[str]]:
    """The throughput target's rows: the bursts and the paced run on PostgreSQL."""
    targets = []
    for row in rows:
        if row[0].startswith("PostgreSQL") and "floor" not in row[0]:
            median = float(row[2].split()[0].replace(",", ""))
            targets.append(
                [
                    f"{row[0]} ≥ 2,000 records/s",
                    f"{row[2]} records/s",
                    verdict(median >= TARGET_RECORDS_PER_S),
                ]
            )
    kept_up = paced_pg["caught up after"] <= 1.0
    measured = (
        f"{paced_pg['records']:,} records in {paced_pg['offered for']:.1f} s; max backlog"
        f" {paced_pg['max backlog']:,}, caught up {paced_pg['caught up after']:.2f} s after"
    )
    targets.append(
        [
            f"PostgreSQL: paced {rate:,.0f} records/s, kept up (≤ 1 s behind)",
            measured,
            verdict(kept_up),
        ]
    )
    return targets


def main() -> None:
    args = parse_args()
    print(f"{machine_note()}; {where(Path(tasse.__file__).parent)}")
    targets: list[list[str]] = []
    with own_tables(args.postgres) as prefix:
        if not args.skip_throughput:
            targets += run_throughput(args.postgres, prefix, args)
        if not args.skip_lag:
            targets += measure_lag(args.postgres, prefix, args)
    print_targets(targets)
    print(machine_note())


if __name__ == "__main__":
    main()
