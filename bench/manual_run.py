"""Manual run: POST /tasks/<name>/run until the run is finished, against bare `python task.py`.

    .venv/bin/python bench/manual_run.py --samples 30 --loads 0,10000

The task is `print("hi")`. The clock starts before the POST and stops when the client
knows the run is finished, found in one of two ways (both measured, interleaved):
- poll: GET /runs/{id} about every millisecond until its status is final;
- follow: stream GET /runs/{id}/log?follow=true (it ends when the run ends), then one
  GET /runs/{id} that must show a final status.
One persistent HTTP connection (httpx.Client). Baseline in the same run, interleaved:
subprocess.run([python, "task.py"]) wall time. Target: median ≤ 1.3 x the baseline's.
Each load (extra task folders loaded in the server) is its own server.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
from _common import (
    SUMMARY_HEADERS,
    Server,
    machine_note,
    make_tasks,
    print_table,
    summary_row,
    temp_data_dir,
    verdict,
    write_task,
)

TARGET_RATIO = 1.3
FINAL = {"succeeded", "failed", "timed_out", "cancelled", "interrupted", "skipped", "missed"}
TASK = "hello"


def bare(folder: Path) -> float:
    """Wall time of running the task's script directly."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "task.py"], cwd=folder, capture_output=True, check=True)
    return time.perf_counter() - started


def start_run(client: httpx.Client) -> str:
    """POST /tasks/<name>/run; the new run's id."""
    answer = client.post(f"/tasks/{TASK}/run")
    answer.raise_for_status()
    run_id: str = answer.json()["id"]
    return run_id


def by_polling(client: httpx.Client) -> tuple[float, dict[str, str]]:
    """Seconds from POST to a final status seen by polling GET /runs/{id}."""
    started = time.perf_counter()
    run_id = start_run(client)
    while True:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] in FINAL:
            return time.perf_counter() - started, run
        time.sleep(0.001)


def by_following(client: httpx.Client) -> tuple[float, dict[str, str]]:
    """Seconds from POST to the end of the followed log plus a GET /runs/{id} that is final."""
    started = time.perf_counter()
    run_id = start_run(client)
    with client.stream("GET", f"/runs/{run_id}/log", params={"follow": "true"}) as stream:
        for _ in stream.iter_bytes():
            pass
    run = client.get(f"/runs/{run_id}").json()
    elapsed = time.perf_counter() - started
    if run["status"] not in FINAL:
        raise RuntimeError(f"the log stream ended but run {run_id} is {run['status']}")
    return elapsed, run


def server_side(run: dict[str, str]) -> float:
    """The run's own recorded duration, started_at → finished_at."""
    return (
        datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])
    ).total_seconds()


def measure(load: int, samples: int) -> dict[str, list[float]]:
    """Interleaved samples of bare, poll and follow, with `load` other tasks loaded."""
    data_dir = temp_data_dir(f"manual-{load}")
    make_tasks(data_dir / "tasks", load)
    write_task(data_dir / "tasks", TASK, "description: says hi\n", 'print("hi")\n')
    folder = data_dir / "tasks" / TASK
    times: dict[str, list[float]] = {"bare": [], "poll": [], "follow": [], "recorded": []}
    with Server(data_dir) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        server.start()
        server.wait_ready(load + 1, timeout=120)
        time.sleep(2.0)  # let start-up work in the background settle
        for _ in range(3):  # warm up both paths (first requests, imports, caches)
            by_polling(client)
            by_following(client)
        for _ in range(samples):
            times["bare"].append(bare(folder))
            for way, method in (("poll", by_polling), ("follow", by_following)):
                elapsed, run = method(client)
                assert run["status"] == "succeeded", run
                times[way].append(elapsed)
                times["recorded"].append(server_side(run))
    shutil.rmtree(data_dir.parent, ignore_errors=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--loads", default="0,10000", help="comma-separated extra task counts")
    args = parser.parse_args()

    print(machine_note())
    verdicts = []
    for load in (int(text) for text in args.loads.split(",")):
        print(f"\n{load} other tasks loaded (ms)", flush=True)
        times = measure(load, args.samples)
        base = statistics.median(times["bare"])
        rows = [
            summary_row("bare python task.py (baseline)", times["bare"]),
            summary_row("POST → final, polling GET /runs/{id}", times["poll"]),
            summary_row("POST → final, following the log", times["follow"]),
            summary_row("run's started_at → finished_at", times["recorded"]),
        ]
        print_table(SUMMARY_HEADERS, rows)
        for way in ("poll", "follow"):
            ratio = statistics.median(times[way]) / base
            verdicts.append(
                [
                    f"{load} tasks loaded, {way}: median ≤ {TARGET_RATIO} x bare",
                    f"{ratio:.2f} x",
                    verdict(ratio <= TARGET_RATIO),
                ]
            )
    print()
    print_table(["target", "measured", "verdict"], verdicts)


if __name__ == "__main__":
    main()
