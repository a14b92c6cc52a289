"""Pause and resume through a real `tasse serve`: fires recorded `skipped` ("paused"), nothing
executed meanwhile, kept across restarts and store outages, for folder, API and seed tasks."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.test_api import Server, wait_until
from tests.store.test_outage import _HOLD_LOCK, FAST_FAILING_STORE, close
from tests.store.test_store import Place, make_place

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: each run appends its task's name to COUNTER_FILE: what really executed
COUNTER = """
import os
with open(os.environ["COUNTER_FILE"], "a") as counter:
    counter.write(os.environ["TASSE_TASK"] + "\\n")
"""
EVERY_SECOND = "scheduler: {trigger: interval, seconds: 1}\n"
COUNT = ["sh", "-c", 'echo "$TASSE_TASK" >> "$COUNTER_FILE"']
NAMES = ("counter", "apitick", "seedtick")


def ran(counter: Path) -> list[str]:
    return counter.read_text().split() if counter.exists() else []


def paused_records(server: Server, name: str) -> list[dict[str, Any]]:
    runs = server.http.get(f"/tasks/{name}/runs", params={"status": "skipped"}).json()
    return [run for run in runs if run["error"] == "paused"]


def pause(server: Server, name: str, **headers: str) -> dict[str, Any]:
    answer = server.http.post(f"/tasks/{name}/pause", headers=headers)
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


@pytest.fixture(params=["sqlite", "postgresql"])
def store_flags(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """The server's store: its own SQLite file, or its own tables in the test PostgreSQL."""
    if request.param == "sqlite":
        yield []
        return
    place: Place = make_place("postgresql", tmp_path)
    place.drop()
    try:
        yield ["--store-address", place.address, "--store-table-name", place.table_name]
    finally:
        place.drop()


@pytest.fixture
def three_sources(tmp_path: Path, store_flags: list[str]) -> Iterator[tuple[Server, Path]]:
    """A server with a 1 s task from a folder, one from the API and one from a seed file."""
    counter = tmp_path / "ran.txt"
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"name": "seedtick", "command": COUNT, "schedule": "* * * * * *"}]))
    env = {"COUNTER_FILE": str(counter), "TASSE_PRE_SEED_JOBS": str(seed)}
    server = Server(tmp_path / "data", env, store_flags)
    server.task("counter", EVERY_SECOND, COUNTER)
    server.start()
    body = {"name": "apitick", "command": COUNT, "schedules": ["* * * * * *"]}
    assert server.http.post("/tasks", json=body).status_code == 201
    try:
        yield server, counter
    finally:
        close(server)


def test_paused_tasks_run_nothing_survive_a_restart_and_run_again_once_resumed(
    three_sources: tuple[Server, Path],
) -> None:
    server, counter = three_sources
    wait_until(lambda: set(ran(counter)) >= set(NAMES), timeout=15)
    shown = {name: pause(server, name) for name in NAMES}
    assert all(task["paused"] and task["paused_at"] for task in shown.values())
    time.sleep(1.5)  # a run started just before the pause may still be writing its line
    before = len(ran(counter))
    wait_until(lambda: all(len(paused_records(server, n)) >= 2 for n in NAMES), timeout=10)
    assert len(ran(counter)) == before  # skipped, not executed

    code, output = server.stop()
    assert code == 0, output
    assert "task counter paused" in output
    server.start()
    for name in NAMES:
        task = server.http.get(f"/tasks/{name}").json()
        assert (task["paused"], task["paused_at"]) == (True, shown[name]["paused_at"])
        assert task["next_run_at"]  # the schedule goes on
    listed = {task["name"]: task["paused"] for task in server.http.get("/tasks").json()}
    assert listed == dict.fromkeys(NAMES, True)
    after_restart = len(paused_records(server, "counter"))
    wait_until(lambda: len(paused_records(server, "counter")) > after_restart + 1, timeout=10)
    assert len(ran(counter)) == before

    for name in NAMES:
        answer = server.http.post(f"/tasks/{name}/resume")
        assert answer.status_code == 200, answer.text
        assert (answer.json()["paused"], answer.json()["paused_at"]) == (False, None)
    wait_until(lambda: set(ran(counter)[before:]) == set(NAMES), timeout=15)
    code, output = server.stop()
    assert "task apitick resumed" in output


def test_a_pause_while_the_store_is_locked_is_journaled_and_kept(tmp_path: Path) -> None:
    counter = tmp_path / "ran.txt"
    server = Server(tmp_path / "data", {"COUNTER_FILE": str(counter), **FAST_FAILING_STORE})
    server.task("counter", EVERY_SECOND, COUNTER)
    server.start()
    database = tmp_path / "data" / "tasse.db"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(database)])
    try:
        wait_until(lambda: server.http.get("/health").status_code == 503, timeout=20)
        started = time.perf_counter()
        assert pause(server, "counter")["paused"]
        assert time.perf_counter() - started < 1.0  # the API never waits on the store
        wait_until(lambda: server.http.get("/health").json()["journaled_records"] > 0)
        journal = tmp_path / "data" / "journal" / "records.jsonl"
        wait_until(lambda: b'"pauses"' in journal.read_bytes(), timeout=10)
        code, output = server.stop()  # the store still locked: the journal keeps the pause
        assert code == 0, output
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=10)
    try:
        server.start()
        task = server.http.get("/tasks/counter").json()
        assert task["paused"]
        with sqlite3.connect(database) as connection:
            rows = connection.execute("SELECT name, reason FROM tasse_pauses").fetchall()
        assert rows == [("counter", None)]
        executed = len(ran(counter))
        wait_until(lambda: len(paused_records(server, "counter")) >= 2, timeout=10)
        assert len(ran(counter)) == executed
    finally:
        server.stop()
        close(server)


def test_pause_needs_the_token_knows_its_tasks_and_keeps_its_first_state(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", {"TASSE_API_TOKEN": "s3cret"})
    server.task("hello", None)
    server.start()
    token = {"Authorization": "Bearer s3cret"}
    try:
        for action in ("pause", "resume"):
            refused = server.http.post(f"/tasks/hello/{action}")
            assert refused.status_code == 401
            assert "Bearer" in refused.json()["detail"]
            unknown = server.http.post(f"/tasks/ghost/{action}", headers=token)
            assert unknown.status_code == 404
            assert "'ghost'" in unknown.json()["detail"]
        assert not server.http.get("/tasks/hello").json()["paused"]

        body = {"reason": "waiting for the new disk"}
        first = server.http.post("/tasks/hello/pause", json=body, headers=token).json()
        assert first["paused_reason"] == "waiting for the new disk"
        again = server.http.post("/tasks/hello/pause", headers=token)
        assert again.status_code == 200
        assert again.json() == first  # idempotent: the same state, the first reason
        invalid = server.http.post("/tasks/hello/pause", json={"why": "x"}, headers=token)
        assert invalid.status_code == 422

        # A person asked for it: a manual run of a paused task runs.
        run = server.http.post("/tasks/hello/run", headers=token).json()
        assert server.finished(run["id"])["status"] == "succeeded"
        assert server.http.post("/tasks/hello/resume", headers=token).json()["paused"] is False
        paths = server.http.get("/openapi.json").json()["paths"]
        assert {"/tasks/{name}/pause", "/tasks/{name}/resume"} <= set(paths)
    finally:
        code, output = server.stop()
        server.http.close()
    assert code == 0, output
