"""What is defined or paused through one node holds on every node: two `tasse serve
--cluster` nodes as processes. A task defined, replaced, paused, resumed and deleted
through the standby is fired, skipped and forgotten by the scheduler within seconds."""

from __future__ import annotations

import time

import pytest

from tests.cluster.harness import Rig
from tests.http.test_api import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(120)]

EVERY_SECOND = "* * * * * *"
#: seconds a change made through one node may take to hold on another
TAKES_HOLD = 5


def _records(rig: Rig, status: str, since: float = 0.0) -> int:
    rows = rig.query(
        "SELECT count(*) FROM tasse_runs WHERE task = 'shared' AND trigger = 'schedule'"
        " AND status = :status AND scheduled_at >= to_timestamp(:since) AT TIME ZONE 'UTC'",
        status=status,
        since=since,
    )
    count: int = rows[0][0]
    return count


def test_defined_paused_and_deleted_through_the_standby_holds_on_the_scheduler() -> None:
    with Rig() as rig:
        a = rig.start("a")
        assert rig.wait_for_scheduler() == "a"
        b = rig.start("b")

        body = {"name": "shared", "command": ["echo", "one"], "schedule": EVERY_SECOND}
        assert b.http.post("/tasks", json=body).status_code == 201
        wait_until(lambda: a.http.get("/tasks/shared").status_code == 200, timeout=TAKES_HOLD)
        wait_until(lambda: _records(rig, "succeeded") >= 2, timeout=TAKES_HOLD + 3)

        replaced = {**body, "command": ["echo", "two"]}
        assert b.http.put("/tasks/shared", json=replaced).status_code == 200
        wait_until(
            lambda: a.http.get("/tasks/shared").json()["definition"]["command"] == ["echo", "two"],
            timeout=TAKES_HOLD,
        )

        assert b.http.post("/tasks/shared/pause", json={"reason": "maintenance"}).is_success
        wait_until(lambda: a.http.get("/tasks/shared").json()["paused"], timeout=TAKES_HOLD)
        held = time.time() + 1  # a fire claimed as the pause arrived may still run
        wait_until(lambda: _records(rig, "skipped", held) >= 2, timeout=TAKES_HOLD)
        assert _records(rig, "succeeded", held) == 0, "a paused task ran on the scheduler"
        paused = rig.query("SELECT DISTINCT error FROM tasse_runs WHERE status = 'skipped'")
        assert paused == [("paused",)]

        assert a.http.post("/tasks/shared/resume").is_success  # through the scheduler too
        wait_until(lambda: not b.http.get("/tasks/shared").json()["paused"], timeout=TAKES_HOLD)
        resumed = time.time()
        wait_until(lambda: _records(rig, "succeeded", resumed) >= 2, timeout=TAKES_HOLD)

        assert b.http.delete("/tasks/shared").status_code == 204
        wait_until(lambda: a.http.get("/tasks/shared").status_code == 404, timeout=TAKES_HOLD)
        gone = time.time() + 1
        time.sleep(3)
        assert _records(rig, "succeeded", gone) == 0, "a deleted task still fired"
        assert "task shared deleted through another node" in a.output.read_text()
