"""Slowloris: API latency while 200 connections send their requests a byte at a time.

    .venv/bin/python bench/slowloris.py --connections 200 --samples 300

One `tasse serve` with 50 task folders (so GET /tasks has something to list). Baseline
first, then the attack, in the same run and on the same server: `--connections` sockets
that each send `GET /health HTTP/1.1` and one header, then one more header byte every
second, never finishing; one the server closes is opened again at once, as an attacker
would, so the count stays at `--connections`. Meanwhile, every 50 ms, alternately
`GET /health` and `GET /tasks`, each both on a kept-alive connection and on a new one
(what curl or a health probe does). Measured: each probe's time (a failed one counts as
an error, not a time), how long the server kept each attacking connection, and the
server's open file descriptors. `--open-files N` runs the server with that RLIMIT_NOFILE.
Target: p99 of every probe under attack ≤ 100 ms, no failed probe, and no attacking
connection kept longer than the request timeout (TASSE_HTTP_REQUEST_TIMEOUT, 10 s) + 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
from _common import (
    SUMMARY_HEADERS,
    TASSE,
    Server,
    machine_note,
    make_tasks,
    ms,
    print_table,
    proc_stats,
    summary,
    summary_row,
    temp_data_dir,
    verdict,
)

TASKS = 50
PARTIAL = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
REQUEST_TIMEOUT = 10.0
P99_TARGET = 0.100
PROBES = [(path, way) for path in ("/health", "/tasks") for way in ("kept-alive", "new")]


class LimitedServer(Server):
    """`tasse serve` with an open-file limit of its own (0: the inherited one)."""

    def __init__(self, data_dir: Path, open_files: int):
        super().__init__(data_dir)
        self.open_files = open_files

    def start(self) -> float:
        """Start the server under the limit; the perf_counter time just before."""
        argv = [str(TASSE), "serve", "--data-dir", str(self.data_dir)]
        argv += ["--http-listen-address", f"127.0.0.1:{self.port}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASSE_")}
        limit = self.open_files

        def limited() -> None:
            if limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with self.log_path.open("ab") as log:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                argv,
                cwd=self.data_dir.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=limited,
            )
        return started


class Attack:
    """Keep `count` half-sent requests open, a byte a second, reopening closed ones."""

    def __init__(self, port: int, count: int):
        self.port = port
        self.count = count
        self.lifetimes: list[float] = []  # seconds the server kept each closed connection
        self.failed_connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Attack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _open(self) -> tuple[socket.socket, float] | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(PARTIAL)
        except OSError:
            self.failed_connects += 1
            return None
        sock.setblocking(False)
        return sock, time.monotonic()

    def _run(self) -> None:
        held: list[tuple[socket.socket, float]] = []
        rounds = 0
        while not self._stop.is_set():
            rounds += 1
            while len(held) < self.count and not self._stop.is_set():
                opened = self._open()
                if opened is None:
                    break
                held.append(opened)
            still = []
            for sock, since in held:
                if _closed(sock):
                    self.lifetimes.append(time.monotonic() - since)
                    sock.close()
                    continue
                if rounds % 4 == 0:  # a byte a second; closes are seen within 0.25 s
                    with contextlib.suppress(OSError):
                        sock.send(b"X")
                still.append((sock, since))
            held = still
            self._stop.wait(0.25)
        for sock, _ in held:
            sock.close()


def _closed(sock: socket.socket) -> bool:
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def probe(server: Server, samples: int) -> dict[tuple[str, str], list[float | None]]:
    """`samples` rounds of each probe, 50 ms apart; None for one that failed."""
    times: dict[tuple[str, str], list[float | None]] = {key: [] for key in PROBES}
    # `Connection: close` makes each request of `fresh` open a connection of its own (one
    # httpx.Client per request would time the client's own set-up, ~50 ms, instead).
    fresh = httpx.Client(base_url=server.url, timeout=10, headers={"connection": "close"})
    with httpx.Client(base_url=server.url, timeout=10) as kept, fresh:
        kept.get("/health")
        for _ in range(samples):
            for path, way in PROBES:
                started = time.perf_counter()
                try:
                    answer = (kept if way == "kept-alive" else fresh).get(path)
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                times[(path, way)].append(time.perf_counter() - started if ok else None)
            time.sleep(0.05)
    return times


def rows_of(label: str, times: dict[tuple[str, str], list[float | None]]) -> list[list[str]]:
    rows = []
    for (path, way), values in times.items():
        good = [v for v in values if v is not None]
        row = summary_row(f"{label}: GET {path}, {way}", good or [float("nan")])
        rows.append([*row, str(len(values) - len(good))])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--samples", type=int, default=300, help="rounds of the four probes")
    parser.add_argument("--open-files", type=int, default=0, help="the server's RLIMIT_NOFILE")
    args = parser.parse_args()

    print(machine_note())
    data_dir = temp_data_dir("slowloris")
    make_tasks(data_dir / "tasks", TASKS)
    with LimitedServer(data_dir, args.open_files) as server:
        server.start()
        server.wait_ready(TASKS)
        baseline = probe(server, args.samples)
        idle_fds = proc_stats(server.pid)["fds"]
        with Attack(server.port, args.connections) as attack:
            time.sleep(2)  # all of them open
            attacked_fds = proc_stats(server.pid)["fds"]
            attacked = probe(server, args.samples)
        log = server.log_path.read_text(errors="replace")
    limit = args.open_files or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(f"\nopen-file limit {limit}; {args.connections} attacking connections (ms)")
    print_table(
        [*SUMMARY_HEADERS, "failed"], rows_of("baseline", baseline) + rows_of("attack", attacked)
    )
    kept = summary(attack.lifetimes or [float("nan")])
    print(
        f"\nattacking connections closed by the server: {len(attack.lifetimes)}, kept "
        f"{kept['min']:.1f}-{kept['max']:.1f} s (median {kept['p50']:.1f}); failed connects "
        f"{attack.failed_connects}; server fds idle {idle_fds}, under attack {attacked_fds}"
    )
    print("server log lines:", len(log.splitlines()), "of which limits:", _limit_lines(log))
    print()
    print_table(["target", "measured", "verdict"], targets(attacked, attack.lifetimes))


def _limit_lines(log: str) -> int:
    marks = ("refused a connection", "closed a", "more connections", "accept")
    return sum(any(mark in line for mark in marks) for line in log.splitlines())


def targets(
    attacked: dict[tuple[str, str], list[float | None]], lifetimes: list[float]
) -> list[list[str]]:
    rows = []
    for (path, way), values in attacked.items():
        good = [v for v in values if v is not None]
        p99 = summary(good)["p99"] if good else float("inf")
        failed = len(values) - len(good)
        rows.append(
            [
                f"GET {path}, {way}: p99 ≤ {ms(P99_TARGET)} ms, none failed",
                f"{ms(p99)} ms, {failed} failed",
                verdict(p99 <= P99_TARGET and not failed),
            ]
        )
    longest = max(lifetimes, default=float("nan"))
    rows.append(
        [
            f"attacking connections kept ≤ {REQUEST_TIMEOUT + 1:g} s",
            f"{longest:.1f} s",
            verdict(longest <= REQUEST_TIMEOUT + 1),
        ]
    )
    return rows


if __name__ == "__main__":
    main()
