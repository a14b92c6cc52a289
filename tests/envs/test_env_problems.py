"""A task whose environment cannot be had is a task with a problem: its `error`, `/health`'s
count and the log say so, by the task's name (a real `tasse serve`, real failed builds)."""

from __future__ import annotations

from tests.conftest import StartServer
from tests.envs.test_env_e2e import add_task, save, wait_env
from tests.http.test_api import wait_until

#: a local path that is not there: the installer fails at once, with no index involved
NOT_THERE = "./no-such-package\n"


def test_env_failures_are_in_the_tasks_error_the_health_count_and_the_log(
    start_server: StartServer,
) -> None:
    server = start_server()
    data = server.data_dir
    broken = add_task(data, "broken", {"task.py": "print(1)\n", "requirements.txt": NOT_THERE})
    add_task(data, "future", {"task.py": "print(1)\n", "task.yaml": 'python: "3.99"\n'})
    add_task(data, "fine", {"task.py": "print(1)\n"})
    assert server.http.post("/rescan").status_code == 200
    env = wait_env(server, "broken", "failed")
    wait_env(server, "fine", "ready")

    task = server.http.get("/tasks/broken").json()
    assert task["error"].startswith("task 'broken': its Python environment failed to build")
    assert "no-such-package" in task["error"]
    assert str(data / "logs" / "broken" / "env.log") in task["error"]
    future = server.http.get("/tasks/future").json()
    assert "its Python environment has no interpreter" in future["error"]
    assert "3.99" in future["error"]
    assert server.http.get("/tasks/fine").json()["error"] is None
    listed = {t["name"]: t["error"] for t in server.http.get("/tasks").json()}
    assert listed["broken"] == task["error"]
    health = server.http.get("/health").json()
    assert (health["tasks"], health["errors"]) == (3, 2)

    log = server.output.read_text()
    assert f"task broken: environment {env['hash']} failed to build" in log
    assert "task 'future': its Python environment has no interpreter" in log

    save(broken / "requirements.txt", "")  # fixed: nothing to install
    wait_env(server, "broken", "ready", timeout=20, requirements=[])
    assert server.http.get("/tasks/broken").json()["error"] is None
    wait_until(lambda: server.http.get("/health").json()["errors"] == 1)
