"""The benchmarks' harness: task folders, a real `tasse serve`, runs over its API, numbers, tables.

Every benchmark starts the real server as a subprocess on a free port with a fresh data
folder (so a fresh SQLite store), and talks to it over HTTP, the way a user would. This
module imports nothing of Tasse: a benchmark that measures Tasse's internals imports them
itself, so that only the benchmarks follow when a module of Tasse moves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

#: the `tasse` console script next to this interpreter (the venv Tasse is installed in)
TASSE = Path(sys.executable).with_name("tasse")
#: the repository (bench/..)
ROOT = Path(__file__).resolve().parent.parent
#: the statuses a run ends in (the order is the order burst.py lists them in)
FINAL = ("succeeded", "failed", "timed_out", "cancelled", "interrupted", "skipped", "missed")
#: what watchdog logs when the kernel's inotify queue overflowed (events were lost)
OVERFLOW = "Inotify queue overflowed; reconciling"


def new_parser(doc: str | None) -> argparse.ArgumentParser:
    """The benchmark's argument parser, described by its docstring's first line."""
    return argparse.ArgumentParser(description=(doc or "").splitlines()[0])


# -- task folders ---------------------------------------------------------------------------


def fixture_yaml(index: int) -> str:
    """A small task.yaml: interval or cron, as `scheduler:` or `schedules:`, all different.

    None fires during a benchmark (intervals of an hour or more, crons on the 1st of
    January); schedules differ from task to task, so no cache of equal ones flatters Tasse.
    (Crontab strings like "5 4 1 1 *" are not supported yet, so only the mapping forms.)
    """
    kind = index % 4
    hour, minute = (index // 60) % 24, index % 60
    if kind in (0, 1):
        return f"scheduler:\n  trigger: interval\n  minutes: {60 + index}\n"
    if kind == 2:
        cron = f"{{trigger: cron, month: 1, day: 1, hour: {hour}, minute: {minute}}}"
        return f"schedules:\n  - {cron}\n"
    cron = f"trigger: cron\n  month: 1\n  day: 1\n  hour: {hour}\n  minute: {minute}\n"
    return f"scheduler:\n  {cron}"


def write_task(
    tasks_dir: Path,
    name: str,
    yaml_text: str,
    script: str,
    *,
    requirements: str | None = None,
    atomic: bool = False,
) -> Path:
    """Create a task folder (task.yaml, task.py, maybe requirements.txt); return its path.

    `atomic`: built as a hidden `.tmp-<name>` beside it, then renamed into place.
    """
    target = tasks_dir / name
    folder = tasks_dir / f".tmp-{name}" if atomic else target
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(yaml_text)
    (folder / "task.py").write_text(script)
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    if atomic:
        folder.rename(target)
    return target


def make_tasks(tasks_dir: Path, count: int, prefix: str = "t") -> float:
    """Create `count` task folders `<prefix>00000…`; return the seconds it took."""
    started = time.perf_counter()
    tasks_dir.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        write_task(tasks_dir, f"{prefix}{index:05d}", fixture_yaml(index), f"print({index})\n")
    # Write the fixture out now, so measurements don't compete with the kernel flushing it.
    os.sync()
    return time.perf_counter() - started


def temp_data_dir(label: str) -> Path:
    """A new data folder with an empty tasks/ inside, under the system temp folder."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"tasse-bench-{label}-")) / "data"
    (data_dir / "tasks").mkdir(parents=True)
    return data_dir


def discard(data_dir: Path) -> None:
    """Remove what `temp_data_dir` made (the data folder and the server log beside it)."""
    shutil.rmtree(data_dir.parent, ignore_errors=True)


# -- the server -----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`tasse serve` as a subprocess; its output goes to `<data_dir>/../server.log`."""

    def __init__(self, data_dir: Path, *extra: str):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / "server.log"
        #: the GET /health answer that made `wait_ready` return
        self.health: dict[str, Any] = {}
        #: perf_counter times: just before the spawn, and when /health first said ready
        self.started_at = self.ready_at = float("nan")

    def start(self) -> float:
        """Start the server; return the perf_counter time just before it was spawned."""
        argv = [str(TASSE), "serve", "--data-dir", str(self.data_dir)]
        argv += ["--http-listen-address", f"127.0.0.1:{self.port}", *self.extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASSE_")}
        with self.log_path.open("ab") as log:
            self.started_at = time.perf_counter()
            # cwd: the data dir's parent, so no stray `.env` file changes the settings
            self.process = subprocess.Popen(
                argv, cwd=self.data_dir.parent, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        return self.started_at

    def wait_ready(self, tasks: int, timeout: float = 60.0, poll: float = 0.005) -> float:
        """Poll GET /health until it reports `tasks` tasks; return the perf_counter time."""
        deadline = time.perf_counter() + timeout
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.perf_counter() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early, see {self.log_path}")
                try:
                    answer = client.get("/health")
                except httpx.TransportError:
                    time.sleep(poll)
                    continue
                if answer.status_code == 200 and answer.json()["tasks"] == tasks:
                    self.ready_at = time.perf_counter()
                    self.health = answer.json()
                    return self.ready_at
                time.sleep(poll)
        raise TimeoutError(f"server not ready with {tasks} tasks after {timeout} s")

    def stop(self) -> None:
        """SIGTERM (a graceful stop), SIGKILL if it takes more than 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client of this server (one persistent connection)."""
        return httpx.Client(base_url=self.url, timeout=timeout)

    def log_count(self, text: str) -> int:
        """How many lines of the server's output contain `text`."""
        with self.log_path.open(errors="replace") as log:
            return sum(text in line for line in log)


@contextlib.contextmanager
def serve(data_dir: Path, tasks: int, *extra: str, timeout: float = 60.0) -> Iterator[Server]:
    """A started server, ready with `tasks` tasks; stopped at the end of the block."""
    with Server(data_dir, *extra) as server:
        server.start()
        server.wait_ready(tasks, timeout=timeout)
        yield server


def proc_stats(pid: int) -> dict[str, int]:
    """Peak and current RSS (KiB), threads and open file descriptors of a process."""
    stats: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "Threads"):
            stats[key] = int(value.split()[0])
    stats["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return stats


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- tasks and runs through the API ---------------------------------------------------------


def timed_get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    """Seconds for one GET (sent, answered, body read), and the answer, which must be 200."""
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:200]}")
    return elapsed, answer


def task_env(client: httpx.Client, name: str) -> dict[str, Any] | None:
    """GET /tasks/<name>'s `env`, or None while the task is unknown."""
    answer = client.get(f"/tasks/{name}")
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    env: dict[str, Any] = answer.json()["env"]
    return env


def wait_env(
    client: httpx.Client,
    name: str,
    until: Sequence[str] = ("ready",),
    timeout: float = 120,
    poll: float = 0.05,
) -> dict[str, Any]:
    """Poll the task's `env` until its status is one of `until`; that env."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        env = task_env(client, name)
        if env is not None and env["status"] in until:
            return env
        time.sleep(poll)
    raise TimeoutError(f"the environment of {name} was not {' or '.join(until)} in {timeout} s")


def env_python(env: Mapping[str, Any]) -> str:
    """The interpreter of a task's environment, from its `env` in the API."""
    return str(Path(env["path"]) / "bin" / "python")


def start_run(client: httpx.Client, name: str) -> str:
    """POST /tasks/<name>/run; the new run's id."""
    answer = client.post(f"/tasks/{name}/run")
    answer.raise_for_status()
    run_id: str = answer.json()["id"]
    return run_id


def wait_run(
    client: httpx.Client, run_id: str, poll: float = 0.001, timeout: float = 120
) -> dict[str, Any]:
    """Poll GET /runs/{id} until the run's status is final; the run."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        run: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        if run["status"] in FINAL:
            return run
        time.sleep(poll)
    raise TimeoutError(f"run {run_id} not final after {timeout} s")


def poll_run(client: httpx.Client, name: str) -> tuple[float, dict[str, Any]]:
    """Seconds from POST to a final status seen by polling GET /runs/{id} (~every ms)."""
    started = time.perf_counter()
    run = wait_run(client, start_run(client, name))
    return time.perf_counter() - started, run


def run_seconds(run: Mapping[str, Any]) -> float:
    """A run's own recorded duration, started_at → finished_at."""
    started, finished = (datetime.fromisoformat(run[k]) for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


# -- baselines: the same work without Tasse -------------------------------------------------


def timed(function: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def timings(function: Callable[[], object], count: int) -> list[float]:
    """Wall seconds of each of `count` calls."""
    return [timed(function) for _ in range(count)]


def task_environ(**extra: str) -> dict[str, str]:
    """This process's environment as Tasse passes it to a Python task (unbuffered), + extra."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def run_task_py(python: str, folder: Path) -> float:
    """Wall seconds of `python task.py` in the folder, its output captured."""
    argv = [python, "task.py"]
    return timed(lambda: subprocess.run(argv, cwd=folder, capture_output=True, check=True))


async def read_task_py(python: str, folder: Path, env: dict[str, str] | None = None) -> None:
    """Run `python task.py` and read its output to the end, as Tasse does (minus the logs)."""
    process = await asyncio.create_subprocess_exec(
        python,
        "task.py",
        cwd=folder,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    while await process.stdout.read(65536):
        pass
    if await process.wait() != 0:
        raise RuntimeError(f"{python} task.py failed")


def bare_interpreter(samples: int) -> float:
    """Median wall time of `python -c pass`."""
    argv = [sys.executable, "-c", "pass"]
    return statistics.median(timings(lambda: subprocess.run(argv, check=True), samples))


# -- numbers and tables ---------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default), `pct` in 0..100."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, min, median, p95, p99 and max of some samples."""
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def ms(seconds: float) -> str:
    """Seconds as milliseconds, for tables."""
    return f"{seconds * 1000:.1f}"


def summary_row(label: str, values: Sequence[float], fmt: Callable[[float], str] = ms) -> list[str]:
    """A table row: label, n, then min/p50/p95/p99/max formatted (milliseconds by default)."""
    stats = summary(values)
    return [label, str(len(values))] + [fmt(stats[k]) for k in ("min", "p50", "p95", "p99", "max")]


SUMMARY_HEADERS = ["", "n", "min", "p50", "p95", "p99", "max"]
TARGET_HEADERS = ["target", "measured", "verdict"]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain, aligned text table (also valid Markdown)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for number, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if number == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("\n".join(lines), flush=True)


def print_summaries(
    samples: Mapping[str, Sequence[float]], fmt: Callable[[float], str] = ms, corner: str = ""
) -> None:
    """A table of `summary_row`s, one per label; `corner` heads the label column."""
    rows = [summary_row(label, values, fmt) for label, values in samples.items()]
    print_table([corner, *SUMMARY_HEADERS[1:]], rows)


def print_targets(rows: Sequence[Sequence[Any]], headers: Sequence[str] = TARGET_HEADERS) -> None:
    """After an empty line, the table of targets: what was measured, PASS or MISS."""
    print()
    print_table(headers, rows)


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


def machine_note() -> str:
    """One line about where the numbers come from."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load}, {time.strftime('%Y-%m-%d %H:%M')}"
    )


def git(*args: str) -> str:
    """What `git ARGS` prints in the repository, stripped."""
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


def where(package: Path) -> str:
    """Which Tasse is measured: the commit, and the folder its code is imported from."""
    changed = len(git("status", "--short", "tasse").splitlines())
    return (
        f"commit {git('rev-parse', '--short', 'HEAD')} ({changed} uncommitted in tasse/); {package}"
    )
