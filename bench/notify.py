"""Notifications under a burst: 1,000 failures at once, each told to a loopback webhook.

    .venv/bin/python bench/notify.py --burst 1000 --probes 20 --rounds 3

Each round starts `tasse serve` with `--burst` tasks that fail at the same instant
(a `date` trigger; seeded tasks that run a task which does not exist, so each fire fails
at once without a process: the burst costs its records and messages, not 1,000 spawns
competing with the probes for the 2 cores) and `--probes`
tasks that fire every second and print time.time() (bench/lag.py's probe). The rounds
alternate: with a signed webhook target served by this process (every failure becomes a
notification: 1,000 tasks, so the rate limit holds none back), and without any target —
the baseline, the same burst of failures but nothing to deliver. Measured:

- delivered: from the burst's instant to the last of its messages received (target ≤ 10 s);
- the probes' schedule lag p99 from 1 s before the burst to 10 s after it, with
  notifications minus without (target within ± 5 ms), the median of the rounds' differences.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness import (
    discard,
    free_port,
    machine_note,
    ms,
    new_parser,
    percentile,
    print_table,
    print_targets,
    serve,
    temp_data_dir,
    verdict,
    write_task,
)
from lag import SCRIPT, parse_lags

DELIVERED_WITHIN = 10.0
LAG_TOLERANCE = 0.005
#: seconds from the server's spawn to the burst: it must be up and settled by then
LEAD = 20.0
#: seconds of lag measured after the burst
AFTER = 10.0


class Receiver:
    """A webhook on loopback that counts messages and notes when the last one came."""

    def __init__(self) -> None:
        self.port = free_port()
        self.count = 0
        self.last_at = float("nan")
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.count += 1
                    receiver.last_at = time.time()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def target(self) -> str:
        return f"webhook+http://127.0.0.1:{self.port}/hook?secret=bench"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def make_round(data_dir: Path, burst: int, probes: int, at: float) -> None:
    """The probes (every second) and the burst tasks (failing once, at `at`)."""
    start = datetime.fromtimestamp(int(time.time()) - 60, UTC).isoformat()
    for index in range(probes):
        schedule = f"scheduler:\n  trigger: interval\n  seconds: 1\n  start_date: '{start}'\n"
        write_task(data_dir / "tasks", f"probe-{index:02d}", schedule, SCRIPT)
    when = datetime.fromtimestamp(at, UTC).isoformat()
    # Each runs a task that does not exist: its fire fails at once, with no process to
    # start, so the burst measures the failures' records and messages, not 1,000 spawns.
    trigger = {"trigger": "date", "run_date": when}
    seed = [{"name": f"fail-{i:04d}", "task": "gone", "scheduler": trigger} for i in range(burst)]
    (data_dir.parent / "seed.json").write_text(json.dumps(seed))


def one_round(burst: int, probes: int, receiver: Receiver | None) -> tuple[list[float], float]:
    """The probes' lags around the burst, and (with a receiver) seconds to the last message."""
    data_dir = temp_data_dir("notify")
    at = time.time() + LEAD
    make_round(data_dir, burst, probes, at)
    extra = ("--pre-seed-jobs", str(data_dir.parent / "seed.json"))
    extra += ("--notify", receiver.target) if receiver else ()
    before = receiver.count if receiver else 0
    with serve(data_dir, burst + probes, *extra, timeout=LEAD):
        time.sleep(max(0.0, at + AFTER - time.time()))
        if receiver:  # wait (beyond the lag window) for the rest, to say how long it took
            deadline = at + 60
            while receiver.count - before < burst and time.time() < deadline:
                time.sleep(0.05)
    lags = []
    for log in (data_dir / "logs").glob("probe-*/runs/*.log"):
        lags += [lag for lag in parse_lags(log.read_text(), at - 1) if lag < 3600]
    discard(data_dir)
    if receiver is None:
        return lags, float("nan")
    took = receiver.last_at - at if receiver.count - before >= burst else float("inf")
    return lags, took


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(machine_note())
    receiver = Receiver()
    rows, differences, delivered = [], [], []
    try:
        for number in range(1, args.rounds + 1):
            base, _ = one_round(args.burst, args.probes, None)
            told, took = one_round(args.burst, args.probes, receiver)
            difference = percentile(told, 99) - percentile(base, 99)
            differences.append(difference)
            delivered.append(took)
            rows.append(
                [
                    number,
                    f"{took:.2f} s",
                    f"{ms(percentile(base, 99))} ({len(base)})",
                    f"{ms(percentile(told, 99))} ({len(told)})",
                    f"{difference * 1000:+.1f}",
                ]
            )
            print(f"  round {number}: {machine_note().split(', ', 2)[2]}", flush=True)
    finally:
        receiver.close()
    print(f"\n{args.burst} failures at once, {args.probes} probes every second")
    print_table(
        ["round", "all delivered", "lag p99 ms, baseline (n)", "with notify (n)", "Δ ms"], rows
    )
    slowest = max(delivered)
    median_difference = statistics.median(differences)
    print_targets(
        [
            [
                f"{args.burst} notifications delivered ≤ {DELIVERED_WITHIN:g} s",
                f"slowest round {slowest:.2f} s",
                verdict(slowest <= DELIVERED_WITHIN),
            ],
            [
                "schedule lag p99 unchanged (± 5 ms), median of rounds",
                f"{median_difference * 1000:+.1f} ms",
                verdict(abs(median_difference) <= LAG_TOLERANCE),
            ],
        ]
    )


if __name__ == "__main__":
    main()
