"""Issue 5, reliability: 1,000 manual runs requested at once, `--max-concurrent-runs 8`.

    /tmp/venv/bin/python bench/burst.py --runs 1000 --repeat 3

Target: every run recorded and finished, none lost, API p99 under 100 ms throughout.

Each repetition starts a fresh `tasse serve --max-concurrent-runs 8` with one task,
`overlap: parallel` (no limit of its own, so only the server's 8 slots hold runs back),
whose task.py sleeps 50 ms and prints a line. Then:
- `--clients` threads, one persistent connection each, send the `--runs`
  `POST /tasks/burst/run` as fast as the server answers; each request's latency is kept;
- a prober in a process of its own (so the firing threads do not slow it down) sends
  `GET /health`, `GET /runs/{id}` (a random run already requested) and `GET /tasks` every
  `--probe-interval`, from 1 s before the first POST until every run is final;
- a sampler thread counts the server's child processes and open fds every 5 ms;
- completion is watched in the SQLite store, read by the benchmark (no load on the API).
Then the checks: exactly `--runs` rows for the task in the store, ids unique and equal to
the ids the POSTs answered, all `succeeded`, each with one "run ended" line in log.txt,
the same through the API (`GET /tasks/burst/runs?status=…`; its limit is 1000 and it
has no paging, hence the store as well), and never more than 8 runs at once — by the
runs' recorded started_at → finished_at intervals and by the sampled child processes.

Baselines in the same repetition: a bare asyncio program (in this process) that runs the
same script `--runs` times under `asyncio.Semaphore(8)`, output read from a pipe as Tasse
does, with `sys.executable` (the benchmark's interpreter, as the issue asks) and with the
task environment's interpreter (what Tasse actually runs; it starts faster). Drain time:
first POST sent → last run's recorded `finished_at` (bare: first spawn → last exit).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from harness import (
    FINAL,
    SUMMARY_HEADERS,
    Server,
    cpu_seconds,
    discard,
    env_python,
    machine_note,
    new_parser,
    print_table,
    print_targets,
    proc_stats,
    read_task_py,
    serve,
    summary,
    summary_row,
    temp_data_dir,
    verdict,
    wait_env,
    write_task,
)

TARGET_P99_S = 0.100
#: one POST: when it was sent (perf_counter), its latency, HTTP status, the answer's JSON
Post = tuple[float, float, int, dict[str, Any]]
#: one probe: when it was sent (perf_counter), which, its latency, HTTP status
Probe = tuple[float, str, float, int]
TASK = "burst"
#: GET /tasks/{name}/runs answers at most this many (and has no paging)
API_LIMIT = 1000
PROBES = ("GET /health", "GET /runs/{id}", "GET /tasks")


def script(sleep: float) -> str:
    """The task: a short sleep and a line of output."""
    return f'import time\ntime.sleep({sleep})\nprint("burst done")\n'


# -- observers ------------------------------------------------------------------------------


def probe(url: str, interval: float, ids: Any, stop: Any, out: Any) -> None:
    """Prober process: the three GETs every `interval` until `stop`; samples to `out`."""
    known: list[str] = []
    samples: list[Probe] = []
    began = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            tick = time.perf_counter()
            while not ids.empty():
                known.append(ids.get_nowait())
            paths = ["/health", f"/runs/{random.choice(known)}" if known else None, "/tasks"]
            for kind, path in zip(PROBES, paths, strict=True):
                if path is None:
                    continue
                sent = time.perf_counter()
                try:
                    code = client.get(path).status_code
                except httpx.HTTPError:
                    code = 0
                samples.append((sent, kind, time.perf_counter() - sent, code))
            time.sleep(max(0.0, interval - (time.perf_counter() - tick)))
    times = os.times()
    out.put((samples, times.user + times.system, time.perf_counter() - began))


class Sampler(threading.Thread):
    """Counts the server's child processes and open fds every few milliseconds."""

    def __init__(self, pid: int, every: float = 0.005):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.max_children = self.max_fds = 0
        self.fds_at_max_children = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                children = sum(
                    len(Path(f"/proc/{self.pid}/task/{tid}/children").read_text().split())
                    for tid in os.listdir(f"/proc/{self.pid}/task")
                )
                fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            except OSError:  # a thread ended between listing and reading
                continue
            if children > self.max_children:
                self.max_children, self.fds_at_max_children = children, fds
            self.max_fds = max(self.max_fds, fds)


def loop_schedstat(pid: int) -> tuple[float, float]:
    """Seconds the server's main thread (its event loop) has run, and has waited for a CPU."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


# -- firing ---------------------------------------------------------------------------------


def fire(url: str, runs: int, clients: int, ids: Any) -> list[Post]:
    """`runs` POSTs from `clients` threads; (sent, latency, HTTP status, answer) each."""
    counter = itertools.count()
    results: list[Post] = []
    lock = threading.Lock()

    def client_thread() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.get("/health")  # connect before the burst
            barrier.wait()
            while next(counter) < runs:
                sent = time.perf_counter()
                try:
                    answer = client.post(f"/tasks/{TASK}/run")
                    code, body = answer.status_code, answer.json()
                except (httpx.HTTPError, ValueError) as error:
                    code, body = 0, {"error": repr(error)}
                latency = time.perf_counter() - sent
                if "id" in body:
                    ids.put(body["id"])
                with lock:
                    results.append((sent, latency, code, body))

    barrier = threading.Barrier(clients)
    threads = [threading.Thread(target=client_thread) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# -- the store ------------------------------------------------------------------------------


def stored_runs(db: Path) -> list[dict[str, Any]]:
    """The task's rows in the server's SQLite store, read directly."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(
            "SELECT id, status, started_at, finished_at FROM tasse_runs WHERE task = ?", (TASK,)
        ).fetchall()
    return [dict(row) for row in rows]


def wait_final(db: Path, runs: int, timeout: float) -> bool:
    """Poll the store until `runs` of the task's rows are final (False: not in time)."""
    deadline = time.monotonic() + timeout
    marks = ",".join("?" * len(FINAL))
    query = f"SELECT count(*) FROM tasse_runs WHERE task = ? AND status IN ({marks})"
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
            if connection.execute(query, (TASK, *FINAL)).fetchone()[0] >= runs:
                return True
        time.sleep(0.05)
    return False


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one moment (an end before a start at the same instant)."""
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    alive = peak = 0
    for _, step in edges:
        alive += step
        peak = max(peak, alive)
    return peak


def parse(stamp: str) -> datetime:
    """A stored timestamp (naive, UTC) as an aware datetime."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


# -- one repetition -------------------------------------------------------------------------


def tasse_burst(args: argparse.Namespace) -> dict[str, Any]:
    """One server, one burst: the checks and the figures."""
    data_dir = temp_data_dir("burst")
    write_task(data_dir / "tasks", TASK, "overlap: parallel\n", script(args.sleep))
    with serve(data_dir, 1, "--max-concurrent-runs", str(args.concurrency)) as server:
        with server.client(timeout=10) as client:
            python = env_python(wait_env(client, TASK))
        time.sleep(1.0)  # let start-up work settle
        raw = observe_burst(server, args)
        raw["api"] = api_check(server.url)
    rows = stored_runs(data_dir / "tasse.db")
    result = checks(rows, raw["posts"], args.runs)
    result.update(figures(raw, rows, args))
    result.update(
        api=raw["api"],
        ended_lines=count_ended(data_dir / "logs" / TASK / "log.txt"),
        env_python=python,
        data_dir=data_dir,
    )
    # The API and log.txt must tell the same: every run listed, every end written.
    listable = min(args.runs, API_LIMIT)
    api_ok = raw["api"].get("succeeded") == raw["api"].get("listed, unique ids") == listable
    result["ok"] = result["ok"] and api_ok and result["ended_lines"] == args.runs
    return result


def observe_burst(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Fire the POSTs and wait for the drain, with the prober and the sampler watching."""
    ctx = mp.get_context("fork")  # before any thread of ours is started
    ids, stop, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    raw: dict[str, Any] = {"idle": proc_stats(server.pid)}
    prober = ctx.Process(target=probe, args=(server.url, args.probe_interval, ids, stop, out))
    prober.start()
    sampler = Sampler(server.pid)
    sampler.start()
    time.sleep(1.0)  # idle probes: the baseline latency on this server

    def mark(name: str) -> None:
        raw[name] = {
            "perf": time.perf_counter(),
            "wall": time.time(),
            "cpu": cpu_seconds(server.pid),
            "own_cpu": sum(os.times()[:2]),
            "loop": loop_schedstat(server.pid),
        }

    mark("start")
    raw["posts"] = fire(server.url, args.runs, args.clients, ids)
    mark("fired")
    raw["in_time"] = wait_final(server.data_dir / "tasse.db", args.runs, args.timeout)
    mark("drained")
    time.sleep(0.3)
    stop.set()
    raw["samples"], raw["prober_cpu"], raw["prober_s"] = out.get(timeout=30)
    prober.join()
    sampler.stopped.set()
    sampler.join()
    raw["peak"], raw["sampler"] = proc_stats(server.pid), sampler
    return raw


def figures(raw: dict[str, Any], rows: list[dict[str, Any]], args: Any) -> dict[str, Any]:
    """Latencies, times, CPU shares and process figures from one burst."""
    start, fired, drained = raw["start"], raw["fired"], raw["drained"]
    firing, draining = fired["perf"] - start["perf"], drained["perf"] - fired["perf"]
    finished = sorted(parse(r["finished_at"]).timestamp() for r in rows if r["finished_at"])
    after_fire = [t for t in finished if t > fired["wall"]]
    posts, sampler = raw["posts"], raw["sampler"]
    return {
        **slot_times(rows, args.concurrency),
        "post": [latency for _, latency, _, _ in posts],
        "post_codes": Counter(code for _, _, code, _ in posts),
        "post_states": Counter(body.get("status") for _, _, _, body in posts),
        "probes": split_probes(raw["samples"], start["perf"], fired["perf"], drained["perf"]),
        "probe_errors": sum(code != 200 for _, _, _, code in raw["samples"]),
        "fire_s": firing,
        "drain_s": (finished[-1] - start["wall"]) if finished else float("nan"),
        "seen_final_s": drained["wall"] - start["wall"] if raw["in_time"] else float("nan"),
        # runs per second once every POST was answered: no client but the prober
        "rate_after_fire": len(after_fire) / (after_fire[-1] - fired["wall"]) if after_fire else 0,
        "cpu_ms_per_run": (drained["cpu"] - start["cpu"]) / args.runs * 1000,
        "fire_cpu": (fired["cpu"] - start["cpu"]) / firing,
        "drain_cpu": (drained["cpu"] - fired["cpu"]) / draining,
        "client_cpu": (fired["own_cpu"] - start["own_cpu"]) / firing,
        "prober_cpu": raw["prober_cpu"] / raw["prober_s"],
        # the event loop's thread: share of the wall time on a CPU, and waiting for one
        "loop_fire": [(b - a) / firing for a, b in zip(start["loop"], fired["loop"], strict=True)],
        "loop_drain": [
            (b - a) / draining for a, b in zip(fired["loop"], drained["loop"], strict=True)
        ],
        "idle_hwm_mb": raw["idle"]["VmHWM"] / 1024,
        "hwm_mb": raw["peak"]["VmHWM"] / 1024,
        "idle_fds": raw["idle"]["fds"],
        "max_fds": sampler.max_fds,
        "fds_at_peak": sampler.fds_at_max_children,
        "max_children": sampler.max_children,
    }


def api_check(url: str) -> dict[str, int]:
    """What the API lists: runs per status (at most its limit of 1000 each)."""
    found = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for status in (*FINAL, "running", "queued"):
            answer = client.get(
                f"/tasks/{TASK}/runs", params={"status": status, "limit": API_LIMIT}
            )
            answer.raise_for_status()
            found[status] = len(answer.json())
        listed = client.get(f"/tasks/{TASK}/runs", params={"limit": API_LIMIT}).json()
    found["listed, unique ids"] = len({run["id"] for run in listed})
    return {k: v for k, v in found.items() if v or k == "succeeded"}


def count_ended(log_txt: Path) -> int:
    """How many "run ended" lines log.txt has."""
    with log_txt.open("rb") as log:
        return sum(b"-- run ended" in line for line in log)


def checks(rows: list[dict[str, Any]], posts: list[Post], runs: int) -> dict[str, Any]:
    """Rows against POST answers: counts, uniqueness, statuses, the most alive at once."""
    stored_ids = [r["id"] for r in rows]
    answered = [body["id"] for _, _, code, body in posts if code == 202]
    intervals = [
        (parse(r["started_at"]), parse(r["finished_at"]))
        for r in rows
        if r["started_at"] and r["finished_at"]
    ]
    return {
        "stored": len(rows),
        "unique": len(set(stored_ids)),
        "answered": len(answered),
        "lost": len(set(answered) - set(stored_ids)),
        "unasked": len(set(stored_ids) - set(answered)),
        "statuses": Counter(r["status"] for r in rows),
        "max_alive": max_overlap(intervals),
        "ok": len(rows) == runs == len(set(stored_ids)) == len(answered)
        and set(answered) == set(stored_ids)
        and all(r["status"] == "succeeded" for r in rows),
    }


def slot_times(rows: list[dict[str, Any]], slots: int) -> dict[str, list[float]]:
    """Each run's started_at → finished_at, and how long a freed slot stayed empty.

    A slot's handover: from the finished_at that freed it to the next started_at (runs
    start in the order their slots free up, so the k-th start after the first eight
    follows the k-th end, `slots` = --max-concurrent-runs).
    """
    starts = sorted(parse(r["started_at"]).timestamp() for r in rows if r["started_at"])
    ends = sorted(parse(r["finished_at"]).timestamp() for r in rows if r["finished_at"])
    durations = [
        (parse(r["finished_at"]) - parse(r["started_at"])).total_seconds()
        for r in rows
        if r["started_at"] and r["finished_at"]
    ]
    handovers = [start - end for start, end in zip(starts[slots:], ends, strict=False)]
    return {"durations": durations, "handovers": handovers}


def split_probes(
    samples: list[Probe], start: float, fired: float, drained: float
) -> dict[str, dict[str, list[float]]]:
    """Probe latencies by phase and kind: before the burst, while firing, while draining."""
    phases: dict[str, dict[str, list[float]]] = {"idle": {}, "firing": {}, "draining": {}}
    for sent, kind, latency, _ in samples:
        if sent > drained:
            continue
        phase = "idle" if sent < start else "firing" if sent < fired else "draining"
        phases[phase].setdefault(kind, []).append(latency)
    return phases


# -- the baseline ---------------------------------------------------------------------------


async def _bare(python: str, folder: Path, runs: int, slots: int) -> tuple[float, int, list[float]]:
    semaphore = asyncio.Semaphore(slots)
    alive = peak = 0
    durations: list[float] = []

    async def one() -> None:
        nonlocal alive, peak
        async with semaphore:
            alive += 1
            peak = max(peak, alive)
            spawned = time.perf_counter()
            await read_task_py(python, folder)
            durations.append(time.perf_counter() - spawned)
            alive -= 1

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return time.perf_counter() - started, peak, durations


def bare(python: str, runs: int, slots: int, sleep: float) -> tuple[float, list[float]]:
    """Seconds a bare asyncio program takes for `runs` runs, `slots` at a time; each run's."""
    folder = temp_data_dir("burst-bare")
    (folder / "task.py").write_text(script(sleep))

    async def main() -> tuple[float, int, list[float]]:
        # The same child watcher Tasse uses on Python 3.11 (no thread per child).
        if sys.version_info < (3, 12) and hasattr(os, "pidfd_open"):
            watcher = asyncio.PidfdChildWatcher()
            watcher.attach_loop(asyncio.get_running_loop())
            asyncio.get_event_loop_policy().set_child_watcher(watcher)
        return await _bare(python, folder, runs, slots)

    seconds, peak, durations = asyncio.run(main())
    discard(folder)
    assert peak <= slots
    return seconds, durations


# -- report ---------------------------------------------------------------------------------


def median_of(results: list[dict[str, Any]], key: str) -> float:
    """The median over repetitions of one figure."""
    return float(statistics.median(r[key] for r in results))


def pooled(
    results: list[dict[str, Any]], get: Callable[[dict[str, Any]], list[float]]
) -> list[float]:
    """One kind of sample from every repetition."""
    return [x for r in results for x in get(r)]


def print_repetitions(results: list[dict[str, Any]]) -> None:
    """What each repetition found, checked and measured."""
    print("\nper repetition:")
    for n, r in enumerate(results, 1):
        print(
            f"  {n}: stored {r['stored']} (unique {r['unique']}), answered {r['answered']}, "
            f"lost {r['lost']}, statuses {dict(r['statuses'])}, POST codes {dict(r['post_codes'])}"
            f", POST answered as {dict(r['post_states'])}, max alive {r['max_alive']} (children "
            f"seen {r['max_children']}), 'run ended' lines {r['ended_lines']}, API {r['api']}, "
            f"probes not 200: {r['probe_errors']}"
        )
        print(
            f"     fire {r['fire_s']:.2f} s, drain {r['drain_s']:.2f} s (seen final in the store"
            f" {r['seen_final_s']:.2f} s), POST p99 {summary(r['post'])['p99'] * 1000:.1f} ms, "
            f"probe p99 {probe_p99(r) * 1000:.1f} ms, server CPU {r['cpu_ms_per_run']:.2f} ms/run"
        )
        print(
            f"     CPU in cores while firing: server {r['fire_cpu']:.2f}, POST threads "
            f"{r['client_cpu']:.2f}; while draining: server {r['drain_cpu']:.2f}; prober "
            f"{r['prober_cpu']:.2f}; runs/s after the last POST {r['rate_after_fire']:.1f}"
        )
        print(
            "     event loop thread, share of wall time on a CPU / waiting for a CPU: firing "
            "{:.0%} / {:.0%}, draining {:.0%} / {:.0%}".format(*r["loop_fire"], *r["loop_drain"])
        )


def latency_rows(
    results: list[dict[str, Any]], base_runs: dict[str, list[float]]
) -> list[list[str]]:
    """Rows of the latency table: POSTs, probes by phase, and one run's times."""
    rows = [summary_row("POST /tasks/burst/run", pooled(results, lambda r: r["post"]))]
    phases = {"idle": "idle", "firing": "while the POSTs go", "draining": "after the last POST"}
    for phase, label in phases.items():
        for kind in PROBES:
            values = [x for r in results for x in r["probes"][phase].get(kind, [])]
            if values:  # no run id is known before the burst
                rows.append(summary_row(f"{kind}, {label}", values))
    durations = pooled(results, lambda r: r["durations"])
    rows.append(summary_row("a run: started_at → finished_at", durations))
    handovers = pooled(results, lambda r: r["handovers"])
    rows.append(summary_row("a slot: finished_at → next started_at", handovers))
    for label, times in base_runs.items():
        rows.append(summary_row(f"a run, {label.split(',')[1].strip()}: spawn → exit", times))
    return rows


def print_drain(results: list[dict[str, Any]], bases: dict[str, list[float]], args: Any) -> None:
    """Drain times against the baselines, and the server's memory and fds."""
    drain = median_of(results, "drain_s")
    print(f"\ndrain of {args.runs} runs, {args.concurrency} at a time (medians of {len(results)}):")
    table = [["Tasse: first POST → last finished_at", f"{drain:.2f}", f"{args.runs / drain:.0f}"]]
    table[0].append("1.00")
    for label, times in bases.items():
        base = statistics.median(times)
        table.append([label, f"{base:.2f}", f"{args.runs / base:.0f}", f"{drain / base:.2f}"])
    print_table(["", "drain s", "runs/s", "Tasse ÷ this"], table)
    hwm = f"{median_of(results, 'idle_hwm_mb'):.0f}", f"{median_of(results, 'hwm_mb'):.0f}"
    fds = f"{median_of(results, 'max_fds'):.0f} ({median_of(results, 'fds_at_peak'):.0f})"
    print_table(
        ["server (medians)", "idle", "peak"],
        [
            ["VmHWM MB", *hwm],
            [
                "open fds: most seen (at the most children)",
                f"{median_of(results, 'idle_fds'):.0f}",
                fds,
            ],
        ],
    )


def verdict_rows(results: list[dict[str, Any]], args: Any) -> list[list[str]]:
    """The targets, what was measured, PASS or MISS."""
    post_p99 = [summary(r["post"])["p99"] for r in results]
    probe_p99s = [probe_p99(r) for r in results]
    most = [max(r["max_alive"], r["max_children"]) for r in results]
    return [
        [
            f"all {args.runs} recorded, finished, succeeded; none lost; ids unique",
            ", ".join("yes" if r["ok"] else "NO" for r in results),
            verdict(all(r["ok"] for r in results)),
        ],
        [
            f"never more than {args.concurrency} at once",
            f"max {max(most)}",
            verdict(max(most) <= args.concurrency),
        ],
        [
            "POST p99 < 100 ms",
            ms_list(post_p99),
            verdict(statistics.median(post_p99) < TARGET_P99_S),
        ],
        [
            "probe GETs p99 < 100 ms during burst and drain",
            ms_list(probe_p99s),
            verdict(statistics.median(probe_p99s) < TARGET_P99_S),
        ],
    ]


def probe_p99(result: dict[str, Any]) -> float:
    """p99 of every probe GET sent during the burst and the drain."""
    probes = result["probes"]
    load = [x for p in ("firing", "draining") for kind in PROBES for x in probes[p].get(kind, [])]
    return summary(load)["p99"]


def ms_list(values: list[float]) -> str:
    """The median of per-repetition values in ms, then each."""
    each = ", ".join(f"{v * 1000:.0f}" for v in values)
    return f"median {statistics.median(values) * 1000:.1f} ms ({each})"


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="--max-concurrent-runs")
    parser.add_argument("--clients", type=int, default=8, help="threads sending the POSTs")
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds the task sleeps")
    parser.add_argument("--probe-interval", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the drain")
    args = parser.parse_args()

    print(machine_note())
    results: list[dict[str, Any]] = []
    bases: dict[str, list[float]] = {}
    base_runs: dict[str, list[float]] = {}
    for n in range(args.repeat):
        results.append(tasse_burst(args))
        print(f"repetition {n + 1}: Tasse drain {results[-1]['drain_s']:.2f} s", flush=True)
        for label, python in (
            (f"bare asyncio, sys.executable ({sys.executable})", sys.executable),
            ("bare asyncio, the task environment's python", results[-1]["env_python"]),
        ):
            seconds, durations = bare(python, args.runs, args.concurrency, args.sleep)
            bases.setdefault(label, []).append(seconds)
            base_runs.setdefault(label, []).extend(durations)
            print(f"  {label}: {bases[label][-1]:.2f} s", flush=True)
        # Kept until now: the second baseline runs the task environment's interpreter.
        discard(results[-1]["data_dir"])
    print_repetitions(results)
    print(f"\nlatency (ms), all {len(results)} repetitions pooled:")
    print_table(SUMMARY_HEADERS, latency_rows(results, base_runs))
    print_drain(results, bases, args)
    print_targets(verdict_rows(results, args))


if __name__ == "__main__":
    main()
