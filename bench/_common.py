"""Shared helpers for the benchmarks: task folders, a real `tasse serve`, percentiles, tables.

Every benchmark starts the real server as a subprocess on a free port with a fresh data
folder (so a fresh SQLite store), and talks to it over HTTP, the way a user would.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

#: the `tasse` console script next to this interpreter (the venv Tasse is installed in)
TASSE = Path(sys.executable).with_name("tasse")


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
    tasks_dir: Path, name: str, yaml_text: str, script: str, *, atomic: bool = False
) -> None:
    """Create one task folder, either in place (mkdir + write) or built hidden, then renamed."""
    target = tasks_dir / name
    folder = tasks_dir / f".tmp-{name}" if atomic else target
    folder.mkdir()
    (folder / "task.yaml").write_text(yaml_text)
    (folder / "task.py").write_text(script)
    if atomic:
        folder.rename(target)


def make_tasks(tasks_dir: Path, count: int, prefix: str = "t") -> float:
    """Create `count` task folders `<prefix>00000…`; return the seconds it took."""
    started = time.perf_counter()
    tasks_dir.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        write_task(tasks_dir, f"{prefix}{index:05d}", fixture_yaml(index), f"print({index})\n")
    # Write the fixture out now, so measurements don't compete with the kernel flushing it.
    os.sync()
    return time.perf_counter() - started


def fresh_state(data_dir: Path) -> None:
    """Forget history and logs (a fresh store) but keep the task folders."""
    shutil.rmtree(data_dir / "logs", ignore_errors=True)
    for path in data_dir.glob("tasse.db*"):
        path.unlink()


def temp_data_dir(label: str) -> Path:
    """A new data folder with an empty tasks/ inside, under the system temp folder."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"tasse-bench-{label}-")) / "data"
    (data_dir / "tasks").mkdir(parents=True)
    return data_dir


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

    def start(self) -> float:
        """Start the server; return the perf_counter time just before it was spawned."""
        argv = [str(TASSE), "serve", "--data-dir", str(self.data_dir)]
        argv += ["--http-listen-address", f"127.0.0.1:{self.port}", *self.extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASSE_")}
        with self.log_path.open("ab") as log:
            started = time.perf_counter()
            # cwd: the data dir's parent, so no stray `.env` file changes the settings
            self.process = subprocess.Popen(
                argv, cwd=self.data_dir.parent, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        return started

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
                    ready = time.perf_counter()
                    self.health = answer.json()
                    return ready
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

    def log_count(self, text: str) -> int:
        """How many lines of the server's output contain `text`."""
        with self.log_path.open(errors="replace") as log:
            return sum(text in line for line in log)


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


#: what watchdog logs when the kernel's inotify queue overflowed (events were lost)
OVERFLOW = "Inotify queue overflowed; reconciling"


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


def machine_note() -> str:
    """One line about where the numbers come from."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load}, {time.strftime('%Y-%m-%d %H:%M')}"
    )


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"
