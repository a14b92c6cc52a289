"""Runs on `tasse worker`s through procrastinate: a scheduler node (and a standby) with two
workers sharing the tasks folder, and a third worker whose copy of a folder differs — all
separate processes on a private PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from tests.cluster.harness import Rig
from tests.http.test_api import wait_until
from tests.notify.receivers import Webhook
from tests.store.private_postgres import alive

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(180)]

WORKERS = ("--run-on", "workers")
#: a run that leaves a grandchild behind it, whose pid it writes down
TREE = 'sleep 300 &\necho $! > "$TASSE_PID_FILE"\necho started\nwait\n'


def test_runs_go_to_workers_and_answer_through_any_node() -> None:
    with Rig() as rig:
        rig.task("tick", "schedule: '* * * * * *'\n", script="echo tick from $TASSE_RUN_ID\n")
        rig.task("manual", "overlap: parallel\n", script="echo manual $TASSE_PARAM_N\n")
        rig.task("tree", "timeout: 120\n", script=TREE)
        rig.task("odd", "queue: odd\n", script="echo the shared copy\n")
        a = rig.start("a", flags=WORKERS)
        assert rig.wait_for_scheduler() == "a"
        b = rig.start("b", flags=WORKERS)
        # A log whose run the scheduler pruned long ago: the worker's own to delete.
        orphan = rig.data("w1") / "logs" / "tick" / "runs" / "20200101-000000-000000-abcdef.log"
        orphan.parent.mkdir(parents=True)
        orphan.write_text("pruned long ago\n")
        os.utime(orphan, (1_577_836_800, 1_577_836_800))
        rig.start_worker("w1")
        rig.start_worker("w2")
        _odd_worker_with_its_own_copy(rig)
        wait_until(lambda: not orphan.exists())

        # Fires run on the workers; their output is in the worker's data folder.
        wait_until(lambda: len(_runs(rig, "tick", "succeeded")) >= 4, timeout=20)
        ticks = _runs(rig, "tick", "succeeded")
        assert {node for _, node, _ in ticks} <= {"w1", "w2"}
        run_id, node, _ = ticks[0]
        log = rig.root / node / "data" / "logs" / "tick" / "runs" / f"{run_id}.log"
        assert log.read_text() == f"tick from {run_id}\n"
        assert not (rig.root / "a" / "data" / "logs" / "tick" / "runs" / f"{run_id}.log").exists()

        # Its log reads through any node: relayed to the worker's API, and on the run's page.
        page = a.http.get(f"/runs/{run_id}", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert f"tick from {run_id}" in page.text
        assert "No output." not in page.text
        for asked in (a, b):
            relayed = asked.http.get(f"/runs/{run_id}/log")
            assert relayed.status_code == 200, relayed.text
            assert relayed.text == f"tick from {run_id}\n"
            assert relayed.headers["X-Tasse-Node"] == node

        # Manual runs asked of either node run once each, on a worker.
        asked = [
            n.http.post("/tasks/manual/run", json={"params": {"n": str(i)}})
            for i, n in enumerate((a, b, a, b))
        ]
        assert [answer.status_code for answer in asked] == [202] * 4, [x.text for x in asked]
        assert {answer.json()["status"] for answer in asked} == {"queued"}
        ids = {answer.json()["id"] for answer in asked}
        wait_until(lambda: {r for r, _, _ in _runs(rig, "manual", "succeeded")} == ids)

        # A job picked a second time (a stalled worker's job retried) runs nothing again.
        # (with the queued run in its arguments, as the scheduler sends it, and without)
        again = ticks[1][0]
        _defer_again(rig, again, {"id": again, "task": "tick", "trigger": "schedule"})
        _defer_again(rig, again, None)
        not_again = "was taken or ended before: not run again"
        wait_until(lambda: _worker_logs(rig).count(not_again) == 2)
        assert rig.query("SELECT status, node FROM tasse_runs WHERE id = :id", id=again) == [
            ("succeeded", ticks[1][1])
        ]

        # A cancel through the standby stops the run and its whole tree on its worker.
        pid_file = rig.root / "tree.pid"
        started = a.http.post("/tasks/tree/run", json={"env": {"TASSE_PID_FILE": str(pid_file)}})
        assert started.status_code == 202, started.text
        tree_id = started.json()["id"]
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=15)
        grandchild = int(pid_file.read_text())
        live = _first_log_event(b, tree_id)  # followed live, through the standby
        assert live == "started"
        listed = {node["name"]: node for node in b.http.get("/nodes").json()}
        assert sum(listed[w]["running"] for w in ("w1", "w2")) >= 1
        sent = time.monotonic()
        cancelled = b.http.post(f"/runs/{tree_id}/cancel")
        took = time.monotonic() - sent
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert took < 2.5
        wait_until(lambda: not alive(grandchild), timeout=3)
        wait_until(lambda: a.http.get(f"/runs/{tree_id}").json()["status"] == "cancelled")

        # A worker whose copy of the folder differs says so instead of running it.
        odd = a.http.post("/tasks/odd/run")
        assert odd.status_code == 202
        odd_run = wait_until(lambda: _ended(a, odd.json()["id"]), timeout=20)
        assert odd_run["status"] == "failed"
        assert "worker w3's copy of the task folder" in odd_run["error"]
        assert "differs from the one this run was made for" in odd_run["error"]

        # Every node lists the workers with their role.
        listed = {node["name"]: node for node in b.http.get("/nodes").json()}
        assert {listed[w]["role"] for w in ("w1", "w2", "w3")} == {"worker"}
        assert not any(listed[w]["leader"] for w in ("w1", "w2", "w3"))


def test_overlap_the_run_limit_and_messages_hold_for_runs_on_workers() -> None:
    hook = Webhook().start()
    notify = {"TASSE_NOTIFY": hook.target, "TASSE_NOTIFY_RATE_WINDOW": "0"}
    with Rig() as rig:
        rig.task("slow", "overlap: parallel\n", script="sleep 1.5\n")
        rig.task("single", "overlap: skip\n", script="sleep 4\n")
        rig.task("boom", "{}\n", script="echo it broke on the worker\nexit 3\n")
        limit = ("--max-concurrent-runs", "2", *WORKERS)
        a = rig.start("a", env=notify, flags=limit)
        assert rig.wait_for_scheduler() == "a"
        b = rig.start("b", env=notify, flags=limit)
        rig.start_worker("w1")
        rig.start_worker("w2")

        # The scheduler tells of a failure on a worker with the log lines the worker has.
        boom = b.http.post("/tasks/boom/run")
        assert boom.status_code == 202, boom.text
        told = hook.wait_for(where=lambda m: m.get("run", {}).get("id") == boom.json()["id"])
        assert "it broke on the worker" in told[0]["log_tail"], told[0]
        hook.stop()

        first = a.http.post("/tasks/single/run")
        assert first.status_code == 202, first.text
        wait_until(lambda: a.http.get(f"/runs/{first.json()['id']}").json()["status"] == "running")
        busy = b.http.post("/tasks/single/run")  # decided by the scheduler, for the cluster
        assert busy.status_code == 409, busy.text
        assert first.json()["id"] in busy.json()["detail"]

        asked = [node.http.post("/tasks/slow/run") for node in (a, b, a, b, a, b)]
        assert [answer.status_code for answer in asked] == [202] * 6
        ids = [answer.json()["id"] for answer in asked]
        wait_until(lambda: len(_runs(rig, "slow", "succeeded")) == 6, timeout=30)
        spans = rig.query(
            "SELECT EXTRACT(EPOCH FROM started_at), EXTRACT(EPOCH FROM finished_at), node"
            " FROM tasse_runs WHERE task = 'slow'"
        )
        assert {node for _, _, node in spans} <= {"w1", "w2"}
        # At most two at once in the whole cluster (the slots of the scheduler node,
        # with the single run holding one of them at first), though 8 worker slots wait.
        most = max(sum(1 for s, f, _ in spans if s <= moment < f) for moment, _, _ in spans)
        assert most == 2, spans
        assert {r for r, _, _ in _runs(rig, "slow", "succeeded")} == set(ids)


def _odd_worker_with_its_own_copy(rig: Rig) -> None:
    data = rig.root / "w3" / "data"
    data.mkdir(parents=True)
    shutil.copytree(rig.tasks, data / "tasks")
    (data / "tasks" / "odd" / "task.sh").write_text("echo a copy edited by hand\n")
    rig.start_worker("w3", flags=("--queues", "odd"))


def _runs(rig: Rig, task: str, status: str) -> list[tuple[str, str, str | None]]:
    """The task's runs in `status`: id, node, error."""
    return [
        (row.id, row.node, row.error)
        for row in rig.query(
            "SELECT id, node, error FROM tasse_runs WHERE task = :task AND status = :status"
            " ORDER BY id",
            task=task,
            status=status,
        )
    ]


def _defer_again(rig: Rig, run_id: str, run: dict[str, str] | None) -> None:
    args: dict[str, object] = {"run_id": run_id, "task": {}, "request": {}}
    args |= {"folder": None, "digest": None}
    if run is not None:
        args["run"] = {**run, "status": "queued"}
    rig.execute(
        "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('tasse/default', 'tasse.run', 0, NULL,"
        " NULL, CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])",
        args=json.dumps(args),
    )


def _worker_logs(rig: Rig) -> str:
    return "".join(rig.worker_log(name) for name in ("w1", "w2"))


def _ended(node: object, run_id: str) -> dict[str, str] | None:
    from tests.http.test_api import Server

    assert isinstance(node, Server)
    run: dict[str, str] = node.http.get(f"/runs/{run_id}").json()
    return run if run["status"] not in ("queued", "running") else None


def _first_log_event(node: object, run_id: str) -> str:
    """The first `log` event's text of the run's live log, read through `node`."""
    from tests.http.test_api import Server

    assert isinstance(node, Server)
    with node.http.stream("GET", f"/runs/{run_id}/log/events", timeout=10) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data: "):
                return line.removeprefix("data: ")
    raise AssertionError("the live log ended without a line")
