"""`GET /events` end to end: a real `tasse serve`, real runs and folders, real streams."""

from __future__ import annotations

import socket
import time
from datetime import datetime

import pytest

from tests.conftest import StartServer
from tests.http.sse import Block, Stream
from tests.http.test_api import Server, wait_until

TICK = "scheduler: {trigger: interval, seconds: 1}\n"


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def runs_of(blocks: list[Block], run_id: str) -> list[str]:
    """The statuses the `run` events of one run carried, in order."""
    return [
        b.json["run"]["status"]
        for b in blocks
        if b.event == "run" and b.json["run"]["id"] == run_id
    ]


def is_final(run_id: str) -> object:
    def check(block: Block) -> bool:
        return (
            block.event == "run"
            and block.json["run"]["id"] == run_id
            and block.json["run"]["status"] not in ("queued", "running")
        )

    return check


def test_a_stream_opens_with_a_retry_hint_and_the_newest_id(start_server: StartServer) -> None:
    server = start_server()
    stream = Stream(url(server, "/events"))
    try:
        assert stream.status == 200
        first = stream.next()
        assert first is not None
        assert first.retry == "3000"
        assert first.id is not None
        assert int(first.id) > 0
        assert first.data is None  # no event: it only tells the client where it is
    finally:
        stream.close()


def test_a_manual_run_publishes_queued_running_and_its_outcome_in_order(
    start_server: StartServer,
) -> None:
    server = start_server()
    server.task("slow", "overlap: queue\n", script="import time; time.sleep(0.5)")
    wait_until(lambda: server.http.get("/tasks/slow").status_code == 200)
    stream = Stream(url(server, "/events?types=run"))
    try:
        first = server.http.post("/tasks/slow/run").json()["id"]
        second = server.http.post("/tasks/slow/run").json()["id"]  # waits for its turn
        blocks = stream.until(is_final(second))
    finally:
        stream.close()
    events = [block for block in blocks if block.data is not None]
    assert runs_of(events, first) == ["running", "succeeded"]
    assert runs_of(events, second) == ["queued", "running", "succeeded"]
    ids = [int(block.json["id"]) for block in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(block.id == str(block.json["id"]) for block in events)
    assert {block.json["task"] for block in events} == {"slow"}
    assert datetime.fromisoformat(events[0].json["at"]).tzinfo is not None


def test_tasks_from_folders_and_the_api_publish_their_changes(
    start_server: StartServer,
) -> None:
    server = start_server()
    stream = Stream(url(server, "/events?types=task.added,task.changed,task.removed"))
    try:
        folder = server.task("folder-task", None)
        assert stream.until(lambda b: b.data is not None)[-1].json["type"] == "task.added"
        (folder / "task.yaml").write_text("scheduler: {trigger: cron, hour: 25}\n")
        broken = stream.until(lambda b: b.data is not None)[-1].json
        assert (broken["type"], broken["task"], broken["what"]) == (
            "task.changed",
            "folder-task",
            "error",
        )
        assert "scheduler.hour" in broken["error"]

        body = {"name": "api-task", "command": ["sh", "-c", "echo hi"]}
        assert server.http.post("/tasks", json=body).status_code == 201
        assert server.http.patch("/tasks/api-task", json={"description": "d"}).status_code == 200
        assert server.http.delete("/tasks/api-task").status_code == 204
        told = [b.json for b in stream.until(lambda b: b.event == "task.removed")]
    finally:
        stream.close()
    assert [(e["type"], e["task"]) for e in told if e] == [
        ("task.added", "api-task"),
        ("task.changed", "api-task"),
        ("task.removed", "api-task"),
    ]
    assert told[-2]["what"] == "definition"


def test_an_environment_build_is_told_for_the_tasks_it_serves(start_server: StartServer) -> None:
    server = start_server()
    stream = Stream(url(server, "/events?types=task.env&task=needs-env"))
    try:
        server.task("needs-env", None)
        building = stream.until(lambda b: b.data is not None)[-1].json
        ready = stream.until(lambda b: b.data is not None)[-1].json
    finally:
        stream.close()
    assert building["tasks"] == ["needs-env"]
    assert (building["env"]["status"], ready["env"]["status"]) == ("building", "ready")
    assert ready["env"]["hash"] == building["env"]["hash"]
    assert ready["env"] == server.http.get("/tasks/needs-env").json()["env"]


def test_odd_queries_get_422(start_server: StartServer) -> None:
    server = start_server()
    for query in ("types=RUN", "types=run;drop", "task=../etc", "last_event_id=" + "9" * 41):
        answer = server.http.get(f"/events?{query}")
        assert answer.status_code == 422, query
        assert answer.json()["detail"]


def test_resuming_with_last_event_id_gets_exactly_the_missed_events(
    start_server: StartServer,
) -> None:
    server = start_server()
    server.task("quick", "overlap: queue\n")
    wait_until(lambda: server.http.get("/tasks/quick").status_code == 200)
    stream = Stream(url(server, "/events?types=run"))
    runs = [server.http.post("/tasks/quick/run").json()["id"] for _ in range(3)]
    try:
        for run_id in runs:
            wait_until(lambda run_id=run_id: server.finished(run_id))
        seen = stream.until(is_final(runs[-1]))
    finally:
        stream.close()
    events = [block for block in seen if block.data is not None]
    cut = len(events) // 2  # the client saw these, then its connection dropped
    last = str(events[cut - 1].id)
    # EventSource sends the header; a client that cannot may say it in the query.
    for path, headers in (
        ("/events?types=run", {"Last-Event-ID": last}),
        (f"/events?types=run&last_event_id={last}", {}),
    ):
        resumed = Stream(url(server, path), headers)
        try:
            again = resumed.events(timeout=1.5)
        finally:
            resumed.close()
        assert [b.id for b in again] == [b.id for b in events[cut:]]
        assert [b.data for b in again] == [b.data for b in events[cut:]]


def test_an_id_that_is_not_kept_gets_reset(start_server: StartServer) -> None:
    server = start_server()
    for resume in ("1", "not-a-number"):
        stream = Stream(url(server, "/events"), {"Last-Event-ID": resume})
        try:
            block = stream.until(lambda b: b.data is not None)[-1]
        finally:
            stream.close()
        assert block.event == "reset"
        assert "reload" in block.json["reason"]
        assert block.id is not None
        assert int(block.id) > 1


def test_a_quiet_stream_gets_heartbeats_that_carry_the_newest_id(
    start_server: StartServer,
) -> None:
    server = start_server(TASSE_EVENTS_HEARTBEAT="0.2")
    stream = Stream(url(server, "/events?types=run"))
    try:
        began = time.monotonic()
        beats = stream.until(lambda b: len(b.comments) > 0)
        beats += stream.until(lambda b: len(b.comments) > 0)
        elapsed = time.monotonic() - began
        server.task("quick", None)  # a task event: the heartbeat id moves past it
        wait_until(lambda: server.http.get("/tasks/quick").status_code == 200)
        later = stream.until(lambda b: "heartbeat" in b.comments)[-1]
    finally:
        stream.close()
    assert beats[-1].comments == ["heartbeat"]
    assert 0.2 <= elapsed < 3
    assert int(later.id or 0) > int(beats[-1].id or 0)


def slow_reader(port: int, path: str) -> socket.socket:
    """A client that asks for a stream and then never reads: a tiny receive window."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Read what is left; True once the server closed the connection."""
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 20):
            pass
    except TimeoutError:
        return False
    except OSError:
        pass  # reset: cut off
    return True


FLOOD = """
import sys, time
time.sleep(1)
for _ in range(8 * 1024):
    sys.stdout.write("x" * 1023 + "\\n")
sys.stdout.flush()
time.sleep(30)
"""


@pytest.mark.slow
def test_a_client_that_stops_reading_is_cut_off_and_the_schedule_keeps_time(
    start_server: StartServer,
) -> None:
    # (That /events drops a subscriber whose queue is full is tests/test_events.py's:
    # filling the kernel's buffers of a loopback connection takes megabytes of events.)
    server = start_server(TASSE_HTTP_WRITE_TIMEOUT="2")
    server.task("tick", TICK)
    server.task("flood", None, script=FLOOD)
    wait_until(lambda: server.http.get("/tasks/flood").status_code == 200)
    reader = Stream(url(server, "/events?types=run&task=tick"))
    flood = server.http.post("/tasks/flood/run").json()["id"]
    stuck = slow_reader(server.port, f"/runs/{flood}/log/events")
    began = time.time()
    try:
        wait_until(lambda: "took no data" in server.output.read_text(), timeout=20)
        assert closed_by_server(stuck, timeout=5)
        ticks = [b.json["run"] for b in reader.events(timeout=2.5)]
    finally:
        reader.close()
        stuck.close()
    assert "closed a connection to 127.0.0.1" in server.output.read_text()
    # The schedule kept time while the stream was stuck, and the other client heard of it.
    assert {run["status"] for run in ticks} >= {"running", "succeeded"}
    during = [
        run for run in server.http.get("/tasks/tick/runs").json() if at(run["scheduled_at"]) > began
    ]
    assert len(during) >= 3
    for run in during:
        assert at(run["started_at"]) - at(run["scheduled_at"]) < 0.5, run
    assert server.http.post(f"/runs/{flood}/cancel").status_code == 200


def test_the_server_stops_promptly_with_streams_open(start_server: StartServer) -> None:
    server = start_server()
    server.task("sleeper", None, script="import time; print('up', flush=True); time.sleep(60)")
    wait_until(lambda: server.http.get("/tasks/sleeper").status_code == 200)
    run_id = server.http.post("/tasks/sleeper/run").json()["id"]
    streams = [Stream(url(server, "/events")) for _ in range(5)]
    log = Stream(url(server, f"/runs/{run_id}/log/events"))
    assert log.until(lambda b: b.event == "log")[-1].data == "up\n"
    began = time.monotonic()
    code, output = server.stop()
    assert code == 0, output
    assert time.monotonic() - began < 4
    for stream in [*streams, log]:
        assert stream.ended(timeout=2)
    assert all(block is None or block.event != "end" for block in log.blocks.queue)
    for stream in [*streams, log]:
        stream.close()


def test_the_openapi_document_lists_the_streams(start_server: StartServer) -> None:
    server = start_server()
    paths = server.http.get("/openapi.json").json()["paths"]
    assert "text/event-stream" in paths["/events"]["get"]["responses"]["200"]["content"]
    assert "/runs/{run_id}/log/events" in paths
