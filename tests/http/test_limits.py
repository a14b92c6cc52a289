"""Request bodies over `max_request_bytes`: a 413 naming the limit, and the server unharmed."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

from tests.conftest import StartServer
from tests.http.test_api import wait_until

MIB = 1024 * 1024
JSON = {"content-type": "application/json"}


def big_definition(size: int) -> bytes:
    """A valid-looking task definition padded to about `size` bytes."""
    return json.dumps({"name": "big", "command": ["true"], "description": "x" * size}).encode()


def test_a_body_declared_too_long_is_refused_unread(start_server: StartServer) -> None:
    server = start_server()
    server.task("hello", None)
    wait_until(lambda: server.http.get("/tasks/hello").status_code == 200)
    refused = server.http.post("/tasks", content=big_definition(2 * MIB), headers=JSON)
    assert refused.status_code == 413
    assert str(MIB) in refused.json()["detail"]
    # Refused before the route ran: a run route that ignores the body starts nothing.
    assert server.http.post("/tasks/hello/run", content=b" " * (2 * MIB)).status_code == 413
    assert server.http.get("/tasks/hello/runs").json() == []
    assert server.http.get("/tasks/big").status_code == 404
    assert server.http.get("/health").status_code == 200
    accepted = server.http.post("/tasks", json={"name": "small", "command": ["true"]})
    assert accepted.status_code == 201


def test_a_chunked_body_is_counted_and_refused_at_the_limit(start_server: StartServer) -> None:
    server = start_server()
    body = big_definition(2 * MIB)

    def chunks() -> Iterator[bytes]:  # no length known up front: Transfer-Encoding: chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/tasks", chunks(), JSON)
        response = connection.getresponse()
        detail = json.loads(response.read())["detail"]
    finally:
        connection.close()
    assert response.status == 413
    assert str(MIB) in detail
    assert server.http.get("/tasks/big").status_code == 404
    assert server.http.get("/health").status_code == 200


def test_the_limit_is_a_setting(start_server: StartServer) -> None:
    server = start_server(TASSE_MAX_REQUEST_BYTES="4096")
    refused = server.http.post("/tasks", content=big_definition(5000), headers=JSON)
    assert refused.status_code == 413
    assert "4096" in refused.json()["detail"]
    accepted = server.http.post("/tasks", content=big_definition(3000), headers=JSON)
    assert accepted.status_code == 201, accepted.text
