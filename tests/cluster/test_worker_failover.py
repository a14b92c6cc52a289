"""The issue's cluster scenario: two `tasse serve --cluster --run-on workers` nodes and two
`tasse worker`s, 20 tasks every second for 60 s; kill -9 one scheduler at 20 s, SIGSTOP
the other for 15 s at 30 s, kill -9 a worker mid-run at 40 s. Every fire time gets exactly
one record and no fire two runs; the killed worker's run is interrupted and retried; manual
runs asked of either node ran once; a cancel through node a stopped a run on a worker."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.cluster.harness import Rig
from tests.http.test_api import Server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(300)]

TASKS = [f"t{i:02d}" for i in range(20)]
WORKERS = ("--run-on", "workers")
#: the most a takeover may take, and a dead worker's runs to become interrupted
TAKEOVER, WORKER_DEATH = 10.0, 30.0


def test_each_fire_once_with_workers_through_kills_and_a_freeze() -> None:
    with Rig() as rig:
        for name in TASKS:
            rig.task(name, 'schedules: ["* * * * * *"]\n')
        rig.task("manual", "overlap: parallel\n")
        rig.task("sleeper", "retries: 1\nretry_delay: 1\n", script="echo slept; sleep 6\n")
        rig.task("long", "timeout: 120\n", script="sleep 60\n")
        a = rig.start("a", flags=WORKERS)
        assert rig.wait_for_scheduler() == "a"
        b = rig.start("b", flags=WORKERS)
        rig.start_worker("w1")
        rig.start_worker("w2")
        began = time.time()

        def at(second: float) -> None:
            time.sleep(max(0.0, began + second - time.time()))

        at(5)
        asked = [node.http.post("/tasks/manual/run") for node in (a, b, a, b, a, b)]
        assert [answer.status_code for answer in asked] == [202] * 6, [x.text for x in asked]
        manual_ids = {answer.json()["id"] for answer in asked}

        at(20)
        killed = time.time()
        rig.kill("a")
        wait_until(lambda: rig.scheduler() == "b", timeout=TAKEOVER + 5)
        after_kill = wait_until(lambda: rig.first_claim_after(killed, "b"), timeout=TAKEOVER)
        a = rig.start("a", flags=WORKERS)  # restarted as a supervisor would: a standby

        at(30)
        frozen = time.time()
        rig.freeze("b")
        wait_until(lambda: rig.scheduler() == "a", timeout=TAKEOVER + 5)
        after_freeze = wait_until(lambda: rig.first_claim_after(frozen, "a"), timeout=TAKEOVER)

        at(37)
        sleeper = a.http.post("/tasks/sleeper/run")
        assert sleeper.status_code == 202, sleeper.text
        sleeper_id = sleeper.json()["id"]
        doomed = wait_until(lambda: _node_running(rig, sleeper_id), timeout=5)

        at(40)
        worker_killed = time.time()
        rig.kill(doomed)

        at(45)
        rig.thaw("b")  # it wakes up believing it schedules; its token is stale

        at(50)
        cancel_took = _cancel_through(a, a)

        at(60)
        ended = time.time()
        # The killed worker's run: interrupted, naming it, within 30 s; then retried.
        interrupted = wait_until(
            lambda: _status_and_error(rig, sleeper_id, "interrupted"), timeout=WORKER_DEATH + 5
        )
        retry = wait_until(lambda: _retry_of(rig, sleeper_id), timeout=30)
        assert retry[1] != doomed
        wait_until(lambda: _status_and_error(rig, retry[0], "succeeded"), timeout=20)
        b.stop()
        a.stop()

        assert after_kill <= TAKEOVER
        assert after_freeze <= TAKEOVER
        assert cancel_took < 2.5
        assert f"node {doomed} stopped answering" in (interrupted[1] or "")
        assert interrupted[2] - worker_killed <= WORKER_DEATH
        wrong = rig.fires_without_one_record(TASKS, began, ended)
        assert wrong == {}, f"fires without exactly one record: {sorted(wrong.items())[:20]}"
        nodes = dict(
            rig.query(
                "SELECT node, count(*) FROM tasse_runs WHERE status = 'succeeded'"
                " AND trigger = 'schedule' GROUP BY node"
            )
        )
        assert set(nodes) <= {"w1", "w2"}, nodes  # every run ran on a worker
        statuses = dict(rig.query("SELECT status, count(*) FROM tasse_runs GROUP BY status"))
        assert statuses.get("missed", 0) > 0  # the gaps were caught up by `catchup: latest`
        manual = rig.query("SELECT id, status FROM tasse_runs WHERE task = 'manual'")
        assert {run_id for run_id, _ in manual} == manual_ids
        assert {status for _, status in manual} == {"succeeded"}
        # No run was carried out twice: each `running` was taken once (its log has one start).
        starts = Counter()
        for worker in ("w1", "w2"):
            for line in rig.worker_log(worker).splitlines():
                if " started (" in line and "tasse.runs.execution: run " in line:
                    starts[line.split("run ", 1)[1].split()[0]] += 1
        assert [run for run, count in starts.items() if count > 1] == []


def _node_running(rig: Rig, run_id: str) -> str | None:
    rows = rig.query("SELECT node FROM tasse_runs WHERE id = :id AND status = 'running'", id=run_id)
    return rows[0][0] if rows else None


def _status_and_error(rig: Rig, run_id: str, status: str) -> tuple[str, str | None, float] | None:
    rows = rig.query(
        "SELECT status, error, EXTRACT(EPOCH FROM finished_at AT TIME ZONE 'UTC')"
        " FROM tasse_runs WHERE id = :id AND status = :status",
        id=run_id,
        status=status,
    )
    return (rows[0][0], rows[0][1], float(rows[0][2])) if rows else None


def _retry_of(rig: Rig, run_id: str) -> tuple[str, str] | None:
    rows = rig.query(
        "SELECT id, node FROM tasse_runs WHERE task = 'sleeper' AND attempt = 2"
        " AND trigger = 'retry' AND status IN ('running', 'succeeded') AND id > :id",
        id=run_id,
    )
    return (rows[0][0], rows[0][1]) if rows else None


def _cancel_through(asked: Server, scheduler: Server) -> float:
    """Start a long run and cancel it through `asked`; how long the cancel took."""
    started = scheduler.http.post("/tasks/long/run")
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    wait_until(lambda: scheduler.http.get(f"/runs/{run_id}").json()["status"] == "running")
    sent = time.monotonic()
    answer = asked.http.post(f"/runs/{run_id}/cancel")
    took = time.monotonic() - sent
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    return took
