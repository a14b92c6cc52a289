"""The API and the dashboard of notifications, on a real `tasse serve`."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import StartServer
from tests.notify.receivers import SECRET, Webhook

TOKEN = "t0ken-for-tests"


def wait_listed(server: Any, count: int, **query: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while len(found := server.http.get("/notifications", params=query).json()) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return list(found)


def test_a_test_message_needs_the_token_is_delivered_and_listed_masked(
    start_server: StartServer, hook: Webhook
) -> None:
    server = start_server(
        TASSE_NOTIFY=f"ops={hook.target}",
        TASSE_API_TOKEN=TOKEN,
        TASSE_PUBLIC_URL="https://tasse.example.org",
    )
    assert server.http.post("/notify/test").status_code == 401
    answer = server.http.post(
        "/notify/test", json={"target": "ops"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 202
    [queued] = answer.json()

    [message] = hook.wait_for()
    [listed] = wait_listed(server, 1, status="sent")
    assert message["title"] == "Tasse: Tasse test notification"
    assert message["id"] == queued["id"] == listed["id"]
    assert listed["events"] == ["test"]
    assert listed["target"] == f"webhook+http://127.0.0.1:{hook.port}/hook?secret=****"
    assert SECRET not in server.http.get("/notifications").text

    page = server.http.get("/notifications", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "secret=****" in page.text
    assert SECRET not in page.text
    assert "Send a test to every target" in page.text
    # ... and counted for Prometheus
    metrics = server.http.get("/metrics").text
    assert "tasse_notification_deliveries_total 1.0" in metrics
    assert "tasse_notification_failures_total 0.0" in metrics


def test_a_failing_target_is_a_problem_and_the_task_page_shows_its_notifications(
    start_server: StartServer,
) -> None:
    nowhere = Webhook()  # never started: nothing listens on its port
    server = start_server(
        TASSE_NOTIFY=nowhere.target, TASSE_NOTIFY_RETRY_FIRST="0.1", TASSE_NOTIFY_RETRY_MAX="0.2"
    )
    server.task("broken", None, "raise SystemExit(1)")
    deadline = time.monotonic() + 15
    while server.http.get("/tasks/broken").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.http.post("/tasks/broken/run").status_code == 202

    deadline = time.monotonic() + 15
    while not any(p["kind"] == "notification target" for p in server.http.get("/problems").json()):
        assert time.monotonic() < deadline, server.http.get("/problems").json()
        time.sleep(0.1)
    [problem] = [
        p for p in server.http.get("/problems").json() if p["kind"] == "notification target"
    ]
    assert "cannot be reached" in problem["detail"]
    assert SECRET not in problem["subject"]

    page = server.http.get("/tasks/broken", headers={"Accept": "text/html"}).text
    assert "Notifications" in page
    assert "pending" in page
