"""`tasse pause` and `tasse resume` as a user types them: through a running server's API, or
into the store when no server runs on the data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.http.test_api import Server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

EVERY_SECOND = "scheduler: {trigger: interval, seconds: 1}\n"


def tasse(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasse", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **env},
    )


def shown(task: dict[str, Any]) -> str:
    """The task's `paused_at` as the command prints it."""
    return datetime.fromisoformat(task["paused_at"]).isoformat(timespec="seconds")


def test_pause_and_resume_go_through_the_running_server(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", {"TASSE_API_TOKEN": "s3cret"})
    server.task("job", EVERY_SECOND)
    server.start()
    address = ["--http-listen-address", f"127.0.0.1:{server.port}"]
    token = {"TASSE_API_TOKEN": "s3cret"}
    try:
        paused = tasse(server.data_dir, "pause", "job", "--reason", "new disk", *address, **token)
        assert paused.returncode == 0, paused.stderr
        task = server.http.get("/tasks/job").json()
        assert (task["paused"], task["paused_reason"]) == (True, "new disk")
        assert paused.stdout == f"task 'job' paused since {shown(task)}: new disk\n"

        refused = tasse(server.data_dir, "resume", "job", *address)  # no token
        assert refused.returncode == 1
        assert "Bearer" in refused.stderr
        assert "TASSE_API_TOKEN" in refused.stderr
        unknown = tasse(server.data_dir, "pause", "ghost", *address, **token)
        assert unknown.returncode == 1
        assert "'ghost'" in unknown.stderr
        assert "404" in unknown.stderr

        resumed = tasse(server.data_dir, "resume", "job", *address, **token)
        assert (resumed.returncode, resumed.stdout) == (0, "task 'job' resumed\n")
        assert server.http.get("/tasks/job").json()["paused"] is False
    finally:
        code, output = server.stop()
        server.http.close()
    assert code == 0, output


def test_a_server_that_does_not_answer_is_named(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.task("job", None)
    server.start()
    try:
        wrong = tasse(server.data_dir, "pause", "job", "--http-listen-address", "127.0.0.1:1")
        assert wrong.returncode == 1
        assert "does not answer at http://127.0.0.1:1" in wrong.stderr
        assert "--http-listen-address" in wrong.stderr
    finally:
        server.stop()
        server.http.close()


def test_with_no_server_the_pause_goes_to_the_store_for_the_next_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data)
    server.task("job", EVERY_SECOND)
    paused = tasse(data, "pause", "job")
    assert paused.returncode == 0, paused.stderr
    assert "no server runs" in paused.stderr
    assert paused.stdout.startswith("task 'job' paused since 20")
    again = tasse(data, "pause", "job", "--reason", "ignored: it is paused already")
    assert again.stdout == paused.stdout  # the first pause stands
    for name, problem in (("ghost", "'ghost'"), ("../etc", "is not a task name")):
        refused = tasse(data, "pause", name)
        assert refused.returncode == 1
        assert problem in refused.stderr

    server.start()
    try:
        task = server.http.get("/tasks/job").json()
        assert task["paused"] is True
        assert paused.stdout == f"task 'job' paused since {shown(task)}\n"

        def paused_fires() -> int:
            runs = server.http.get("/tasks/job/runs").json()
            assert all(run["error"] == "paused" for run in runs), runs
            return len(runs)

        wait_until(lambda: paused_fires() >= 2, timeout=10)
        busy = tasse(data, "resume", "job", "--http-listen-address", f"127.0.0.1:{server.port}")
        assert busy.returncode == 0, busy.stderr
        assert "no server runs" not in busy.stderr
    finally:
        server.stop()
    try:
        assert tasse(data, "pause", "job").returncode == 0
        assert tasse(data, "resume", "job").returncode == 0
        server.start()
        assert server.http.get("/tasks/job").json()["paused"] is False
    finally:
        server.stop()
        server.http.close()
