"""Connections a client never completes, too many of them, too few file descriptors.

A real `tasse serve` on 127.0.0.1, real sockets: slow and half-sent requests are closed
after the request timeout while the API answers and runs start; beyond the cap new
connections get 503; with a low open-file limit, runs still start and accept errors are
logged once per burst.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tasse.http.server import limits_for
from tasse.settings import Settings
from tests.http.test_api import Server, wait_until

#: the start of a request that never ends: a request line and one header
PARTIAL = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
TICK = "scheduler: {trigger: interval, seconds: 1}\n"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    """Servers a test starts itself (with limits of its own); each is stopped after."""
    (tmp_path / "data" / "tasks").mkdir(parents=True)
    started: list[Server] = []
    yield started
    for server in started:
        if server.process is not None and server.process.poll() is None:
            code, output = server.stop()
            assert code == 0, output
        server.http.close()


def start(servers: list[Server], tmp_path: Path, open_files: int = 0, **env: str) -> Server:
    server = Server(tmp_path / "data", env)
    if open_files:
        # Soft and hard: neither the server nor its runs may raise it back.
        server.preexec = lambda: resource.setrlimit(
            resource.RLIMIT_NOFILE, (open_files, open_files)
        )
    servers.append(server)
    server.start()
    return server


def partial_request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(PARTIAL)
    sock.setblocking(False)
    return sock


def is_closed(sock: socket.socket) -> bool:
    """True once the server has closed the connection (whatever it said before)."""
    try:
        while data := sock.recv(65536):
            del data
        return True  # b"": the server closed it
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def trickle(sock: socket.socket) -> None:
    """One more header byte, as slowloris sends them, to look alive."""
    with contextlib.suppress(OSError):
        sock.send(b"X")


def timed_get(port: int, path: str) -> float:
    """Seconds a GET on a new connection takes; it must answer 200."""
    started = time.perf_counter()
    response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    assert response.status_code == 200, response.text
    return time.perf_counter() - started


def test_limits_leave_runs_half_the_open_files() -> None:
    settings = Settings(_env_file=None)
    few = limits_for(settings, 256)
    assert (few.max_connections, few.backlog) == (64, 21)
    assert few.max_connections + 3 * few.backlog <= 128
    usual = limits_for(settings, 1024)
    assert (usual.max_connections, usual.backlog) == (256, 85)
    many = limits_for(settings, 1 << 20)
    assert (many.max_connections, many.backlog) == (256, 2048)  # the setting, uvicorn's queue
    assert limits_for(Settings(http_max_connections=10, _env_file=None), 256).max_connections == 10


def test_slowloris_connections_are_closed_and_the_server_answers(
    servers: list[Server], tmp_path: Path
) -> None:
    server = start(servers, tmp_path, TASSE_HTTP_REQUEST_TIMEOUT="2")
    server.task("hello", None)
    wait_until(lambda: server.http.get("/tasks/hello").status_code == 200)
    opened = time.monotonic()
    attackers = [partial_request(server.port) for _ in range(200)]
    open_ = set(attackers)
    latencies: list[float] = []
    run = server.http.post("/tasks/hello/run").json()
    deadline = opened + 8
    while open_ and time.monotonic() < deadline:
        for sock in list(open_):
            trickle(sock)
            if is_closed(sock):
                open_.discard(sock)
        latencies.append(timed_get(server.port, "/health"))
        time.sleep(0.2)
    closed_after = time.monotonic() - opened
    for sock in attackers:
        sock.close()

    assert not open_, f"{len(open_)} of 200 slowloris connections still open"
    assert 1.5 < closed_after < 5  # the request timeout (2 s), not the trickled bytes, ends them
    assert max(latencies) < 1.0, latencies
    assert server.finished(run["id"])["status"] == "succeeded"
    assert server.http.get("/health").status_code == 200


def test_a_half_sent_request_is_answered_408_in_json(servers: list[Server], tmp_path: Path) -> None:
    server = start(servers, tmp_path, TASSE_HTTP_REQUEST_TIMEOUT="1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(PARTIAL)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"content-type: application/json" in head
    assert "within 1 s" in json.loads(body)["detail"]


def test_an_idle_keep_alive_connection_is_closed(servers: list[Server], tmp_path: Path) -> None:
    server = start(servers, tmp_path, TASSE_HTTP_IDLE_TIMEOUT="1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(PARTIAL + b"\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()
        while sock.recv(65536):  # until the server closes the idle connection
            pass
        assert 0.8 < time.monotonic() - answered < 3


def test_a_malformed_request_is_answered_400_in_json(servers: list[Server], tmp_path: Path) -> None:
    server = start(servers, tmp_path)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["detail"]


def answer_of(sock: socket.socket, timeout: float = 2.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.setblocking(True)
    sock.settimeout(timeout)
    return b"".join(iter(lambda: sock.recv(65536), b""))


def test_at_the_cap_a_new_connection_takes_the_longest_waiting_ones_place(
    servers: list[Server], tmp_path: Path
) -> None:
    server = start(servers, tmp_path, TASSE_HTTP_MAX_CONNECTIONS="8")
    server.http.close()  # its kept-alive connection would count against the cap
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    idle.sendall(PARTIAL + b"\r\n")
    answer = b""
    while not answer.endswith(b"}"):  # the whole JSON answer of /health
        answer += idle.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")  # then it idles, kept alive
    held = [idle]
    for _ in range(7):
        time.sleep(0.05)  # so "the longest waiting" is well defined
        held.append(partial_request(server.port))
    base = f"http://127.0.0.1:{server.port}"
    fresh = httpx.Client(base_url=base, headers={"connection": "close"})  # a new one each
    try:
        assert fresh.get("/health").status_code == 200  # in place of the idle one
        assert answer_of(idle) == b""  # closed as an idle one is: without a word
        held.append(partial_request(server.port))  # at the cap again
        assert fresh.get("/tasks").status_code == 200  # in place of the first half-sent
        head, _, body = answer_of(held[1]).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert "make room" in json.loads(body)["detail"]
        assert not any(is_closed(sock) for sock in held[2:])
    finally:
        fresh.close()
        for sock in held:
            sock.close()
    log = server.output.read_text()
    assert log.count("to make room") == 1  # once per burst, not per connection


def test_when_every_connection_is_being_answered_a_new_one_is_refused(
    servers: list[Server], tmp_path: Path
) -> None:
    server = start(servers, tmp_path, TASSE_HTTP_MAX_CONNECTIONS="4")
    server.task("slow", None, script="import time\nprint('begun', flush=True)\ntime.sleep(30)")
    wait_until(lambda: server.http.get("/tasks/slow").status_code == 200)
    run = server.http.post("/tasks/slow/run").json()
    server.http.close()
    url = f"http://127.0.0.1:{server.port}/runs/{run['id']}/log?follow=true"
    with contextlib.ExitStack() as streams:
        readers = []  # a dropped reader would close its stream
        for _ in range(4):  # four answers in progress, none of them waiting
            client = streams.enter_context(httpx.Client(timeout=10))
            readers.append(streams.enter_context(client.stream("GET", url)).iter_bytes())
            assert next(readers[-1]).startswith(b"begun")
        # Refused at once, before its request is read: a client that has sent one may see
        # a reset instead of the 503, as the server closes with the request unread.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            head, _, body = answer_of(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), head
    assert "too many connections" in json.loads(body)["detail"]
    assert "refused a connection" in server.output.read_text()
    cancel = httpx.post(f"http://127.0.0.1:{server.port}/runs/{run['id']}/cancel")
    assert cancel.status_code == 200


def flood(port: int, seconds: float, threads: int = 4, at_least: int = 0) -> int:
    """Keep opening half-sent requests from several threads, as an attacker would: for
    `seconds`, and on (three times as long at most) until `at_least` were opened."""
    stop = time.monotonic() + seconds
    hard_stop = time.monotonic() + 3 * seconds
    opened = [0] * threads

    def going() -> bool:
        now = time.monotonic()
        return now < stop or (sum(opened) < at_least and now < hard_stop)

    def attack(index: int) -> None:
        socks: list[socket.socket] = []
        while going():
            try:
                socks.append(partial_request(port))
                opened[index] += 1
            except OSError:
                time.sleep(0.01)  # refused or timed out: the server is at its limits
            if len(socks) >= 150:
                socks.pop(0).close()
        for sock in socks:
            sock.close()

    workers = [threading.Thread(target=attack, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=3 * seconds + 30)
    return sum(opened)


def test_with_few_file_descriptors_runs_still_start(servers: list[Server], tmp_path: Path) -> None:
    server = start(servers, tmp_path, open_files=256, TASSE_HTTP_REQUEST_TIMEOUT="2")
    counter = tmp_path / "ticks.txt"
    server.task("tick", TICK, script=f"open({str(counter)!r}, 'a').write('x')")
    wait_until(lambda: counter.exists(), timeout=10)
    ticks_before = len(counter.read_text())

    opened = flood(server.port, seconds=6, at_least=300)  # slower on a loaded machine

    ticks = len(counter.read_text()) - ticks_before
    assert opened > 256  # more connections than the server has descriptors
    assert ticks >= 4, "runs stopped starting during the flood"
    runs = wait_until(lambda: server.http.get("/tasks/tick/runs").json())
    assert {r["status"] for r in runs} <= {"succeeded", "running"}, runs
    log = server.output.read_text()
    accept_errors = [line for line in log.splitlines() if "cannot accept connections" in line]
    assert len(accept_errors) <= 3  # once per burst, if the descriptors ran out at all
    assert log.count("Too many open files") == len(accept_errors)  # and nothing else failed


ACCEPTOR = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    from tasse.http.bursts import BurstLog, quiet_accept_errors

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    held = []

    class Hold(asyncio.Protocol):
        def connection_made(self, transport):
            held.append(transport)

    async def main():
        loop = asyncio.get_running_loop()
        if sys.argv[1] == "quiet":
            loop.set_exception_handler(quiet_accept_errors(BurstLog(window=1.5), 64))
        server = await loop.create_server(Hold, "127.0.0.1", 0, backlog=2048)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(float(sys.argv[2]))

    asyncio.run(main())
    """
)


def accept_errors_logged(mode: str, seconds: float) -> str:
    """What a bare asyncio server with 64 descriptors logs while 150 connections wait."""
    child = subprocess.Popen(
        [sys.executable, "-c", ACCEPTOR, mode, str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    port = int(child.stdout.readline())
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
    _, log = child.communicate(timeout=30)
    for client in clients:
        client.close()
    return log


def test_accept_errors_are_logged_once_per_burst() -> None:
    loud = accept_errors_logged("default", seconds=0.5)
    quiet = accept_errors_logged("quiet", seconds=2.5)
    # asyncio's own handler: one report per failed accept() (cpython #151615)
    assert loud.count("socket.accept() out of system resource") > 1
    assert "socket.accept()" not in quiet
    assert quiet.count("cannot accept connections: Too many open files") == 1
    # asyncio retries each second: the burst goes on, summed up once per window (1.5 s)
    assert quiet.count("more accept errors in the last 1.5 s") == 1
    assert len(quiet.splitlines()) == 2
