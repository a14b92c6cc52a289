"""Issue 5, reliability: a task writing 500 MB to stdout as fast as it can.

    /tmp/venv/bin/python bench/flood.py --megabytes 500 --repeat 3

Targets: the server's peak RSS ≤ 150 MB, `GET /health` p99 ≤ 100 ms meanwhile; the run
log capped at `max_run_log_bytes` (10 MiB by default) and ended by a marker line, log.txt's
last line of the run saying how many bytes were dropped, and the run `succeeded`.

Two kinds of output, each on a server of its own (peak RSS is per process):
- *blocks*: `b = b"x" * 65535 + b"\\n"`, written with `sys.stdout.buffer.write` until the
  total is reached — 64 KiB lines;
- *lines*: 100-byte lines, written 655 at a time (65,500 bytes a write) — log.txt is
  written a line at a time, each with a timestamp, so many short lines cost more.
The total is `--megabytes` MiB, rounded down to whole writes. Each repetition starts
a fresh `tasse serve` per kind, waits for the task's environment, then
`POST /tasks/<name>/run` and probes `GET /health` every `--probe-interval` (the same
loop samples the server's VmRSS and asks `GET /runs/{id}` every fifth tick, until the
run is final). Peak RSS is the server's `VmHWM` at the end (and at ready, as a baseline).

Baselines in the same repetition, run with the task environment's interpreter and
`PYTHONUNBUFFERED=1` as Tasse runs it: the same script piped to `cat > /dev/null` (a
shell pipeline), read by a bare Python loop (`os.read(fd, 65536)`), and read by a bare
asyncio loop (`await process.stdout.read(65536)`, what Tasse does, minus the logs). The
throughput ratio compares the run's recorded started_at → finished_at with their wall
times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from harness import (
    FINAL,
    cpu_seconds,
    discard,
    env_python,
    machine_note,
    new_parser,
    print_summaries,
    print_table,
    print_targets,
    proc_stats,
    read_task_py,
    run_seconds,
    serve,
    summary,
    task_environ,
    temp_data_dir,
    timed_get,
    verdict,
    wait_env,
    write_task,
)

TARGET_RSS_MB = 150
TARGET_P99_S = 0.100
#: Tasse's default `max_run_log_bytes`
RUN_LOG_LIMIT = 10 * 1024 * 1024
MARKER = (
    f"\n[tasse] output beyond {RUN_LOG_LIMIT} bytes is dropped "
    "(counted in the run's last log.txt line)\n"
).encode()
WRITE = 65536
#: kind → bytes per line
KINDS = {"blocks": WRITE, "lines": 100}


def output_of(line_bytes: int, megabytes: int) -> tuple[bytes, int]:
    """One write's bytes (whole lines of `line_bytes`) and how many writes make the total."""
    line = b"x" * (line_bytes - 1) + b"\n"
    block = line * (WRITE // line_bytes)
    return block, megabytes * 1024 * 1024 // len(block)


def script(line_bytes: int, megabytes: int) -> str:
    """The task: the same write as fast as it can, `count` times."""
    block, count = output_of(line_bytes, megabytes)
    per_write = len(block) // line_bytes
    return (
        "import sys\n"
        f'b = (b"x" * {line_bytes - 1} + b"\\n") * {per_write}\n'
        "w = sys.stdout.buffer.write\n"
        f"for _ in range({count}):\n"
        "    w(b)\n"
    )


# -- Tasse ----------------------------------------------------------------------------------


def watch(client: httpx.Client, pid: int, run_id: str, interval: float) -> dict[str, Any]:
    """Probe GET /health every `interval` until the run is final; latencies and RSS."""
    health: list[float] = []
    not_ok = ticks = 0
    max_rss = 0
    while True:
        tick = time.perf_counter()
        sent = time.perf_counter()
        answer = client.get("/health")
        health.append(time.perf_counter() - sent)
        not_ok += answer.status_code != 200
        max_rss = max(max_rss, proc_stats(pid)["VmRSS"])
        ticks += 1
        if ticks % 5 == 0:
            run = client.get(f"/runs/{run_id}").json()
            if run["status"] in FINAL:
                return {"health": health, "not_ok": not_ok, "max_rss_kb": max_rss, "run": run}
        time.sleep(max(0.0, interval - (time.perf_counter() - tick)))


def tasse_flood(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """One server, one flooding run: latencies, memory, duration, and the log checks."""
    name = f"flood-{kind}"
    data_dir = temp_data_dir(f"flood-{kind}")
    write_task(data_dir / "tasks", name, "description: floods stdout\n", script_of(kind, args))
    with serve(data_dir, 1) as server, server.client() as client:
        python = env_python(wait_env(client, name))
        time.sleep(1.0)  # let start-up work settle
        idle = proc_stats(server.pid)
        idle_health = []
        for _ in range(50):
            idle_health.append(timed_get(client, "/health")[0])
            time.sleep(args.probe_interval)
        cpu = cpu_seconds(server.pid)
        posted = time.perf_counter()
        run_id = client.post(f"/tasks/{name}/run").json()["id"]
        seen = watch(client, server.pid, run_id, args.probe_interval)
        seen["post_to_final"] = time.perf_counter() - posted
        seen["cpu_s"] = cpu_seconds(server.pid) - cpu
        seen["hwm_mb"] = proc_stats(server.pid)["VmHWM"] / 1024
        api_log_bytes = len(client.get(f"/runs/{run_id}/log").content)
    seen.update(
        kind=kind,
        python=python,
        data_dir=data_dir,
        idle_hwm_mb=idle["VmHWM"] / 1024,
        idle_health=idle_health,
        api_log_bytes=api_log_bytes,
        **log_checks(data_dir / "logs" / name, run_id, kind, args.megabytes),
    )
    seen["duration_s"] = run_seconds(seen["run"])
    return seen


def script_of(kind: str, args: argparse.Namespace) -> str:
    """The task.py for a kind of output."""
    return script(KINDS[kind], args.megabytes)


def log_checks(logs: Path, run_id: str, kind: str, megabytes: int) -> dict[str, Any]:
    """The run log capped with the marker, log.txt's count of dropped bytes."""
    block, count = output_of(KINDS[kind], megabytes)
    total = len(block) * count
    expected = (block * (RUN_LOG_LIMIT // len(block) + 1))[:RUN_LOG_LIMIT] + MARKER
    run_log = (logs / "runs" / f"{run_id}.log").read_bytes()
    ours = [
        line for line in (logs / "log.txt").read_bytes().splitlines() if run_id.encode() in line
    ]
    last = ours[-1].decode(errors="replace") if ours else ""
    found = re.search(r"; (\d+) bytes of output beyond the limit were dropped", last)
    dropped = int(found.group(1)) if found else -1
    return {
        "total": total,
        "run_log_bytes": len(run_log),
        "run_log_ok": run_log == expected,
        "last_line": last[last.find("--") :],
        "dropped": dropped,
        "dropped_ok": dropped == total - RUN_LOG_LIMIT,
        "log_txt_lines": len(ours),
        "log_txt_bytes": (logs / "log.txt").stat().st_size,
    }


# -- baselines ------------------------------------------------------------------------------


def bare_cat(python: str, folder: Path) -> float:
    """Wall time of `python task.py | cat > /dev/null`."""
    started = time.perf_counter()
    pipeline = f"'{python}' task.py | cat > /dev/null"
    subprocess.run(["sh", "-c", pipeline], cwd=folder, env=task_environ(), check=True)
    return time.perf_counter() - started


def bare_loop(python: str, folder: Path) -> float:
    """Wall time of reading the script's output in a bare Python loop (and dropping it)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [python, "task.py"], cwd=folder, env=task_environ(), stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    fd = process.stdout.fileno()
    while os.read(fd, WRITE):
        pass
    process.stdout.close()
    if process.wait() != 0:
        raise RuntimeError("task.py failed")
    return time.perf_counter() - started


def bare_asyncio(python: str, folder: Path) -> float:
    """Wall time of reading it with asyncio's subprocess streams, as Tasse does."""

    async def main() -> float:
        started = time.perf_counter()
        await read_task_py(python, folder, task_environ())
        return time.perf_counter() - started

    return asyncio.run(main())


BASELINES = {
    "| cat > /dev/null": bare_cat,
    "bare Python os.read loop": bare_loop,
    "bare asyncio stdout.read loop": bare_asyncio,
}


# -- report ---------------------------------------------------------------------------------


def report(
    kind: str, results: list[dict[str, Any]], bases: dict[str, list[float]]
) -> list[list[str]]:
    """Tables for one kind of output; its verdict rows."""
    total = results[0]["total"]
    mib = total / 2**20
    print(f"\n{kind}: {total:,} bytes ({mib:.1f} MiB), {len(results)} repetitions")
    for n, r in enumerate(results, 1):
        print(
            f"  {n}: {r['run']['status']}, {r['duration_s']:.2f} s, peak RSS {r['hwm_mb']:.0f} MB"
            f" (idle {r['idle_hwm_mb']:.0f}, most sampled {r['max_rss_kb'] / 1024:.0f}), "
            f"health p99 {summary(r['health'])['p99'] * 1000:.1f} ms (n {len(r['health'])}, "
            f"not 200: {r['not_ok']}), server CPU {r['cpu_s']:.2f} s, run log "
            f"{r['run_log_bytes']:,} B (as expected: {r['run_log_ok']}; API {r['api_log_bytes']:,}"
            f" B), log.txt {r['log_txt_lines']:,} lines of the run, {r['log_txt_bytes']:,} B"
        )
        print(f"     last line: {r['last_line']}")
    idle = [x for r in results for x in r["idle_health"]]
    flood = [x for r in results for x in r["health"]]
    print_summaries({"GET /health, idle (baseline)": idle, "GET /health, during the flood": flood})
    duration = statistics.median(r["duration_s"] for r in results)
    rows = [["Tasse: started_at → finished_at", f"{duration:.2f}", f"{mib / duration:.0f}", "1.00"]]
    post = statistics.median(r["post_to_final"] for r in results)
    label = "Tasse: POST → final seen by the client (polled every 5th probe)"
    rows.append([label, f"{post:.2f}", f"{mib / post:.0f}", f"{post / duration:.2f}"])
    for label, times in bases.items():
        base = statistics.median(times)
        rows.append([label, f"{base:.2f}", f"{mib / base:.0f}", f"{duration / base:.2f}"])
    print_table(["medians", "s", "MiB/s", "Tasse ÷ this"], rows)

    return verdict_rows(kind, results)


def verdict_rows(kind: str, results: list[dict[str, Any]]) -> list[list[str]]:
    """The targets for one kind of output, what was measured, PASS or MISS."""
    hwm = [r["hwm_mb"] for r in results]
    idle = statistics.median(r["idle_hwm_mb"] for r in results)
    p99s = [summary(r["health"])["p99"] for r in results]
    each = ", ".join(f"{p * 1000:.0f}" for p in p99s)
    logs_ok = [
        r["run_log_ok"] and r["dropped_ok"] and r["run"]["status"] == "succeeded" for r in results
    ]
    return [
        [
            f"{kind}: peak RSS ≤ {TARGET_RSS_MB} MB",
            f"median {statistics.median(hwm):.0f} MB, max {max(hwm):.0f} (idle {idle:.0f})",
            verdict(max(hwm) <= TARGET_RSS_MB),
        ],
        [
            f"{kind}: GET /health p99 ≤ 100 ms",
            f"median {statistics.median(p99s) * 1000:.1f} ms ({each})",
            verdict(statistics.median(p99s) <= TARGET_P99_S),
        ],
        [
            f"{kind}: succeeded, run log {RUN_LOG_LIMIT:,} B + marker, dropped count right",
            ", ".join("yes" if ok else "NO" for ok in logs_ok),
            verdict(all(logs_ok)),
        ],
    ]


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--megabytes", type=int, default=500, help="MiB the task writes")
    parser.add_argument("--kinds", default="blocks,lines", help=f"of {', '.join(KINDS)}")
    parser.add_argument("--probe-interval", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(machine_note())
    verdicts = []
    for kind in args.kinds.split(","):
        results: list[dict[str, Any]] = []
        bases: dict[str, list[float]] = {}
        for n in range(args.repeat):
            result = tasse_flood(kind, args)
            results.append(result)
            folder = result["data_dir"] / "tasks" / f"flood-{kind}"
            line = [f"{kind} {n + 1}: Tasse {result['duration_s']:.2f} s"]
            for label, measure in BASELINES.items():
                bases.setdefault(label, []).append(measure(result["python"], folder))
                line.append(f"{label} {bases[label][-1]:.2f} s")
            print(", ".join(line), flush=True)
            discard(result["data_dir"])
        verdicts += report(kind, results, bases)
    print_targets(verdicts)


if __name__ == "__main__":
    main()
