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

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from harness import (
    FINAL,
    discard,
    machine_note,
    make_tasks,
    new_parser,
    poll_run,
    print_summaries,
    print_targets,
    run_seconds,
    run_task_py,
    serve,
    start_run,
    temp_data_dir,
    verdict,
    write_task,
)

TARGET_RATIO = 1.3
TASK = "hello"


def follow_run(client: httpx.Client, name: str) -> tuple[float, dict[str, Any]]:
    """Seconds from POST to the end of the followed log plus a GET /runs/{id} that is final."""
    started = time.perf_counter()
    run_id = start_run(client, name)
    with client.stream("GET", f"/runs/{run_id}/log", params={"follow": "true"}) as stream:
        for _ in stream.iter_bytes():
            pass
    run: dict[str, Any] = client.get(f"/runs/{run_id}").json()
    elapsed = time.perf_counter() - started
    if run["status"] not in FINAL:
        raise RuntimeError(f"the log stream ended but run {run_id} is {run['status']}")
    return elapsed, run


#: the two ways of finding out that a run has finished
WAYS = {"poll": poll_run, "follow": follow_run}


def hello_task(tasks_dir: Path) -> Path:
    """The task this benchmark runs (envs.py runs it too); its folder."""
    return write_task(tasks_dir, TASK, "description: says hi\n", 'print("hi")\n')


def each_way(client: httpx.Client) -> dict[str, tuple[float, dict[str, Any]]]:
    """One run per way, in turn: seconds until the client knows it finished, and the run."""
    result = {}
    for way, method in WAYS.items():
        elapsed, run = method(client, TASK)
        assert run["status"] == "succeeded", run
        result[way] = (elapsed, run)
    return result


def warm_up(client: httpx.Client) -> None:
    """Three runs each way first: first requests, imports, caches."""
    for _ in range(3):
        each_way(client)


def measure(load: int, samples: int) -> dict[str, list[float]]:
    """Interleaved samples of bare, poll and follow, with `load` other tasks loaded."""
    data_dir = temp_data_dir(f"manual-{load}")
    make_tasks(data_dir / "tasks", load)
    folder = hello_task(data_dir / "tasks")
    times: dict[str, list[float]] = {"bare": [], "poll": [], "follow": [], "recorded": []}
    with serve(data_dir, load + 1, timeout=120) as server, server.client() as client:
        time.sleep(2.0)  # let start-up work in the background settle
        warm_up(client)
        for _ in range(samples):
            times["bare"].append(run_task_py(sys.executable, folder))
            for way, (elapsed, run) in each_way(client).items():
                times[way].append(elapsed)
                times["recorded"].append(run_seconds(run))
    discard(data_dir)
    return times


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--loads", default="0,10000", help="comma-separated extra task counts")
    args = parser.parse_args()

    print(machine_note())
    verdicts = []
    for load in (int(text) for text in args.loads.split(",")):
        print(f"\n{load} other tasks loaded (ms)", flush=True)
        times = measure(load, args.samples)
        base = statistics.median(times["bare"])
        print_summaries(
            {
                "bare python task.py (baseline)": times["bare"],
                "POST → final, polling GET /runs/{id}": times["poll"],
                "POST → final, following the log": times["follow"],
                "run's started_at → finished_at": times["recorded"],
            }
        )
        for way in WAYS:
            ratio = statistics.median(times[way]) / base
            verdicts.append(
                [
                    f"{load} tasks loaded, {way}: median ≤ {TARGET_RATIO} x bare",
                    f"{ratio:.2f} x",
                    verdict(ratio <= TARGET_RATIO),
                ]
            )
    print_targets(verdicts)


if __name__ == "__main__":
    main()
