"""The dashboard's pages, server-rendered, with 10,000 tasks and 100,000 runs in history.

    .venv/bin/python bench/dashboard.py --tasks 10000 --runs 100000 --rounds 30

Targets: the overview's first page ≤ 50 ms of server time, a task page ≤ 50 ms, the
timeline of 24 h ≤ 200 ms. The history is bench/listing.py's (folders t00000…, the first
page's 50 tasks with 1,000 runs each, the rest spread over past days). Each figure is the
round trip of one GET with a browser's Accept header on a kept-alive loopback
connection, the whole HTML read: an upper bound of the server's time. `GET /health` (which
computes nothing) is the floor. The task page is t00000's: 1,000 runs, so its duration
chart and its 90-day calendar are full.

The live parts (100 open event streams, 20 live logs, and a printed line's way to a run
page) are bench/events.py's.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
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

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
TARGETS_MS = {
    "GET / (overview, first page)": 50.0,
    "GET /tasks/t00000 (task page)": 50.0,
    "GET /timeline?hours=24": 200.0,
}


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30, help="requests per page")
    args = parser.parse_args()
    print(machine_note())
    print(where(Path(tasse.__file__).parent))
    data_dir = temp_data_dir("dashboard")
    try:
        make_folders(data_dir / "tasks", args.tasks)
        runs = history(args.tasks, args.runs, datetime.now(UTC))
        seconds = fill_store(f"sqlite:///{data_dir / 'tasse.db'}", runs)
        print(f"{args.tasks} tasks, {len(runs)} runs written in {seconds:.1f} s")
        paths = {
            "GET /health (floor)": "/health",
            "GET / (overview, first page)": "/",
            "GET /?page=100": "/?page=100",
            "GET /?q=nightly+job+12 (search)": "/?q=nightly+job+12",
            "GET /?status=failed&sort=last": "/?status=failed&sort=last",
            "GET /tasks/t00000 (task page)": "/tasks/t00000",
            "GET /runs/<id> (run page)": "",
            "GET /timeline?hours=24": "/timeline?hours=24",
            "GET /problems": "/problems",
        }
        samples: dict[str, list[float]] = {}
        with serve(data_dir, args.tasks, timeout=180) as server:
            print(f"idle after {wait_idle(server.pid):.1f} s")
            with httpx.Client(base_url=server.url, headers=BROWSER, timeout=60) as client:
                run_id = client.get("/tasks/t00000/runs?limit=1", headers={"Accept": "*/*"})
                paths["GET /runs/<id> (run page)"] = f"/runs/{run_id.json()[0]['id']}"
                for label, path in paths.items():
                    for _ in range(3):  # warm-up
                        timed_get(client, path)
                    samples[label] = [timed_get(client, path)[0] for _ in range(args.rounds)]
                size = len(timed_get(client, "/timeline?hours=24")[1].content)
        print(f"timeline of 24 h: {size / 1024:.0f} KiB of HTML")
        print()
        print_summaries(samples, corner="ms")
        rows = []
        for label, target in TARGETS_MS.items():
            median = statistics.median(samples[label]) * 1000
            rows.append([f"{label} ≤ {target:g} ms", f"{median:.1f} ms", verdict(median <= target)])
        print_targets(rows)
    finally:
        discard(data_dir)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
