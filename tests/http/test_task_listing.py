"""`GET /tasks` with filters, sort orders and pages; `GET /counts`; `GET /runs` across tasks.

A real Tasse with real task folders and real runs, asked through its HTTP app in-process.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasse.http.app import create_app
from tasse.models import Run, RunRequest, RunStatus, RunTrigger, TaskState
from tasse.service import Tasse
from tasse.store.journal import Journal
from tasse.store.runs import RunStore
from tasse.store.timeline import Timeline
from tasse.store.windows import RunWindow
from tasse.store.writer import RecordWriter
from tasse.tasks.definitions import TaskDefinition
from tasse.tasks.listing import state_of
from tests.conftest import MakeTask

pytestmark = pytest.mark.anyio
HOURLY = "scheduler: {trigger: interval, hours: 1}\n"


@pytest.fixture
async def client(tasse: Tasse) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP app of the test's started Tasse, in-process."""
    app = create_app(tasse.settings)
    app.state.tasse = tasse
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tasse") as http:
        yield http


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Wait until `check()` is truthy, letting the loop run."""
    for _ in range(int(timeout / 0.02)):
        if value := check():
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"still {check()!r} after {timeout} s")


async def finished(tasse: Tasse, run_id: str) -> None:
    await until(lambda: tasse.dispatcher.active(run_id) is None)


async def every_state(tasse: Tasse, make_task: MakeTask) -> None:
    """One task in each state but `paused` (the pause store is not there yet)."""
    make_task("ok", HOURLY)
    make_task("failing", "description: Nightly REPORT\n", "raise SystemExit(3)")
    make_task("sleeper", None, "import time\ntime.sleep(30)")
    make_task("off", "enabled: false\n")
    make_task("fresh", "scheduler: {trigger: interval, hours: 5}\n")
    make_task("broken", "scheduler: {trigger: bogus}\n")
    await tasse.rescan()
    await tasse.catalog.create(TaskDefinition(name="api-job", command=["true"]))
    seed = TaskDefinition(name="seeded", command=["true"], description="weekly report")
    await tasse.catalog.create(seed, source="seed")
    for name in ("ok", "failing"):
        await finished(tasse, tasse.run_now(name, RunRequest()).id)
    sleeping = tasse.run_now("sleeper", RunRequest())
    await until(lambda: "sleeper" in tasse.dispatcher.running_tasks())
    assert sleeping.status is RunStatus.running
    # Its start is recorded once its process is up: then history and counts have it.
    await until(lambda: tasse.store.get(sleeping.id))


def names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [task["name"] for task in answer.json()]


STATES = {
    "api-job": "never",
    "broken": "broken",
    "failing": "failed",
    "fresh": "never",
    "off": "disabled",
    "ok": "ok",
    "seeded": "never",
    "sleeper": "running",
}


async def test_without_parameters_every_task_is_listed_by_name_as_before(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    await every_state(tasse, make_task)

    answer = await client.get("/tasks")

    assert names(answer) == sorted(STATES)
    assert answer.headers["X-Total-Count"] == "8"
    assert "Link" not in answer.headers
    assert names(await client.get("/cronjobs")) == sorted(STATES)
    first = answer.json()[0]
    assert first["name"] == "api-job"
    assert first["paused"] is False
    assert list(first)[-1] == "state"  # added last: clients reading fields in order keep working


async def test_each_task_shows_its_state(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    await every_state(tasse, make_task)

    listed = {task["name"]: task["state"] for task in (await client.get("/tasks")).json()}

    assert listed == STATES
    assert (await client.get("/tasks/sleeper")).json()["state"] == "running"
    assert tasse.get_task("failing").state is TaskState.failed


async def test_the_first_state_that_applies_is_shown(tasse: Tasse, make_task: MakeTask) -> None:
    await every_state(tasse, make_task)
    entries, facts = tasse.registry.entries, tasse._facts()

    def states(**changed: Any) -> dict[str, str]:
        changed_facts = dataclasses.replace(facts, **changed)
        return {name: state_of(entry, changed_facts).value for name, entry in entries.items()}

    assert states() == STATES
    # broken > paused > running > disabled > failed > ok > never
    assert states(paused=lambda name: True) == {
        name: "broken" if name == "broken" else "paused" for name in STATES
    }
    assert states(running={"sleeper", "broken", "off", "failing", "fresh"}) == STATES | {
        "off": "running",
        "failing": "running",
        "fresh": "running",
    }
    assert set(states(env_problem=lambda name: "its build failed").values()) == {"broken"}


async def test_filters_by_text_state_and_source(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    await every_state(tasse, make_task)

    # any case, in the name or the description
    assert names(await client.get("/tasks", params={"q": "REPORT"})) == ["failing", "seeded"]
    assert names(await client.get("/tasks", params={"q": "Sleep"})) == ["sleeper"]
    never = await client.get("/tasks", params={"status": "never"})
    assert names(never) == ["api-job", "fresh", "seeded"]
    assert never.headers["X-Total-Count"] == "3"
    either = {"status": ["failed", "broken"]}
    assert names(await client.get("/tasks", params=either)) == ["broken", "failing"]
    defined = {"source": ["api", "seed"]}
    assert names(await client.get("/tasks", params=defined)) == ["api-job", "seeded"]
    both = {"source": "folder", "status": "never"}
    assert names(await client.get("/tasks", params=both)) == ["fresh"]
    nothing = await client.get("/tasks", params={"q": "no such text"})
    assert names(nothing) == []
    assert nothing.headers["X-Total-Count"] == "0"


async def test_sort_orders(tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask) -> None:
    await every_state(tasse, make_task)

    async def order(sort: str) -> list[str]:
        return names(await client.get("/tasks", params={"sort": sort}))

    assert await order("-name") == sorted(STATES, reverse=True)
    # the next fire soonest first (hourly, then every 5 hours); tasks that never fire last
    never_fire = ["api-job", "broken", "failing", "off", "seeded", "sleeper"]
    assert await order("next") == ["ok", "fresh", *never_fire]
    # the newest last run first (the live run is not an outcome yet); never run last
    never_ran = ["api-job", "broken", "fresh", "off", "seeded", "sleeper"]
    assert await order("last") == ["failing", "ok", *never_ran]
    # TaskState's order is the precedence: broken first, never last
    assert await order("state") == [
        "broken",
        "sleeper",
        "off",
        "failing",
        "ok",
        "api-job",
        "fresh",
        "seeded",
    ]
    newest = await client.get("/tasks", params={"sort": "last", "limit": 1})
    assert names(newest) == ["failing"]
    assert newest.headers["X-Total-Count"] == "8"


async def test_pages_follow_the_link_to_the_end(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    for index in range(7):
        make_task(f"t{index}", HOURLY)
    await tasse.rescan()

    seen, url = [], "/tasks?limit=3&sort=-name"
    while True:
        answer = await client.get(url)
        assert answer.headers["X-Total-Count"] == "7"
        seen.append(names(answer))
        if "Link" not in answer.headers:
            break
        url = answer.links["next"]["url"]

    assert seen == [["t6", "t5", "t4"], ["t3", "t2", "t1"], ["t0"]]
    assert url == "http://tasse/tasks?limit=3&sort=-name&offset=6"
    assert names(await client.get("/tasks", params={"offset": 5})) == ["t5", "t6"]
    assert names(await client.get("/tasks", params={"offset": 9, "limit": 3})) == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
        {"status": "sleeping"},
        {"source": "git"},
        {"sort": "age"},
        {"q": "x" * 201},
    ],
)
async def test_bad_listing_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    answer = await client.get("/tasks", params=params)
    assert answer.status_code == 422
    assert next(iter(params)) in answer.json()["detail"][0]["loc"]  # the parameter is named


async def test_counts_cover_every_state_and_source_and_a_days_runs(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    await every_state(tasse, make_task)
    old = datetime.now(UTC) - timedelta(days=2)
    tasse.store.add(_run("ok", old, RunStatus.failed, ended=old + timedelta(minutes=1)))
    assert await asyncio.to_thread(tasse.records.wait_written, 10)  # counts are the store's

    answer = await client.get("/counts")

    assert answer.headers["X-Tasse-Pending-Records"] == "0"
    counts = answer.json()

    assert counts["tasks"] == {
        "total": 8,
        "by_state": {
            "broken": 1,
            "paused": 0,
            "running": 1,
            "disabled": 1,
            "failed": 1,
            "ok": 1,
            "never": 3,
        },
        "by_source": {"folder": 6, "api": 1, "seed": 1},
    }
    runs = counts["runs"]
    assert runs["by_status"] == {status.value: 0 for status in RunStatus} | {
        "succeeded": 1,
        "failed": 1,
        "running": 1,
    }
    since = datetime.fromisoformat(runs["since"])
    assert abs(since - (datetime.now(UTC) - timedelta(days=1))) < timedelta(seconds=10)
    earlier = (await client.get("/counts", params={"since": old.isoformat()})).json()
    assert earlier["runs"]["by_status"]["failed"] == 2


def _run(task: str, start: datetime, status: RunStatus, ended: datetime | None = None) -> Run:
    return Run(
        id=f"{start:%Y%m%d-%H%M%S-%f}-{task[:6]:0>6}",
        task=task,
        trigger=RunTrigger.schedule,
        status=status,
        scheduled_at=start,
        started_at=start,
        finished_at=ended,
    )


async def test_runs_across_tasks_in_a_window_a_live_run_included(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    await every_state(tasse, make_task)
    now = datetime.now(UTC)
    hours = [now - timedelta(hours=h) for h in range(6)]
    tasse.store.add(
        _run("gone", hours[5], RunStatus.succeeded, ended=hours[5] + timedelta(minutes=1)),
        _run("gone", hours[3], RunStatus.timed_out, ended=hours[1]),  # began before, ended in
        _run("ok", hours[2], RunStatus.succeeded, ended=hours[2] + timedelta(minutes=1)),
    )
    assert await asyncio.to_thread(tasse.records.wait_written, 10)
    window = {"since": hours[2].isoformat(), "until": hours[1].isoformat()}

    answer = await client.get("/runs", params=window)

    assert answer.status_code == 200, answer.text
    listed = [(run["task"], run["status"]) for run in answer.json()]
    assert listed == [("ok", "succeeded"), ("gone", "timed_out")]
    open_ended = await client.get("/runs", params={"since": hours[2].isoformat()})
    since_then = [run["task"] for run in open_ended.json()]
    assert since_then[:3] == ["sleeper", "failing", "ok"]  # the newest first, the live one too
    live = await client.get("/runs", params={"status": "running"})
    assert [run["task"] for run in live.json()] == ["sleeper"]
    mine = await client.get("/runs", params={"task": ["gone", "nobody"], "limit": 1})
    assert [run["status"] for run in mine.json()] == ["timed_out"]
    after = {"task": "gone", "before": mine.json()[0]["id"]}
    assert [run["status"] for run in (await client.get("/runs", params=after)).json()] == [
        "succeeded"
    ]
    assert answer.headers["X-Tasse-Pending-Records"].isdigit()


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 10_001},
        {"since": "yesterday"},
        {"status": "done"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    ],
)
async def test_bad_run_listing_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    assert (await client.get("/runs", params=params)).status_code == 422


async def test_runs_the_writer_still_holds_are_listed_in_their_newest_state(
    tmp_path: Path,
) -> None:
    store = RunStore("memory://")
    records = RecordWriter(store, Journal(tmp_path / "journal"))  # not started: it holds all
    timeline = Timeline(store, records, lambda: None)
    now = datetime.now(UTC)
    started = _run("a", now - timedelta(minutes=5), RunStatus.running)
    store.add(started, _run("b", now - timedelta(minutes=4), RunStatus.succeeded, ended=now))
    ended = started.model_copy(update={"status": RunStatus.failed, "finished_at": now})
    new = _run("a", now - timedelta(minutes=1), RunStatus.running)
    records.put_runs([ended, new])
    try:
        listed = await timeline.runs(RunWindow(since=now - timedelta(minutes=2)))
        assert [(run.task, run.status) for run in listed] == [
            ("a", RunStatus.running),
            ("b", RunStatus.succeeded),
            ("a", RunStatus.failed),
        ]
        # ended before the window, as the writer knows: no longer listed as running there
        none = await timeline.runs(RunWindow(since=now + timedelta(seconds=1)))
        assert none == []
        strips = await timeline.recent_outcomes(["a", "c"], 20)
        assert [run.status for run in strips["a"]] == [RunStatus.running, RunStatus.failed]
        assert strips["c"] == []
    finally:
        store.close()


async def test_recent_outcomes_are_each_tasks_newest_runs(
    tasse: Tasse, make_task: MakeTask
) -> None:
    make_task("flaky", None, "import os\nraise SystemExit(int(os.environ['TASSE_PARAM_CODE']))")
    await tasse.rescan()
    for code in ("0", "1", "0"):
        run = tasse.run_now("flaky", RunRequest(params={"CODE": code}))
        await finished(tasse, run.id)

    strips = await tasse.recent_outcomes(["flaky", "nobody"], 2)

    assert [run.status for run in strips["flaky"]] == [RunStatus.succeeded, RunStatus.failed]
    assert strips["nobody"] == []
