"""Supertask's API at `/cronjobs/` on a real `tasse serve`: its `CronJob` shape, its form,
JSON, `PUT` and `DELETE`, stored as API tasks; bad input is a 422 that says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.http.test_api import Server, wait_until
from tests.tasks.test_seeds import write_seed

#: the fields of Supertask's `CronJob` (supertask/model.py), in its order
CRONJOB_FIELDS = [
    "id",
    "name",
    "trigger_cron",
    "exec_python_ref",
    "exec_args",
    "exec_sql",
    "enabled",
    "last_run",
    "last_status",
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BUILD_TIMEOUT = 60.0


@pytest.fixture
def server(start_server: StartServer) -> Server:
    return start_server()


def jobs(server: Server, path: str = "/cronjobs/") -> dict[str, dict[str, Any]]:
    response = server.http.get(path)
    assert response.status_code == 200, response.text
    return {job["name"]: job for job in response.json()}


def run(server: Server, name: str) -> tuple[dict[str, Any], str]:
    """Run the task now, once its environment is built: its final record and its output."""
    wait_until(
        lambda: server.http.get(f"/tasks/{name}").json()["env"]["status"] != "building",
        BUILD_TIMEOUT,
    )
    # A task firing every few seconds may be running its scheduled run now (409: overlap
    # `skip`): the manual run is asked again once that has ended.
    response = wait_until(
        lambda: (answer := server.http.post(f"/tasks/{name}/run")).status_code != 409 and answer,
        timeout=20,
        every=0.2,
    )
    assert response.status_code == 202, response.text
    done = server.finished(response.json()["id"])
    return done, server.http.get(f"/runs/{done['id']}/log").text


def test_every_task_is_listed_in_supertasks_shape_with_and_without_the_slash(
    start_server: StartServer, tmp_path: Path
) -> None:
    seed = write_seed(
        tmp_path / "cronjobs.json",
        [
            {
                "id": 1,
                "name": "Example Python reference",
                "trigger_cron": "*/5 * * * * * *",
                "exec_python_ref": "json:dumps",
                "exec_args": [{"a": 1}],
                "enabled": True,
                "last_run": None,
                "last_status": None,
            }
        ],
    )
    server = start_server("--pre-seed-jobs", str(seed))
    server.task("hello", "title: Say hello\nscheduler: {trigger: interval, hours: 1}\n")
    assert server.http.post("/rescan").status_code == 200

    listed = jobs(server)
    assert jobs(server, "/cronjobs") == listed
    assert set(listed) == {"Example Python reference", "Say hello"}
    seeded = listed["Example Python reference"]
    assert list(seeded) == CRONJOB_FIELDS
    assert seeded == {
        "id": 1,
        "name": "Example Python reference",
        "trigger_cron": "*/5 * * * * * *",
        "exec_python_ref": "json:dumps",
        "exec_args": [{"a": 1}],
        "exec_sql": None,
        "enabled": True,
        "last_run": seeded["last_run"],  # it fires every 5 seconds: maybe already
        "last_status": seeded["last_status"],
    }
    folder = listed["Say hello"]
    # No crontab line, nothing Supertask could call; an id of its own, the same each time.
    assert (folder["trigger_cron"], folder["exec_python_ref"], folder["exec_args"]) == (
        "",
        None,
        [],
    )
    assert folder["id"] > 2**31
    assert server.http.get(f"/cronjobs/{folder['id']}").json()["name"] == "Say hello"
    assert server.http.get("/cronjobs/1").json()["exec_args"] == [{"a": 1}]

    done, output = run(server, "example-python-reference")
    assert (done["status"], output) == ("succeeded", '[{"a": 1}]\n')
    after = server.http.get("/cronjobs/1").json()
    # The newest run: this one, or a fire of its every-5-seconds schedule since.
    assert after["last_status"] in {"succeeded", "queued", "running"}
    assert after["last_run"] is not None


def test_a_form_post_makes_an_api_task_whose_runs_say_what_it_lacks(server: Server) -> None:
    response = server.http.post(
        "/cronjobs", content="name=Nightly+backup&crontab=0+3+*+*+*&enabled=on", headers=FORM
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["id"], job["name"], job["trigger_cron"], job["enabled"]) == (
        1,
        "Nightly backup",
        "0 3 * * *",
        True,
    )
    task = server.http.get("/tasks/nightly-backup").json()
    assert (task["source"], task["title"], task["schedules"]) == (
        "api",
        "Nightly backup",
        ["0 3 * * *"],
    )

    # The second job of the same name gets the next id, and that id in its task name.
    again = server.http.post(
        "/cronjobs/", content="name=Nightly+backup&crontab=@daily", headers=FORM
    )
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["enabled"]) == (2, False)
    assert server.http.get("/tasks/nightly-backup-2").status_code == 200

    done, output = run(server, "nightly-backup")
    assert done["status"] == "succeeded"
    assert "has nothing to run yet: give it exec_python_ref or exec_sql" in output


def test_json_post_put_and_delete_keep_the_task_and_its_name(server: Server) -> None:
    body = {
        "name": "Dump it",
        "trigger_cron": "0 4 * * *",
        "exec_python_ref": "json:dumps",
        "exec_args": [{"b": 2}],
        "enabled": True,
    }
    created = server.http.post("/cronjobs/", json=body)
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    assert server.http.get("/tasks/dump-it").json()["definition"]["args"] == [[{"b": 2}]]

    changed = server.http.put(
        f"/cronjobs/{job_id}", json={**body, "name": "Dump it daily", "exec_args": [3]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Dump it daily"
    task = server.http.get("/tasks/dump-it").json()  # renamed in words, not in its id
    assert (task["title"], task["definition"]["cronjob_id"]) == ("Dump it daily", job_id)
    assert run(server, "dump-it")[1] == "[3]\n"

    deleted = server.http.delete(f"/cronjobs/{job_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["name"] == "Dump it daily"
    assert server.http.get(f"/cronjobs/{job_id}").status_code == 404
    assert server.http.get("/tasks/dump-it").status_code == 404


#: bodies `POST /cronjobs/` refuses, and what the answer must say
BAD_POSTS: dict[str, tuple[dict[str, Any], str]] = {
    "form without a crontab": ({"content": "name=x", "headers": FORM}, "trigger_cron"),
    "form without a name": ({"content": "crontab=@daily", "headers": FORM}, "name"),
    "a crontab that is not one": (
        {"json": {"name": "x", "trigger_cron": "every day"}},
        "schedule",
    ),
    "a name of two lines": (
        {"json": {"name": "one\ntwo", "trigger_cron": "@daily"}},
        "one line",
    ),
    "an unknown key": ({"json": {"name": "x", "trigger_cron": "@daily", "job": 1}}, "job"),
    "not JSON": ({"content": b"{oops", "headers": {"Content-Type": "application/json"}}, "JSON"),
    "a list": ({"json": [1]}, "valid dictionary"),
    "a bad python_ref": (
        {"json": {"name": "x", "trigger_cron": "@daily", "exec_python_ref": "no colon"}},
        "python_ref",
    ),
}


@pytest.mark.parametrize("case", list(BAD_POSTS))
def test_bad_input_is_a_422_that_says_why_and_stores_nothing(
    start_server: StartServer, case: str
) -> None:
    server = start_server()
    request, said = BAD_POSTS[case]
    response = server.http.post("/cronjobs/", **request)
    assert response.status_code == 422, response.text
    assert said in response.text
    assert server.http.get("/cronjobs/").json() == []


def test_put_and_delete_of_what_is_not_theirs_say_so(server: Server) -> None:
    assert server.http.get("/cronjobs/99").status_code == 404
    missing = server.http.put("/cronjobs/99", json={"name": "x", "trigger_cron": "@daily"})
    assert (missing.status_code, missing.json()["detail"]) == (
        404,
        "No cron job by the id of 99 was found",
    )
    server.task("hello", None)
    server.http.post("/rescan")
    folder_id = jobs(server)["hello"]["id"]
    refused = server.http.put(
        f"/cronjobs/{folder_id}", json={"name": "x", "trigger_cron": "@daily"}
    )
    assert refused.status_code == 409
    assert "edit the folder" in refused.json()["detail"]
    assert server.http.delete(f"/cronjobs/{folder_id}").status_code == 409
    made = server.http.post("/cronjobs/", json={"name": "x", "trigger_cron": "@daily"}).json()
    other = server.http.put(
        f"/cronjobs/{made['id']}", json={"id": 5, "name": "x", "trigger_cron": "@daily"}
    )
    assert other.status_code == 422
    assert "is not the path's" in other.json()["detail"]
    taken = server.http.post(
        "/cronjobs/", json={"id": made["id"], "name": "y", "trigger_cron": "@daily"}
    )
    assert taken.status_code == 409


def test_a_token_guards_the_writes_as_it_guards_post_tasks(start_server: StartServer) -> None:
    server = start_server(TASSE_API_TOKEN="s3cret")
    body = {"name": "guarded", "trigger_cron": "@daily"}
    assert server.http.post("/cronjobs/", json=body).status_code == 401
    assert (
        server.http.post("/cronjobs", content="name=x&crontab=@daily", headers=FORM).status_code
        == 401
    )
    auth = {"Authorization": "Bearer s3cret"}
    made = server.http.post("/cronjobs/", json=body, headers=auth)
    assert made.status_code == 200, made.text
    job_id = made.json()["id"]
    assert server.http.get(f"/cronjobs/{job_id}").status_code == 200  # reading needs none
    assert server.http.put(f"/cronjobs/{job_id}", json=body).status_code == 401
    assert server.http.delete(f"/cronjobs/{job_id}").status_code == 401
    assert server.http.delete(f"/cronjobs/{job_id}", headers=auth).status_code == 200
