"""Two `tasse serve --cluster` nodes as processes, killed and frozen while 15 tasks fire
every second: every fire time gets exactly one record, takeover takes at most 10 s,
manual runs asked of either node run once, and a cancel reaches the other node."""

from __future__ import annotations

import time

import pytest

from tests.cluster.harness import Rig
from tests.http.test_api import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(240)]

TASKS = [f"t{i:02d}" for i in range(15)]
#: the most a takeover may take (the issue's bound)
TAKEOVER = 10.0


def test_each_fire_once_through_a_kill_and_a_freeze() -> None:
    with Rig() as rig:
        for name in TASKS:
            rig.task(name, 'schedules: ["* * * * * *"]\n')
        rig.task("manual", "overlap: parallel\n")
        rig.task("sleeper", "timeout: 120\n", script="sleep 60\n")
        a = rig.start("a")
        assert rig.wait_for_scheduler() == "a"
        b = rig.start("b")
        began = time.time()
        _both_nodes_listed(b)
        time.sleep(5)

        asked = [node.http.post("/tasks/manual/run") for node in (a, b, a, b, a, b)]
        assert [answer.status_code for answer in asked] == [202] * 6
        manual_ids = {answer.json()["id"] for answer in asked}
        time.sleep(2)

        killed = time.time()
        rig.kill("a")
        wait_until(lambda: rig.scheduler() == "b", timeout=TAKEOVER + 5)
        after_kill = wait_until(lambda: rig.first_claim_after(killed, "b"), timeout=TAKEOVER)
        a = rig.start("a")  # restarted on its data folder, as a supervisor would: a standby

        cancel_took = _cancel_through(a, b)
        time.sleep(2)

        frozen = time.time()
        rig.freeze("b")
        wait_until(lambda: rig.scheduler() == "a", timeout=TAKEOVER + 5)
        after_freeze = wait_until(lambda: rig.first_claim_after(frozen, "a"), timeout=TAKEOVER)
        time.sleep(max(0.0, frozen + 15 - time.time()))
        rig.thaw("b")  # it wakes up believing it schedules; its token is stale
        time.sleep(4)
        ended = time.time()
        b.stop()
        a.stop()

        assert after_kill <= TAKEOVER
        assert after_freeze <= TAKEOVER
        assert cancel_took < 2.5
        wrong = rig.fires_without_one_record(TASKS, began, ended)
        assert wrong == {}, f"fires without exactly one record: {sorted(wrong.items())[:20]}"
        statuses = dict(rig.query("SELECT status, count(*) FROM tasse_runs GROUP BY status"))
        assert statuses.get("missed", 0) > 0  # the gaps were caught up by `catchup: latest`
        manual = rig.query("SELECT id, status FROM tasse_runs WHERE task = 'manual'")
        assert {run_id for run_id, _ in manual} == manual_ids
        assert {status for _, status in manual} == {"succeeded"}
        log_b = (rig.root / "b" / "server.log").read_text()
        assert "another node holds the scheduler lease" in log_b


def _cancel_through(asked: object, running: object) -> float:
    """Start a long run (the scheduler, `running`, starts it) and cancel it through `asked`;
    how long the cancel took to answer."""
    from tests.http.test_api import Server

    assert isinstance(asked, Server)
    assert isinstance(running, Server)
    started = asked.http.post("/tasks/sleeper/run")
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    wait_until(lambda: running.http.get(f"/runs/{run_id}").json()["status"] == "running")
    sent = time.monotonic()
    answer = asked.http.post(f"/runs/{run_id}/cancel")
    took = time.monotonic() - sent
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    assert running.http.get(f"/runs/{run_id}").json()["status"] == "cancelled"
    return took


def _both_nodes_listed(asked: object) -> None:
    """`GET /nodes` (and its page) on the standby shows both nodes, the scheduler marked."""
    from tests.http.test_api import Server

    assert isinstance(asked, Server)
    listed = {node["name"]: node for node in asked.http.get("/nodes").json()}
    assert set(listed) == {"a", "b"}
    assert listed["a"]["leader"]
    assert not listed["b"]["leader"]
    assert listed["b"]["this"]
    assert all(node["alive"] and node["role"] == "scheduler" for node in listed.values())
    page = asked.http.get("/nodes", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "scheduler now" in page.text
    assert "(this node)" in page.text
