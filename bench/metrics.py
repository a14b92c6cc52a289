"""GET /metrics with 10,000 tasks and 100,000 runs in history.

    .venv/bin/python bench/metrics.py --tasks 10000 --runs 100000 --rounds 50

Target: `GET /metrics` in ≤ 100 ms (median of the rounds) with 10,000 tasks, `GET /health`
(which computes nothing) measured in the same run, alternating with it, as the floor.

The fixture is the overview benchmark's (`listing.py`): task folders with schedules, none
due during the run, and the runs written into the job store before the server starts, so
every task has a next fire time and most a last success (loaded from the store at start).
Each HTTP figure is the round trip of one request on a kept-alive loopback connection,
body read.

A server just started has counted no runs yet, so its scrape lacks the families that grow
with runs (`tasse_runs_total`, `tasse_fires_*_total`, the histograms). The second part
measures, in this process, the scrape of a `Metrics` told of all 100,000 runs (each task's
every outcome, as a busy day leaves them): `take` (the copy made on the event loop) and
`render` (on a thread in the server), against the same with nothing counted; the
difference is what a busy server's scrape costs on top of the HTTP figure.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import (
    discard,
    machine_note,
    new_parser,
    print_summaries,
    print_targets,
    serve,
    temp_data_dir,
    timed_get,
    verdict,
    where,
)
from listing import fill_store, history, make_folders, wait_idle

import tasse
from tasse.metrics.metrics import Metrics, ServerState
from tasse.models import Run

TARGET_MS = 100.0


def serve_and_scrape(data_dir: Path, tasks: int, rounds: int) -> dict[str, list[float]]:
    """Seconds of each GET /health and GET /metrics, alternating, on the real server."""
    samples: dict[str, list[float]] = {"GET /health (floor)": [], "GET /metrics": []}
    started = time.perf_counter()
    with serve(data_dir, tasks, timeout=180) as server, server.client() as client:
        print(f"server ready in {time.perf_counter() - started:.1f} s")
        print(f"idle after {wait_idle(server.pid):.1f} s more")
        for _ in range(3):  # warm-up
            timed_get(client, "/health")
            timed_get(client, "/metrics")
        for _ in range(rounds):
            samples["GET /health (floor)"].append(timed_get(client, "/health")[0])
            samples["GET /metrics"].append(timed_get(client, "/metrics")[0])
        body = timed_get(client, "/metrics")[1].text
    lines = [line for line in body.splitlines() if line and not line.startswith("#")]
    per_task = sum(line.startswith("tasse_task_") for line in lines)
    print(f"/metrics: {len(body) / 1024:.0f} KiB, {len(lines)} samples ({per_task} per task)")
    return samples


def render_in_process(runs: list[Run], tasks: int, rounds: int) -> dict[str, list[float]]:
    """Seconds of `take` and `render` with every run counted, and with none."""
    now = datetime.now(UTC)
    names = [f"t{index:05d}" for index in range(tasks)]
    state = ServerState(
        tasks=frozenset(names),
        broken=0,
        running=0,
        queued=0,
        pending_records=0,
        journaled_records=0,
        next_fires={name: now + timedelta(minutes=index) for index, name in enumerate(names)},
    )
    empty, busy = Metrics(tasse.__version__), Metrics(tasse.__version__)
    for run in runs:
        busy.note_run(run)
    text = busy.take(state).render()
    samples = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    print(f"in process, every run counted: {len(text) / 1024:.0f} KiB, {samples} samples")
    found: dict[str, list[float]] = {}
    for label, metrics in (("nothing counted", empty), ("every run counted", busy)):
        takes, renders = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            scrape = metrics.take(state)
            taken = time.perf_counter()
            scrape.render()
            takes.append(taken - started)
            renders.append(time.perf_counter() - taken)
        found[f"take, {label} (on the loop)"] = takes
        found[f"render, {label} (a thread)"] = renders
    return found


def scrape_cost(median: dict[str, float], label: str) -> float:
    """Milliseconds of take and render (medians) in process, for one `label`."""
    return median[f"take, {label} (on the loop)"] + median[f"render, {label} (a thread)"]


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50, help="scrapes of each kind")
    args = parser.parse_args()
    print(machine_note())
    print(where(Path(tasse.__file__).parent))
    data_dir = temp_data_dir("metrics")
    try:
        make_folders(data_dir / "tasks", args.tasks)
        runs = history(args.tasks, args.runs, datetime.now(UTC))
        address = f"sqlite:///{data_dir / 'tasse.db'}"
        print(f"{args.tasks} tasks, {len(runs)} runs written in {fill_store(address, runs):.1f} s")
        samples = serve_and_scrape(data_dir, args.tasks, args.rounds)
        samples |= render_in_process(runs, args.tasks, args.rounds)
    finally:
        discard(data_dir)
    print(machine_note())
    print()
    print_summaries(samples, corner="ms")
    median = {label: statistics.median(values) * 1000 for label, values in samples.items()}
    scrape, floor = median["GET /metrics"], median["GET /health (floor)"]
    extra = scrape_cost(median, "every run counted") - scrape_cost(median, "nothing counted")
    print_targets(
        [
            [
                f"GET /metrics with {args.tasks} tasks ≤ {TARGET_MS:g} ms",
                f"{scrape:.1f} ms median (GET /health: {floor:.1f} ms)",
                verdict(scrape <= TARGET_MS),
            ],
            [
                "… with every run of the history counted",
                f"{scrape + extra:.1f} ms ({scrape:.1f} + {extra:.1f} in process)",
                verdict(scrape + extra <= TARGET_MS),
            ],
        ]
    )


if __name__ == "__main__":
    main()
