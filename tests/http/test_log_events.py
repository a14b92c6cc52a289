"""`GET /runs/{id}/log/events` end to end: a real server, real runs, their output live."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from tasse.events import SLICE
from tasse.http.events import LogBeat
from tests.conftest import StartServer
from tests.http.sse import Block, Stream
from tests.http.test_api import Server, wait_until

TIMED = """
import time
time.sleep(0.5)
for _ in range(20):
    print(time.time(), flush=True)
    time.sleep(0.05)
"""
BIG = """
import sys
sys.stdout.write(("x" * 99 + "\\n") * 3000)
sys.exit(3)
"""


def open_log(server: Server, run_id: str, query: str = "", **headers: str) -> Stream:
    return Stream(f"http://127.0.0.1:{server.port}/runs/{run_id}/log/events{query}", headers)


def read_to_end(stream: Stream) -> list[Block]:
    try:
        return stream.until(lambda block: block.event == "end")
    finally:
        stream.close()


def finished_run(server: Server, name: str, script: str) -> str:
    server.task(name, None, script=script)
    wait_until(lambda: server.http.get(f"/tasks/{name}").status_code == 200)
    run_id: str = server.http.post(f"/tasks/{name}/run").json()["id"]
    server.finished(run_id)
    return run_id


def test_lines_reach_an_open_page_as_they_are_printed(start_server: StartServer) -> None:
    server = start_server()
    server.task("timed", None, script=TIMED)
    wait_until(lambda: server.http.get("/tasks/timed").status_code == 200)
    run_id = server.http.post("/tasks/timed/run").json()["id"]
    blocks = read_to_end(open_log(server, run_id))
    assert blocks[0].retry == "3000"
    logs = [block for block in blocks if block.event == "log"]
    latencies = sorted(
        block.at - float(line) for block in logs for line in (block.data or "").splitlines() if line
    )
    assert len(latencies) == 20
    # Usually all within a few ms; a busy machine may stall a few lines for a moment.
    assert sum(latency < 0.1 for latency in latencies) >= 15, latencies
    assert latencies[-1] < 1.0, latencies
    assert len(logs) >= 10  # sent as they came, not at the end
    assert blocks[-1].json["status"] == "succeeded"
    assert blocks[-1].json["run"]["id"] == run_id


def test_each_piece_is_whole_lines_with_its_byte_offset_as_id(start_server: StartServer) -> None:
    server = start_server()
    run_id = finished_run(server, "words", 'print("one\\ntwo ü\\r\\nthree\\rfour")')
    blocks = read_to_end(open_log(server, run_id))
    (log,) = [block for block in blocks if block.event == "log"]
    # Any line break ends an SSE line: "\r\n" and "\r" arrive as "\n".
    assert log.data == "one\ntwo ü\nthree\nfour\n"
    assert log.id == str(len("one\ntwo ü\r\nthree\rfour\n".encode()))
    assert blocks[-1].json["status"] == "succeeded"


def test_a_page_resumes_at_the_byte_offset_it_had(start_server: StartServer) -> None:
    server = start_server()
    run_id = finished_run(server, "counts", 'print("one\\ntwo\\nthree")')
    again = read_to_end(open_log(server, run_id, **{"Last-Event-ID": "4"}))
    assert [(b.id, b.data) for b in again if b.event == "log"] == [("14", "two\nthree\n")]
    fallback = read_to_end(open_log(server, run_id, "?last_event_id=8"))
    assert [(b.id, b.data) for b in fallback if b.event == "log"] == [("14", "three\n")]
    done = read_to_end(open_log(server, run_id, **{"Last-Event-ID": "14"}))
    assert [b.event for b in done if b.data is not None] == ["end"]


def test_a_big_log_starts_with_its_last_256_kib_and_says_so(start_server: StartServer) -> None:
    server = start_server()
    run_id = finished_run(server, "big", BIG)
    blocks = read_to_end(open_log(server, run_id))
    truncated = [block for block in blocks if block.event == "truncated"]
    assert len(truncated) == 1
    note = truncated[0].json
    assert note["size"] == 300_000
    assert note["log"] == f"/runs/{run_id}/log"
    assert 300_000 - 256 * 1024 <= note["offset"] < 300_000 - 256 * 1024 + 100
    logs = [block for block in blocks if block.event == "log"]
    text = "".join(block.data or "" for block in logs)
    assert text == ("x" * 99 + "\n") * ((300_000 - note["offset"]) // 100)
    assert logs[-1].id == "300000"
    whole = server.http.get(note["log"])
    assert len(whole.content) == 300_000  # the link gives all of it
    assert blocks[-1].json["status"] == "failed"
    assert blocks[-1].json["run"]["exit_code"] == 3


def test_an_unknown_run_is_404(start_server: StartServer) -> None:
    server = start_server()
    answer = httpx.get(
        f"http://127.0.0.1:{server.port}/runs/20260101-000000-000000-abcdef/log/events"
    )
    assert answer.status_code == 404
    assert "20260101-000000-000000-abcdef" in answer.json()["detail"]


@pytest.mark.anyio
async def test_live_logs_send_on_one_tick_a_few_per_turn_of_the_loop() -> None:
    beat = LogBeat(period=0.05)
    loop = asyncio.get_running_loop()
    began = loop.time()
    waits = [asyncio.ensure_future(beat.tick()) for _ in range(SLICE * 2 + 1)]
    await asyncio.wait(waits, timeout=1, return_when=asyncio.FIRST_COMPLETED)
    # A line waits for the next tick, never longer than the period (and a busy box).
    assert loop.time() - began < 0.05 + 0.03
    woken = [sum(w.done() for w in waits)]
    for _ in range(8):
        await asyncio.sleep(0)  # one turn of the loop
        woken.append(sum(w.done() for w in waits))
    # Each turn lets a few more send, so a fire due meanwhile runs between them.
    assert woken[-1] == len(waits)
    assert all(0 <= b - a <= SLICE for a, b in itertools.pairwise(woken))
    assert woken[0] < len(waits)  # not all in one turn
