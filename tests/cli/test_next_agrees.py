"""`next_run_at`, `GET /tasks/{name}/next` and `tasse next` list the same times.

An interval counts from when the server scheduled its task; `tasse next` beside a running
server asks it, rather than counting from its own start.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from tests.conftest import StartServer

INTERVAL = "scheduler: {trigger: interval, seconds: 7}\n"


def _tasse_next(data: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasse", "next", "--data-dir", str(data), *flags],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "TASSE_HTTP_LISTEN_ADDRESS"},
    )


def test_an_interval_task_lists_the_same_times_everywhere(
    start_server: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    folder = data / "tasks" / "every7"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(INTERVAL)
    (folder / "task.py").write_text("print('tick')\n")
    server = start_server()
    time.sleep(1.2)  # a listing that counted from its own start would be a second off

    next_run_at = datetime.fromisoformat(server.http.get("/tasks/every7").json()["next_run_at"])
    listed = [
        datetime.fromisoformat(t) for t in server.http.get("/tasks/every7/next?count=3").json()
    ]
    address = f"--http-listen-address=127.0.0.1:{server.port}"
    printed = _tasse_next(data, "every7", "--count", "3", address)

    assert printed.returncode == 0, printed.stderr
    cli = [datetime.fromisoformat(line) for line in printed.stdout.split()]
    assert listed[0] == next_run_at
    assert cli == listed
    assert {b - a for a, b in itertools.pairwise(listed)} == {listed[1] - listed[0]}


def test_without_a_server_tasse_next_computes_the_times_itself(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = data / "tasks" / "every7"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(INTERVAL)
    (folder / "task.py").write_text("print('tick')\n")
    before = time.time()

    printed = _tasse_next(data, "every7", "--count", "2")

    assert printed.returncode == 0, printed.stderr
    first, second = (datetime.fromisoformat(line) for line in printed.stdout.split())
    assert before + 7 <= first.timestamp() <= time.time() + 7
    assert (second - first).total_seconds() == 7
    assert printed.stderr == ""


def test_a_server_that_does_not_answer_is_said_and_times_computed_here(
    start_server: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    folder = data / "tasks" / "every7"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(INTERVAL)
    (folder / "task.py").write_text("print('tick')\n")
    server = start_server()

    printed = _tasse_next(data, "every7", f"--http-listen-address=127.0.0.1:{server.port + 1}")

    assert printed.returncode == 0
    assert "does not answer" in printed.stderr
    assert "computed here" in printed.stderr
    assert len(printed.stdout.split()) == 5
