"""One server per data folder: a second `tasse serve` refuses at once and touches nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import StartServer
from tests.http.test_api import Server, wait_until
from tests.ports import free_port

#: a run that lasts until the test lets it end (by creating `go`), at most 30 s
SLOW = """
import pathlib, time
pathlib.Path("started").write_text("yes")
for _ in range(300):
    if pathlib.Path("go").exists():
        break
    time.sleep(0.1)
print("went on")
"""


def _serve(data_dir: Path) -> subprocess.CompletedProcess[str]:
    address = f"127.0.0.1:{free_port()}"
    command = ["serve", "--data-dir", str(data_dir), "--http-listen-address", address]
    return subprocess.run(
        [sys.executable, "-m", "tasse", *command],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def _stored_status(data_dir: Path, run_id: str) -> str | None:
    # Read-only, beside the server: what the store says, not what the server remembers.
    with sqlite3.connect(f"file:{data_dir / 'tasse.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT status FROM tasse_runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


def _start_slow_run(server: Server) -> tuple[str, Path]:
    folder = server.task("slow", None, SLOW)
    assert server.http.post("/rescan").status_code == 200
    response = server.http.post("/tasks/slow/run")
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    wait_until(lambda: (folder / "started").exists())
    wait_until(lambda: _stored_status(server.data_dir, run_id) == "running")
    return run_id, folder


def test_a_second_server_refuses_and_the_first_ones_run_goes_on(
    start_server: StartServer,
) -> None:
    first = start_server()
    assert first.process is not None
    run_id, folder = _start_slow_run(first)

    began = time.monotonic()
    second = _serve(first.data_dir)

    assert second.returncode == 1, second
    assert time.monotonic() - began < 10  # at once, not after a start-up
    message = second.stderr.strip()
    assert "\n" not in message, message  # one line, no traceback
    assert str(first.data_dir.absolute()) in message
    assert f"pid {first.process.pid}" in message
    assert "in use by another Tasse server" in message
    # Nothing touched: not marked interrupted, its process not killed, the first one serves.
    assert _stored_status(first.data_dir, run_id) == "running"
    assert first.http.get(f"/runs/{run_id}").json()["status"] == "running"
    (folder / "go").touch()
    run = first.finished(run_id)
    assert run["status"] == "succeeded", run
    assert "went on" in first.http.get(f"/runs/{run_id}/log").text
    assert _stored_status(first.data_dir, run_id) == "succeeded"


def test_the_folder_is_free_again_once_the_server_has_stopped(start_server: StartServer) -> None:
    first = start_server()
    code, output = first.stop()
    assert code == 0, output
    again = start_server()  # the fixture checks it became healthy
    assert again.http.get("/health").status_code == 200


def test_a_server_killed_outright_leaves_the_folder_free(start_server: StartServer) -> None:
    first = start_server()
    assert first.process is not None
    _, folder = _start_slow_run(first)
    first.process.kill()  # SIGKILL: the run's process lives on, but holds no lock
    first.process.wait()
    again = start_server()
    assert again.http.get("/health").status_code == 200
    (folder / "go").touch()


def test_tasse_run_works_beside_a_running_server(start_server: StartServer) -> None:
    server = start_server()
    server.task("hello", None, 'print("hello from the shell")')
    result = subprocess.run(
        [sys.executable, "-m", "tasse", "run", "hello", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "hello from the shell" in result.stdout
