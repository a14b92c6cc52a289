"""What a new user trips on in the first hour, through the HTTP app of a real Tasse.

A run in progress on its task, jitter among the policies, a deleted task's work folder,
the shapes of 422s, and logs that are not UTF-8.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tasse.http.text import as_text
from tasse.models import RunRequest
from tasse.service import Tasse
from tasse.tasks.definitions import TaskDefinition
from tests.conftest import MakeTask
from tests.http.test_task_listing import client, until
from tests.http.test_task_listing import finished as ended

pytestmark = pytest.mark.anyio
HOURLY = "scheduler: {trigger: interval, hours: 1}\n"
__all__ = ["client"]  # the fixture, used by name


# -- a run in progress -------------------------------------------------------------------


async def test_a_task_shows_its_run_in_progress(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    make_task("sleeper", HOURLY, "import time\nprint('started', flush=True)\ntime.sleep(30)\n")
    await tasse.rescan()
    assert (await client.get("/tasks/sleeper")).json()["active_runs"] == []
    run = tasse.run_now("sleeper", RunRequest())
    await until(lambda: tasse.dispatcher.active(run.id).process is not None)  # type: ignore[union-attr]

    shown = (await client.get("/tasks/sleeper")).json()

    assert shown["state"] == "running"
    assert [(r["id"], r["status"]) for r in shown["active_runs"]] == [(run.id, "running")]
    assert shown["active_runs"][0]["started_at"] is not None
    listed = (await client.get("/tasks")).json()
    assert [r["id"] for t in listed if t["name"] == "sleeper" for r in t["active_runs"]] == [run.id]

    await client.post(f"/runs/{run.id}/cancel")
    await ended(tasse, run.id)
    shown = (await client.get("/tasks/sleeper")).json()
    assert shown["active_runs"] == []
    assert (shown["last_run"]["id"], shown["last_run"]["status"]) == (run.id, "cancelled")


# -- the policy shown ---------------------------------------------------------------------


async def test_the_policy_shown_has_the_jitter_in_force(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    make_task("jittery", HOURLY + "jitter: 7.5\n")
    make_task("steady", HOURLY)
    await tasse.rescan()

    assert (await client.get("/tasks/jittery")).json()["policy"]["jitter"] == 7.5
    assert (await client.get("/tasks/steady")).json()["policy"]["jitter"] == 0


# -- a deleted task's work folder ---------------------------------------------------------


async def test_deleting_a_defined_task_removes_its_work_folder(
    tasse: Tasse, client: httpx.AsyncClient
) -> None:
    await tasse.catalog.create(TaskDefinition(name="writer", command=["sh", "-c", "echo x > out"]))
    await ended(tasse, tasse.run_now("writer", RunRequest()).id)
    work = tasse.settings.data_dir / "work" / "writer"
    assert (work / "out").read_text() == "x\n"

    assert (await client.delete("/tasks/writer")).status_code == 204

    await until(lambda: not work.exists())
    assert (tasse.settings.data_dir / "work").is_dir()  # the other tasks' folders stay


async def test_a_live_run_keeps_its_work_folder_until_it_ends(
    tasse: Tasse, client: httpx.AsyncClient
) -> None:
    slow = ["sh", "-c", "sleep 1; echo done > out; cat out"]
    await tasse.catalog.create(TaskDefinition(name="slow", command=slow))
    run = tasse.run_now("slow", RunRequest())
    work = tasse.settings.data_dir / "work" / "slow"

    assert (await client.delete("/tasks/slow")).status_code == 204
    await asyncio.sleep(0.3)
    assert work.is_dir()  # the run is still working in it

    await ended(tasse, run.id)
    assert (await tasse.get_run(run.id)).status.value == "succeeded"
    await until(lambda: not work.exists())


async def test_a_task_defined_again_keeps_its_work_folder(tasse: Tasse) -> None:
    await tasse.catalog.create(TaskDefinition(name="again", command=["true"]))
    work = tasse.settings.data_dir / "work" / "again"
    (work / "keep").write_text("kept")
    await tasse.catalog.delete("again")
    await tasse.catalog.create(TaskDefinition(name="again", command=["true"]))
    await asyncio.sleep(0.3)
    assert work.is_dir()


# -- 422s, as the README documents them ---------------------------------------------------


async def test_a_422_from_request_checks_has_a_list_of_problems(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    make_task("hello", HOURLY)
    await tasse.rescan()

    answer = await client.post("/tasks/hello/run", json={"args": "not a list"})

    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, list)
    assert set(detail[0]) == {"type", "loc", "msg"}
    assert detail[0]["loc"] == ["body", "args"]


async def test_a_422_for_a_new_definitions_bad_key_names_it_in_the_list(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/tasks", json={"name": "x", "comand": ["true"]})

    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert (problem["type"], problem["loc"]) == ("extra_forbidden", ["body", "comand"])


async def test_a_422_for_a_replaced_definition_is_one_message_with_the_near_key(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.put("/tasks/x", json={"comand": ["true"]})

    assert answer.status_code == 422
    assert answer.json()["detail"].endswith("unknown key 'comand'; did you mean 'command'?")


# -- logs that are not UTF-8 --------------------------------------------------------------

ODD_BYTES = b"\xff\xfe caf\xe9 \x00 ok \xc3\xa9\n"
WRITE_ODD = f"import sys\nsys.stdout.buffer.write({ODD_BYTES!r})\n"


async def test_a_log_that_is_not_utf8_is_text_for_a_browser_and_raw_on_request(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    make_task("latin", HOURLY, WRITE_ODD)
    await tasse.rescan()
    run = tasse.run_now("latin", RunRequest())
    await ended(tasse, run.id)

    text = await client.get(f"/runs/{run.id}/log")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["x-content-type-options"] == "nosniff"
    assert text.content.decode("utf-8") == ODD_BYTES.decode("utf-8", "replace")
    assert "\ufffd\ufffd caf\ufffd" in text.text
    assert text.text.endswith(" ok é\n")

    raw = await client.get(f"/runs/{run.id}/log", params={"raw": "true"})
    assert raw.content == ODD_BYTES
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"] == f'attachment; filename="{run.id}.log"'

    page = await client.get(f"/runs/{run.id}", headers={"Accept": "text/html"})
    assert "caf\ufffd" in page.text
    assert f'href="/runs/{run.id}/log?raw=true"' in page.text


async def test_a_character_split_between_chunks_is_kept_whole() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"caf\xc3", b"\xa9 na\xefve \xe2\x82", b"\xac", b"\xe2"):
            yield chunk

    assert b"".join([c async for c in as_text(chunks())]).decode() == "café na\ufffdve €\ufffd"


async def test_the_env_log_is_shown_as_text_too(
    tasse: Tasse, client: httpx.AsyncClient, make_task: MakeTask
) -> None:
    make_task("with-env", HOURLY)
    await tasse.rescan()
    log: Path = tasse.layout.env_log("with-env")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"pip says caf\xe9\n")

    answer = await client.get("/tasks/with-env/env/log")

    assert answer.text == "pip says caf\ufffd\n"
    assert answer.headers["x-content-type-options"] == "nosniff"
