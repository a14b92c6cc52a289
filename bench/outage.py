"""Issue 12, store outages: the API, the schedule and the records while PostgreSQL is down.

    .venv/bin/python bench/outage.py --outage 20 --baseline 20
    .venv/bin/python bench/outage.py --quick

Targets, for each of three faults of the store — PostgreSQL stopped (`pg_ctl -m fast
stop`), killed (kill -9 of the postmaster and every backend), paused (SIGSTOP to all its
processes, as a hung network leaves them) — lasting `--outage` seconds:
- API p99 ≤ 100 ms for `GET /health`, `GET /tasks`, `POST /tasks/manual/run`;
- schedule lag p99 of 1 s tasks within 10 ms of their lag with the store up;
- 0 records lost: every run a task counted in a file outside Tasse is in the store after.

A private PostgreSQL cluster (tests/store/private_postgres.py: initdb as `postgres` into
a temporary folder, its own port; the machine's shared cluster is never touched) holds
the store; each fault gets a fresh server, data folder and `--store-table-name`.
The server has `--ticks` tasks firing every second (interval 1 s, start dates spread
evenly over the second, so there are enough samples for a p99) and a task `manual`
(`overlap: parallel`). Every run's first statement takes `time.time()`; the run then
appends `<TASSE_RUN_ID> <TASSE_SCHEDULED_AT> <time>` to a counter file outside the data
folder (one `O_APPEND` write).

Each fault, one server:
1. warm-up (`--warm-up` s), then the baseline window, the store up (`--baseline` s);
2. the fault, then the outage window (`--outage` s), then the store back (start or SIGCONT);
3. wait until `/health` is 200 with no pending records; stop the server (SIGTERM);
4. read the store's table, compare with the counter file.
In both windows one client (one persistent connection) sends `GET /health`, `GET /tasks`,
`POST /tasks/manual/run` in turn with `--pause` s between requests, at most
`--max-requests` per window; each request may take 10 s (a timeout counts as 10 s).

Lag, two ways: *task clock* = the run's `time.time()` - `TASSE_SCHEDULED_AT` (what
bench/lag.py measures: it includes starting the interpreter); *history* = the run's
recorded `started_at` - `scheduled_at` (the scheduler's share). The verdict uses the task
clock; a run belongs to the window its scheduled time falls in.

The server runs with its default store timeouts (connect 5 s, statement 10 s) unless
`--connect-timeout` / `--statement-timeout` are given (then written to a `.env` file in
the server's working folder, the only way past the harness, which clears `TASSE_*`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from harness import (
    ROOT,
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
    wait_env,
    where,
    write_task,
)

# after the other entries: `tasse` stays the one PYTHONPATH or the venv gives (see where())
sys.path.append(str(ROOT))
import tasse
from tasse.models import Run
from tasse.store.runs import RunStore
from tests.store.private_postgres import PrivateCluster

TARGET_API_P99 = 0.100
TARGET_LAG_OVER = 0.010
REQUEST_TIMEOUT = 10.0
FAULTS = ("stopped", "killed", "paused")
ENDPOINTS = (
    ("GET /health", "GET", "/health"),
    ("GET /tasks", "GET", "/tasks"),
    ("POST /tasks/manual/run", "POST", "/tasks/manual/run"),
)
WINDOWS = ("store up", "outage")
SCRIPT = """import time
now = time.time()
import os

scheduled = os.environ.get("TASSE_SCHEDULED_AT") or "-"
line = "%s %s %r\\n" % (os.environ["TASSE_RUN_ID"], scheduled, now)
fd = os.open(COUNTER, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, line.encode())
os.close(fd)
"""


@dataclass(frozen=True)
class Probe:
    """One request: which, sent when (time.time()), its latency, its HTTP status (0: none)."""

    label: str
    at: float
    seconds: float
    status: int
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Counted:
    """One line of the counter file: a run that really executed."""

    run_id: str
    scheduled: float | None
    now: float


@dataclass
class Outcome:
    """What one fault's server gave."""

    fault: str
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    probes: dict[str, list[Probe]] = field(default_factory=dict)
    #: seconds the fault and the recovery commands took
    fault_took: float = 0.0
    recover_took: float = 0.0
    #: seconds from the end of the outage until /health said 200 with nothing pending
    healthy_after: float = float("nan")
    counted: list[Counted] = field(default_factory=list)
    history: dict[str, Run] = field(default_factory=dict)
    log: dict[str, int] = field(default_factory=dict)


# -- the server and its tasks ----------------------------------------------------------------


def write_tasks(data_dir: Path, counter: Path, ticks: int) -> list[str]:
    """`ticks` 1 s tasks spread over the second, and `manual`; their names."""
    script = SCRIPT.replace("COUNTER", repr(str(counter)))
    start = int(time.time()) - 60
    names = []
    for index in range(ticks):
        name = f"tick-{index:02d}"
        start_date = datetime.fromtimestamp(start + index / ticks, UTC).isoformat()
        schedule = f"scheduler:\n  trigger: interval\n  seconds: 1\n  start_date: '{start_date}'\n"
        write_task(data_dir / "tasks", name, schedule, script)
        names.append(name)
    write_task(data_dir / "tasks", "manual", "overlap: parallel\n", script)
    return [*names, "manual"]


def write_timeouts(data_dir: Path, connect: float | None, statement: float | None) -> None:
    """Store timeouts for the server, in a `.env` in its working folder (data_dir/..)."""
    lines = []
    if connect is not None:
        lines.append(f"TASSE_STORE_CONNECT_TIMEOUT={connect}\n")
    if statement is not None:
        lines.append(f"TASSE_STORE_STATEMENT_TIMEOUT={statement}\n")
    if lines:
        (data_dir.parent / ".env").write_text("".join(lines))


def probe_api(client: httpx.Client, seconds: float, limit: int, pause: float) -> list[Probe]:
    """The three requests in turn for `seconds` (at most `limit` of them)."""
    deadline = time.monotonic() + seconds
    probes: list[Probe] = []
    while len(probes) < limit and time.monotonic() < deadline:
        label, method, path = ENDPOINTS[len(probes) % len(ENDPOINTS)]
        at, started = time.time(), time.perf_counter()
        try:
            answer = client.request(method, path)
            status, body = answer.status_code, answer.json() if path == "/health" else None
        except httpx.TransportError:
            status, body = 0, None
        probes.append(Probe(label, at, time.perf_counter() - started, status, body))
        time.sleep(pause)
    return probes


def wait_healthy(client: httpx.Client, timeout: float = 120) -> float:
    """Poll /health until 200 with no pending record; the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        with contextlib.suppress(httpx.TransportError):
            answer = client.get("/health")
            if answer.status_code == 200 and answer.json()["pending_records"] == 0:
                return time.perf_counter() - started
        time.sleep(0.1)
    raise TimeoutError(f"the server was not healthy {timeout} s after the store came back")


def fault_actions(cluster: PrivateCluster, fault: str) -> tuple[Callable[[], None], ...]:
    """(do the fault, undo it) for a fault's name."""
    return {
        "stopped": (cluster.stop, cluster.start),
        "killed": (cluster.kill, cluster.start),
        "paused": (
            lambda: cluster.signal(signal.SIGSTOP),
            lambda: cluster.signal(signal.SIGCONT),
        ),
    }[fault]


def window(outcome: Outcome, label: str, client: httpx.Client, args: Any) -> None:
    """Probe the API for one window, and note when it began and ended."""
    began = time.time()
    seconds = args.baseline if label == "store up" else args.outage
    outcome.probes[label] = probe_api(client, seconds, args.max_requests, args.pause)
    outcome.windows[label] = (began, time.time())


def run_fault(cluster: PrivateCluster, fault: str, table: str, args: Any) -> Outcome:
    """One server through one fault; what it gave."""
    outcome = Outcome(fault)
    data_dir = temp_data_dir(f"outage-{fault}")
    counter = data_dir.parent / "ran.txt"
    names = write_tasks(data_dir, counter, args.ticks)
    write_timeouts(data_dir, args.connect_timeout, args.statement_timeout)
    do, undo = fault_actions(cluster, fault)
    flags = ("--store-address", cluster.address, "--store-table-name", table)
    try:
        with serve(data_dir, len(names), *flags) as server, server.client(REQUEST_TIMEOUT) as http:
            wait_env(http, "manual", until=("ready", "none"))
            time.sleep(args.warm_up)
            window(outcome, "store up", http, args)
            outcome.fault_took = timed_call(do)
            try:
                window(outcome, "outage", http, args)
            finally:
                outcome.recover_took = timed_call(undo)
            outcome.healthy_after = wait_healthy(http)
        outcome.log = log_counts(server.log_path)
        outcome.counted = read_counter(counter)
        outcome.history = read_history(cluster.address, table)
    except BaseException:
        show_log_tail(data_dir.parent / "server.log")
        raise
    finally:
        discard(data_dir)
    return outcome


def show_log_tail(log_path: Path, lines: int = 40) -> None:
    """The end of the server's output (before its folder is removed)."""
    if log_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- the last lines of {log_path}:", *tail, sep="\n", file=sys.stderr)


def timed_call(function: Callable[[], None]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


LOG_MARKS = {
    "cannot be written": "cannot be written",
    "takes writes again": "takes writes again",
    "ERROR": " ERROR ",
    "Traceback": "Traceback",
    "Error submitting job": "Error submitting job",
}


def log_counts(log_path: Path) -> dict[str, int]:
    """How many server log lines carry each mark."""
    text = log_path.read_text(errors="replace").splitlines()
    return {label: sum(mark in line for line in text) for label, mark in LOG_MARKS.items()}


def read_counter(counter: Path) -> list[Counted]:
    """The runs that executed, from the counter file."""
    counted = []
    for line in counter.read_text().splitlines() if counter.exists() else []:
        run_id, scheduled, now = line.split()
        at = None if scheduled == "-" else datetime.fromisoformat(scheduled).timestamp()
        counted.append(Counted(run_id, at, float(now)))
    return counted


def read_history(address: str, table: str) -> dict[str, Run]:
    """Every run the store holds, by id (read after the server stopped)."""
    store = RunStore(address, table_name=table)
    try:
        runs = [run for task in store.tasks_with_runs() for run in store.for_task(task, 100_000)]
    finally:
        store.close()
    return {run.id: run for run in runs}


# -- what the numbers say --------------------------------------------------------------------


def in_window(at: float, span: tuple[float, float]) -> bool:
    return span[0] <= at < span[1]


def latencies(outcome: Outcome, label: str, endpoint: str) -> list[float]:
    probes = outcome.probes[label]
    return [p.seconds if p.status else REQUEST_TIMEOUT for p in probes if p.label == endpoint]


def lags(outcome: Outcome, label: str) -> dict[str, list[float]]:
    """Task-clock and history lags of the 1 s tasks scheduled in a window."""
    span = outcome.windows[label]
    clock = [
        c.now - c.scheduled for c in outcome.counted if c.scheduled and in_window(c.scheduled, span)
    ]
    history = []
    for run in outcome.history.values():
        if run.scheduled_at and run.started_at and in_window(run.scheduled_at.timestamp(), span):
            history.append((run.started_at - run.scheduled_at).total_seconds())
    return {"task clock": clock, "history": history}


def records(outcome: Outcome) -> dict[str, Any]:
    """Executed runs, which of them the store has, and rows left unfinished."""
    history = outcome.history
    missing = [c.run_id for c in outcome.counted if c.run_id not in history]
    statuses = Counter(
        history[c.run_id].status.value for c in outcome.counted if c.run_id in history
    )
    span = outcome.windows["outage"]
    return {
        "executed": len(outcome.counted),
        "during outage": sum(in_window(c.now, span) for c in outcome.counted),
        "missing": len(missing),
        "statuses": dict(statuses),
        "rows": len(history),
        "unfinished rows": sum(r.status.value in ("queued", "running") for r in history.values()),
    }


def health_story(outcome: Outcome) -> dict[str, Any]:
    """What /health said during the outage."""
    began = outcome.windows["outage"][0]
    healths = [p for p in outcome.probes["outage"] if p.label == "GET /health"]
    first_503 = next((p.at - began for p in healths if p.status == 503), None)
    bodies = [p.body for p in healths if p.body]
    return {
        "statuses": dict(Counter(p.status for p in healths)),
        "first 503 after (s)": None if first_503 is None else round(first_503, 2),
        "max pending_records": max((b["pending_records"] for b in bodies), default=0),
        "max journaled_records": max((b["journaled_records"] for b in bodies), default=0),
        "max loop_lag (ms)": max((b["loop_lag"] * 1000 for b in bodies), default=0),
    }


def statuses_of(outcome: Outcome, label: str) -> dict[int, int]:
    return dict(Counter(p.status for p in outcome.probes[label] if p.label != "GET /health"))


def pooled(outcomes: list[Outcome], pick: Callable[[Outcome], list[float]]) -> list[float]:
    return [value for outcome in outcomes for value in pick(outcome)]


def report_fault(fault: str, outcomes: list[Outcome]) -> list[list[str]]:
    """Print one fault's tables; its rows of the targets table."""
    print(f"\n### {fault} — {len(outcomes)} repetition(s) pooled\n")
    rows = []
    api_p99 = {}
    for label in WINDOWS:
        for endpoint, _, _ in ENDPOINTS:
            values = pooled(outcomes, lambda o, lb=label, ep=endpoint: latencies(o, lb, ep))
            rows.append(summary_row(f"{endpoint}, {label}", values))
            api_p99[label, endpoint] = percentile(values, 99)
    lag_p99 = {}
    for label in WINDOWS:
        for kind in ("task clock", "history"):
            values = pooled(outcomes, lambda o, lb=label, k=kind: lags(o, lb)[k])
            rows.append(summary_row(f"lag, {kind}, {label}", values))
            lag_p99[label, kind] = percentile(values, 99)
    print_table(["(ms)", *SUMMARY_HEADERS[1:]], rows)
    for outcome in outcomes:
        print(f"\nrecords: {records(outcome)}")
        print(f"/health during the outage: {health_story(outcome)}")
        up, down = statuses_of(outcome, "store up"), statuses_of(outcome, "outage")
        print(f"other answers (status: count): store up {up}, outage {down}")
        took = f"fault {outcome.fault_took:.2f} s, recovery {outcome.recover_took:.2f} s"
        print(f"{took}, healthy {outcome.healthy_after:.2f} s after; server log: {outcome.log}")
    return fault_targets(fault, outcomes, api_p99, lag_p99)


def fault_targets(
    fault: str,
    outcomes: list[Outcome],
    api_p99: dict[tuple[str, str], float],
    lag_p99: dict[tuple[str, str], float],
) -> list[list[str]]:
    during = [api_p99["outage", endpoint] for endpoint, _, _ in ENDPOINTS]
    api = ", ".join(f"{ms(p)}" for p in during)
    base = ", ".join(ms(api_p99["store up", endpoint]) for endpoint, _, _ in ENDPOINTS)
    over = {k: lag_p99["outage", k] - lag_p99["store up", k] for k in ("task clock", "history")}
    lag = "; ".join(
        f"{kind} {ms(lag_p99['outage', kind])} vs {ms(lag_p99['store up', kind])}"
        f" ({over[kind] * 1000:+.1f})"
        for kind in ("task clock", "history")
    )
    lost = sum(records(o)["missing"] for o in outcomes)
    executed = sum(records(o)["executed"] for o in outcomes)
    unfinished = sum(records(o)["unfinished rows"] for o in outcomes)
    return [
        [
            f"{fault}: API p99 ≤ 100 ms (health, tasks, POST run)",
            f"{api} ms (store up: {base})",
            verdict(max(during) <= TARGET_API_P99),
        ],
        [
            f"{fault}: lag p99 - store up ≤ 10 ms",
            lag,
            verdict(over["task clock"] <= TARGET_LAG_OVER),
        ],
        [
            f"{fault}: 0 records lost",
            f"{lost} of {executed} missing, {unfinished} rows unfinished",
            verdict(lost == 0 and unfinished == 0),
        ],
    ]


# -- the benchmark ---------------------------------------------------------------------------


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of this benchmark's own, destroyed at the end."""
    cluster = PrivateCluster()
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.destroy()


def parse_args() -> Any:
    parser = new_parser(__doc__)
    parser.add_argument("--outage", type=float, default=20, help="seconds each fault lasts")
    parser.add_argument("--baseline", type=float, default=20, help="seconds of store up first")
    parser.add_argument("--warm-up", type=float, default=3)
    parser.add_argument("--repeat", type=int, default=1, help="servers per fault")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--ticks", type=int, default=10, help="1 s tasks")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between requests")
    parser.add_argument("--max-requests", type=int, default=1000, help="per window")
    parser.add_argument("--connect-timeout", type=float, default=None)
    parser.add_argument("--statement-timeout", type=float, default=None)
    parser.add_argument("--quick", action="store_true", help="8 s windows, 5 tick tasks")
    args = parser.parse_args()
    if args.quick:
        args.outage = args.baseline = 8
        args.ticks = 5
    return args


def main() -> None:
    args = parse_args()
    faults = args.faults.split(",")
    print(f"{machine_note()}; {where(Path(tasse.__file__).parent)}")
    results: dict[str, list[Outcome]] = {fault: [] for fault in faults}
    with private_cluster() as cluster:
        for repetition in range(args.repeat):
            for fault in faults:
                table = f"outage_{fault}_{repetition}"
                results[fault].append(run_fault(cluster, fault, table, args))
                print(f"  {fault} #{repetition + 1} done; {machine_note()}", flush=True)
    targets = [row for fault in faults for row in report_fault(fault, results[fault])]
    print_targets(targets)


if __name__ == "__main__":
    main()
