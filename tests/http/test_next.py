"""`GET /tasks/{name}/next`: bounded by a budget of trigger steps, computed off the loop."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import httpx

from tests.conftest import StartServer
from tests.http.test_api import Server, wait_until


def many_schedules(count: int) -> str:
    """A task.yaml with `count` different crontab lines (daily, on the 1st or 2nd)."""
    lines = [f'  - "{i % 60} {i // 60 % 24} {1 + i // 1440} * *"' for i in range(count)]
    return "schedules:\n" + "\n".join(lines) + "\n"


def test_a_listing_over_the_budget_is_refused_at_once(start_server: StartServer) -> None:
    server = start_server()
    server.task("many", many_schedules(2000))
    wait_until(lambda: server.http.get("/tasks/many").status_code == 200, timeout=30)

    started = time.perf_counter()
    refused = server.http.get("/tasks/many/next", params={"count": 1000})
    elapsed = time.perf_counter() - started

    assert refused.status_code == 422
    assert elapsed < 0.5
    detail = refused.json()["detail"]
    assert "2,000,000 trigger steps" in detail
    assert "10,000" in detail  # the budget, and the setting that changes it
    assert "TASSE_NEXT_FIRES_BUDGET" in detail
    assert "count=5 or fewer" in detail


def test_a_listing_within_the_budget_leaves_the_server_answering(
    start_server: StartServer,
) -> None:
    server = start_server()
    server.task("many", many_schedules(2000))
    # Listed once it is scheduled (its 2,000 jobs are added after it is known).
    wait_until(lambda: _scheduled(server, "many"), timeout=30)
    answers: list[httpx.Response] = []

    def listing() -> None:  # 2,000 schedules x 5 = the whole budget: about a second
        with httpx.Client(base_url=server.http.base_url, timeout=30) as client:
            answers.append(client.get("/tasks/many/next", params={"count": 5}))

    worker = threading.Thread(target=listing)
    worker.start()
    latencies = []
    while worker.is_alive() and len(latencies) < 200:
        started = time.perf_counter()
        assert server.http.get("/health").status_code == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    worker.join(timeout=30)

    assert answers[0].status_code == 200, answers[0].text
    fires = [datetime.fromisoformat(t) for t in answers[0].json()]
    assert len(fires) == 5
    assert fires == sorted(fires)
    assert len(latencies) >= 3, "the listing was too quick to show anything"
    assert max(latencies) < 0.25, latencies


def test_the_budget_is_a_setting(start_server: StartServer) -> None:
    server = start_server(TASSE_NEXT_FIRES_BUDGET="100")
    server.task("hourly", 'schedules: ["0 * * * *", "30 * * * *"]\n')
    wait_until(lambda: server.http.get("/tasks/hourly").status_code == 200)
    assert len(server.http.get("/tasks/hourly/next", params={"count": 50}).json()) == 50
    refused = server.http.get("/tasks/hourly/next", params={"count": 51})
    assert refused.status_code == 422
    assert "count=50 or fewer" in refused.json()["detail"]


def _scheduled(server: Server, name: str) -> bool:
    answer = server.http.get(f"/tasks/{name}")
    return answer.status_code == 200 and answer.json()["next_run_at"] is not None
