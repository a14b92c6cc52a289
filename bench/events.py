"""Live streams: a printed line's way to an open run page, and what open streams cost the schedule.

    .venv/bin/python bench/events.py                  # ~5 min
    .venv/bin/python bench/events.py --rounds 2 --duration 10

(a) *Line latency*: a task sleeps 1 s, then prints `time.time()` 200 times, 20 ms apart
(flush=True); one client follows `GET /runs/{id}/log/events`; latency = the client's
`time.time()` when the `data:` line arrives - the printed time. Target: p95 ≤ 100 ms.

(b) *Schedule lag with streams open*: bench/lag.py's 40 tasks staggered 25 ms over each
second (its script and measure: the task's first `time.time()` - TASSE_SCHEDULED_AT), and
20 runs of a `chatty` task printing a timestamped line every 100 ms. Each round starts two
fresh servers in turn (the order swapped every round): *baseline*, nothing following, and
*streams*, with 100 `GET /events` and 20 `GET /runs/{id}/log/events` (one per chatty run)
open from before the first counted fire (`--event-streams`, `--log-streams` change the
numbers). The clients are raw asyncio sockets in a thread of this process (they read and
count, nothing more; their CPU is printed). 2 s of warm-up are left out. Also shown: the
recorded `started_at` - `scheduled_at`, the loop's share of the lag, where streams would
show first. Target: the median over rounds of p99(streams) - p99(baseline) ≤ 5 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import (
    cpu_seconds,
    discard,
    machine_note,
    ms,
    new_parser,
    percentile,
    print_summaries,
    print_targets,
    serve,
    start_run,
    temp_data_dir,
    verdict,
    wait_run,
    write_task,
)
from lag import SCRIPT, WARM_UP, parse_lags

LINES_SCRIPT = """import time
time.sleep(1)
for _ in range(200):
    print(time.time(), flush=True)
    time.sleep(0.02)
"""
CHATTY_SCRIPT = """import time
for _ in range({count}):
    print(time.time(), flush=True)
    time.sleep(0.1)
"""
CHATTY_YAML = "overlap: parallel\nmax_parallel: 20\n"
LATENCY_TARGET, LAG_TARGET = 0.100, 0.005


class Streams:
    """SSE clients on raw sockets, on an asyncio loop in a thread of their own."""

    def __init__(self, port: int):
        self.port = port
        self.events = 0  # `event: run` frames seen on /events
        self.latencies: list[float] = []  # of timestamped log lines
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._tasks: list[Any] = []

    def open_events(self, path: str) -> None:
        """Open an event stream; its `run` events are counted, nothing more (cheap)."""
        coroutine = self._count(path)
        self._tasks.append(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    def open_log(self, path: str) -> None:
        """Open a live log; the latency of each timestamped line is kept."""
        coroutine = self._follow(path, self.time_line)
        self._tasks.append(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def _count(self, path: str) -> None:
        reader, writer = await self._get(path)
        while chunk := await reader.read(65536):
            self.events += chunk.count(b"event: run")  # (a frame split by a read: rare)
        writer.close()

    async def _get(self, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        return reader, writer

    def time_line(self, line: bytes) -> None:
        if line.startswith(b"data: "):
            # (not the `end` event's JSON, nor the empty last line of a piece)
            with contextlib.suppress(ValueError):
                self.latencies.append(time.time() - float(line[6:]))

    async def _follow(self, path: str, on_line: Callable[[bytes], None]) -> None:
        reader, writer = await self._get(path)
        rest = b""
        while chunk := await reader.read(65536):
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                on_line(line)
        writer.close()

    def close(self) -> None:
        """Close every stream and stop the thread."""
        asyncio.run_coroutine_threadsafe(self._cancel_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @staticmethod
    async def _cancel_all() -> None:
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def line_latency() -> list[float]:
    """(a): 200 lines of one run, printed → arrived at a live log client."""
    data_dir = temp_data_dir("events-lines")
    write_task(data_dir / "tasks", "lines", "", LINES_SCRIPT)
    with serve(data_dir, 1) as server, server.client() as client:
        streams = Streams(server.port)
        run_id = start_run(client, "lines")
        streams.open_log(f"/runs/{run_id}/log/events")
        wait_run(client, run_id, poll=0.1)
        time.sleep(0.2)
        streams.close()
    discard(data_dir)
    return streams.latencies


def lag_round(offsets: list[float], duration: float, opened: tuple[int, int]) -> dict[str, Any]:
    """(b): one server, the 40 tasks and 20 chatty runs; with (events, logs) streams open."""
    data_dir = temp_data_dir("events-lag")
    start = int(time.time()) - 60
    names = [f"lag-{index:02d}" for index in range(len(offsets))]
    for name, offset in zip(names, offsets, strict=True):
        start_date = datetime.fromtimestamp(start + offset, UTC).isoformat()
        yaml = f"scheduler:\n  trigger: interval\n  seconds: 1\n  start_date: '{start_date}'\n"
        write_task(data_dir / "tasks", name, yaml, SCRIPT)
    chatty = CHATTY_SCRIPT.format(count=int((duration + WARM_UP + 5) * 10))
    write_task(data_dir / "tasks", "chatty", CHATTY_YAML, chatty)
    with serve(data_dir, len(names) + 1) as server, server.client() as client:
        streams = Streams(server.port)
        chatty_runs = [start_run(client, "chatty") for _ in range(20)]
        for _ in range(opened[0]):
            streams.open_events("/events")
        for run_id in chatty_runs[: opened[1]]:
            streams.open_log(f"/runs/{run_id}/log/events")
        since, cpu = time.time() + WARM_UP, cpu_seconds(server.pid)
        mine = cpu_seconds(os.getpid())
        time.sleep(WARM_UP + duration)
        cpu, mine = cpu_seconds(server.pid) - cpu, cpu_seconds(os.getpid()) - mine
        runs = {}
        for name in names:
            answer = client.get(f"/tasks/{name}/runs", params={"limit": 1000})
            runs.update({run["id"]: run for run in answer.json()})
        streams.close()
    lags, dispatch = lags_of(data_dir, runs, since)
    discard(data_dir)
    return {
        "lag": lags,
        "due → started_at": dispatch,
        "cpu": cpu / (WARM_UP + duration),
        "client cpu": mine / (WARM_UP + duration),
        "events": streams.events,
        "log lines": streams.latencies,
    }


def lags_of(data_dir: Path, runs: dict[str, Any], since: float) -> tuple[list[float], list[float]]:
    """Each counted fire's lag (task clock) and its loop's share (due → started_at)."""
    lags, dispatch = [], []
    for log in (data_dir / "logs").glob("lag-*/runs/*.log"):
        run = runs.get(log.stem)
        for lag in parse_lags(log.read_text(), since) if run else []:
            lags.append(lag)
            dispatch.append(_at(run["started_at"]) - _at(run["scheduled_at"]))
    return lags, dispatch


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def main() -> None:
    parser = new_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--stagger-ms", type=float, default=25)
    parser.add_argument("--rounds", type=int, default=4, help="even: balanced order")
    parser.add_argument("--duration", type=float, default=15, help="counted s per server")
    parser.add_argument("--event-streams", type=int, default=100)
    parser.add_argument("--log-streams", type=int, default=20, help="at most 20")
    args = parser.parse_args()
    print(machine_note())

    latencies = line_latency()
    print(f"  line latency: {len(latencies)} lines", flush=True)

    offsets = [i * args.stagger_ms / 1000 for i in range(args.tasks)]
    pooled: dict[str, list[float]] = {"baseline": [], "streams": []}
    per_round: dict[str, list[float]] = {"baseline": [], "streams": []}
    dispatch: dict[str, list[float]] = {"baseline": [], "streams": []}
    loaded_lines: list[float] = []
    for number in range(args.rounds):
        order = ["baseline", "streams"] if number % 2 == 0 else ["streams", "baseline"]
        for mode in order:
            opened = (args.event_streams, args.log_streams) if mode == "streams" else (0, 0)
            result = lag_round(offsets, args.duration, opened)
            pooled[mode] += result["lag"]
            dispatch[mode] += result["due → started_at"]
            per_round[mode].append(percentile(result["lag"], 99))
            loaded_lines += result["log lines"]
            print(
                f"  round {number + 1} {mode}: lag p50 {ms(percentile(result['lag'], 50))}"
                f" p99 {ms(per_round[mode][-1])} ms ({len(result['lag'])} fires),"
                f" due → started_at p99 {ms(percentile(result['due → started_at'], 99))} ms,"
                f" CPU: server {result['cpu']:.0%}, clients {result['client cpu']:.0%};"
                f" {result['events']} run events and"
                f" {len(result['log lines'])} log lines received;"
                f" {machine_note().split(', ', 2)[2]}",
                flush=True,
            )
    report(latencies, loaded_lines, pooled, per_round, dispatch)


def report(
    latencies: list[float],
    loaded_lines: list[float],
    pooled: dict[str, list[float]],
    per_round: dict[str, list[float]],
    dispatch: dict[str, list[float]],
) -> None:
    print("\nline latency, printed → at the client (ms)")
    samples = {"(a) 1 run page, idle server": latencies}
    if loaded_lines:
        samples["(b) 20 run pages, under the lag load"] = loaded_lines
    print_summaries(samples)
    print("\nschedule lag (ms)")
    rows = {f"{mode}: lag, all rounds pooled": lags for mode, lags in pooled.items()}
    rows |= {f"{mode}: due → started_at (the loop's share)": d for mode, d in dispatch.items()}
    print_summaries(rows)
    rounds = [s - b for s, b in zip(per_round["streams"], per_round["baseline"], strict=True)]
    print(
        "\nper round p99, streams - baseline (ms): "
        + ", ".join(
            f"{ms(s)} - {ms(b)} = {ms(s - b)}"
            for s, b in zip(per_round["streams"], per_round["baseline"], strict=True)
        )
    )
    p95 = percentile(latencies, 95)
    rise = statistics.median(rounds)
    print_targets(
        [
            ["(a) line → run page p95 ≤ 100 ms", f"{ms(p95)} ms", verdict(p95 <= LATENCY_TARGET)],
            [
                "(b) lag p99 rise with 100 + 20 streams ≤ 5 ms (median of rounds)",
                f"{ms(rise)} ms (pooled: {ms(percentile(pooled['streams'], 99))} against "
                f"{ms(percentile(pooled['baseline'], 99))})",
                verdict(rise <= LAG_TARGET),
            ],
        ]
    )


if __name__ == "__main__":
    main()
