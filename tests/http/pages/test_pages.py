"""The dashboard over plain HTTP: which address answers what, and who may act."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.test_api import Server, wait_until

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
HOURLY = "scheduler: {trigger: interval, seconds: 3600}\n"


def start(tmp_path: Path, **env: str) -> Server:
    (tmp_path / "data" / "tasks").mkdir(parents=True)
    server = Server(tmp_path / "data", env)
    server.task("report", HOURLY + "env: {API_TOKEN: hunter2, REGION: eu}\n", 'print("made")\n')
    server.start()
    wait_until(lambda: server.http.get("/tasks/report").status_code == 200)
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = start(tmp_path)
    yield running
    code, output = running.stop()
    assert code == 0, output


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Server]:
    running = start(tmp_path, TASSE_API_TOKEN="s3cret-token")
    yield running
    code, output = running.stop()
    assert code == 0, output


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the page has no form token"
    return match.group(1)


def test_a_browser_gets_pages_and_a_script_the_json(server: Server) -> None:
    page = server.http.get("/tasks/report", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>" in page.text
    assert "report" in page.text
    assert "Accept" in page.headers["vary"]
    api = server.http.get("/tasks/report")
    assert api.headers["content-type"] == "application/json"
    assert api.json()["name"] == "report"
    assert server.http.get("/", headers=BROWSER).status_code == 200
    assert server.http.get("/timeline").status_code == 200
    assert server.http.get("/problems").json() == []


def test_the_definition_shown_masks_secrets(server: Server) -> None:
    page = server.http.get("/tasks/report", headers=BROWSER).text
    assert "REGION: eu" in page
    assert "hunter2" not in page
    assert "API_TOKEN: &#39;***&#39;" in page


def test_an_unknown_task_is_a_404_page_for_a_browser(server: Server) -> None:
    page = server.http.get("/tasks/nosuch", headers=BROWSER)
    assert page.status_code == 404
    assert "Not found" in page.text
    assert "nosuch" in page.text
    assert server.http.get("/tasks/nosuch").json() == {
        "detail": "No task by the name of 'nosuch' was found"
    }


def test_a_form_without_its_token_or_from_another_site_does_nothing(server: Server) -> None:
    page = server.http.get("/tasks/report", headers=BROWSER)
    csrf = csrf_of(page)
    foreign = server.http.post(
        "/ui/tasks/report/run", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 303
    assert foreign.headers["location"] == "/tasks/report"
    forged = server.http.post("/ui/tasks/report/run", data={"csrf": "guessed" * 6})
    assert forged.status_code == 303
    assert forged.headers["location"] == "/tasks/report"
    assert server.http.get("/tasks/report/runs").json() == []
    sent = server.http.post("/ui/tasks/report/run", data={"csrf": csrf, "params": "WHO=me"})
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/runs/")
    run = server.finished(sent.headers["location"].rsplit("/", 1)[1])
    assert run["status"] == "succeeded"
    assert run["params"] == {"WHO": "me"}


def test_a_bad_form_line_is_a_note_not_an_error(server: Server) -> None:
    csrf = csrf_of(server.http.get("/tasks/report", headers=BROWSER))
    sent = server.http.post("/ui/tasks/report/run", data={"csrf": csrf, "params": "no equals"})
    assert sent.status_code == 303
    page = server.http.get(sent.headers["location"], headers=BROWSER)
    assert "Not done: parameters: &#39;no equals&#39; is not NAME=value" in page.text


def test_with_a_token_actions_need_signing_in_once(guarded: Server) -> None:
    page = guarded.http.get("/tasks/report", headers=BROWSER)
    assert page.status_code == 200  # reading stays open
    csrf = csrf_of(page)
    refused = guarded.http.post("/ui/tasks/report/pause", data={"csrf": csrf})
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/ui/login")
    assert guarded.http.get("/tasks/report").json()["paused"] is False

    wrong = guarded.http.post("/ui/login", data={"csrf": csrf, "token": "nope", "next": "/"})
    assert "failed=1" in wrong.headers["location"]
    signed = guarded.http.post(
        "/ui/login", data={"csrf": csrf, "token": "s3cret-token", "next": "/tasks/report"}
    )
    cookie = signed.headers["set-cookie"]
    assert "tasse_token=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    paused = guarded.http.post("/ui/tasks/report/pause", data={"csrf": csrf})
    assert paused.headers["location"] == "/tasks/report"
    assert guarded.http.get("/tasks/report").json()["paused"] is True


def test_the_next_address_after_signing_in_stays_on_this_server(guarded: Server) -> None:
    csrf = csrf_of(guarded.http.get("/ui/login", headers=BROWSER))
    signed = guarded.http.post(
        "/ui/login", data={"csrf": csrf, "token": "s3cret-token", "next": "//evil.example/"}
    )
    assert signed.headers["location"] == "/"
