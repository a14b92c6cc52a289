"""Schemathesis against a real server's /openapi.json: no request, however odd, gets a 500."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import StartServer
from tests.http.test_api import wait_until

TOKEN = "schemathesis-token"


# About 25 s alone; a loaded CI machine may take twice that.
@pytest.mark.timeout(240)
def test_no_request_gets_a_server_error(start_server: StartServer, tmp_path: Path) -> None:
    # With a token, and schemathesis sending it: the routes that change something are
    # exercised past the token check (test_api checks the refusals without it).
    #
    # Schemathesis defines tasks with random `command` argv lists and runs them. They are
    # argv (no shell), run in data/work/<name> below tmp_path; PATH holds only this
    # venv's scripts, so a random program name finds no real program to run, and
    # environment builds may not reach a package index (random requirements would
    # otherwise be looked up) nor write outside tmp_path.
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(
        TASSE_API_TOKEN=TOKEN,
        PATH=os.path.dirname(sys.executable),
        HOME=str(home),
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_OFFLINE="1",
        PIP_NO_INDEX="1",
    )
    server.task("hello", "scheduler: {trigger: interval, hours: 1}\n")
    wait_until(lambda: server.http.get("/tasks/hello").status_code == 200)
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "schemathesis"),
            "run",
            f"http://127.0.0.1:{server.port}/openapi.json",
            "--checks=not_a_server_error",
            "--phases=examples,coverage,fuzzing",
            "--max-examples=30",
            "--seed=4243",
            "--generation-database=none",
            "--request-timeout=10",
            "--no-color",
            f"--header=Authorization: Bearer {TOKEN}",
            # A live stream never ends by itself: each request would wait out the timeout.
            # (Its answers to odd queries and headers are tests/http/test_events.py's.)
            "--exclude-path=/events",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.http.get("/health").status_code == 200
