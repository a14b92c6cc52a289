"""Failures are JSON: an unexpected error is a 500 with an id the log has too, never a traceback."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest

from tasse.errors import StoreUnavailableError
from tasse.http.app import create_app
from tasse.settings import Settings
from tests.conftest import StartServer
from tests.http.test_api import wait_until


def test_an_unexpected_error_is_a_500_with_an_id_in_the_log(start_server: StartServer) -> None:
    server = start_server()
    tasks = server.data_dir / "tasks"
    shutil.rmtree(tasks)
    tasks.write_text("a file where the tasks folder belongs\n")  # scanning it fails
    try:
        answer = server.http.post("/rescan")
    finally:
        tasks.unlink()
        tasks.mkdir()

    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["detail"] == "internal error"
    assert re.fullmatch(r"[0-9a-f]{12}", body["error_id"])
    log = server.output.read_text()
    logged = log[log.index(f"internal error {body['error_id']} in POST /rescan") :]
    assert "Traceback" in logged.splitlines()[1]
    assert "NotADirectoryError" in logged
    assert "Exception in ASGI application" not in log  # logged once, by us
    assert server.http.get("/health").status_code == 200


def test_a_log_stream_that_fails_ends_with_the_error_id(start_server: StartServer) -> None:
    server = start_server()
    server.task("hello", None)
    wait_until(lambda: server.http.get("/tasks/hello").status_code == 200)
    run = server.http.post("/tasks/hello/run").json()
    server.finished(run["id"])
    log_file = server.data_dir / "logs" / "hello" / "runs" / f"{run['id']}.log"
    log_file.unlink()
    log_file.mkdir()  # reading it now fails (IsADirectoryError), after the 200 went out

    answer = server.http.get(f"/runs/{run['id']}/log", params={"follow": "true"})

    assert answer.status_code == 200
    last = answer.text.splitlines()[-1]
    error_id = re.fullmatch(
        rf"\[tasse: the log of run {run['id']} stopped: internal error (\w+)\]", last
    )
    assert error_id, answer.text
    log = server.output.read_text()
    assert f"internal error {error_id[1]} while streaming the log of run" in log
    assert "IsADirectoryError" in log
    assert "Exception in ASGI application" not in log


@pytest.mark.anyio
async def test_a_store_that_does_not_answer_is_a_503_naming_it(data_dir: Path) -> None:
    # Nothing in the store raises it yet (the writer will): a route of the test's does,
    # in an app without its lifespan (the route needs no Tasse).
    app = create_app(Settings(data_dir=data_dir, watch=False, _env_file=None))

    async def slow_store() -> None:
        raise StoreUnavailableError("postgresql://tasse@db:5432/tasse", "no answer within 5 s")

    app.add_api_route("/store-probe", slow_store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tasse") as client:
        answer = await client.get("/store-probe")
    assert answer.status_code == 503
    assert answer.json() == {
        "detail": "the job store postgresql://tasse@db:5432/tasse is not available: "
        "no answer within 5 s"
    }
