"""Talking to a running server over HTTP: JSON reads, plain text, and server-sent events.

Standard library only (`urllib`): the CLI must not need an HTTP client the server does not.
The server is this machine's or named by its address, so no proxy stands between.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPResponse
from typing import Any
from urllib.parse import urlencode

from tasse.errors import TasseError
from tasse.settings import Settings

#: seconds the server has to answer a request (a live stream's heartbeat comes every 15 s)
ANSWER_TIMEOUT = 10.0
#: seconds a live stream may stay silent: longer than the server's heartbeat
STREAM_TIMEOUT = 60.0
_JSON = "application/json"
_TOKEN_HINT = " (give the token: TASSE_API_TOKEN or --api-token-file)"


class ServerUnreachableError(TasseError):
    """No server answers at the address the CLI was told or defaults to."""

    def __init__(self, url: str, reason: object):
        self.url, self.reason = url, reason
        super().__init__(f"no server answers at {url} ({reason})")


class ServerRefusedError(TasseError):
    """The server answered with an error status; the message is its `detail`."""

    def __init__(self, url: str, status: int, detail: str):
        self.status = status
        hint = _TOKEN_HINT if status == 401 else ""
        super().__init__(f"{detail}{hint} (HTTP {status} from {url})")


@dataclass(frozen=True)
class Event:
    """One server-sent event: its type, its data lines joined by line breaks, and its id."""

    type: str
    data: str
    id: str | None


def default_url(settings: Settings) -> str:
    """The server's own listen address as a URL a client on this machine can reach."""
    host = settings.host
    # A server listening on every interface is reached through loopback.
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


class ServerApi:
    """The HTTP API of one server, at `url`, with the token if there is one."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def check(self) -> None:
        """Raise ServerUnreachableError unless the server answers (503 while degraded counts)."""
        with contextlib.suppress(ServerRefusedError):
            self.get_json("/health")

    def get_json(self, path: str, **query: Any) -> Any:
        """The JSON answer to GET `path`."""
        with self._open(path, query, ANSWER_TIMEOUT) as response:
            return json.load(response)

    def post_json(self, path: str, body: dict[str, Any], timeout: float = ANSWER_TIMEOUT) -> Any:
        """The JSON answer to POST `path` with a JSON body."""
        with self._open(path, {}, timeout, json.dumps(body).encode()) as response:
            return json.load(response)

    def get_bytes(self, path: str, **query: Any) -> bytes:
        """The body of GET `path`, as it comes."""
        with self._open(path, query, ANSWER_TIMEOUT) as response:
            body: bytes = response.read()
        return body

    def events(self, path: str, last_id: str | None = None) -> Iterator[Event]:
        """The server-sent events of `path`, as they arrive, until the server ends the stream."""
        query = {} if last_id is None else {"last_event_id": last_id}
        with self._open(path, query, STREAM_TIMEOUT) as response:
            yield from parse_events(response)

    def _open(
        self, path: str, query: dict[str, Any], timeout: float, body: bytes | None = None
    ) -> HTTPResponse:
        given = {key: value for key, value in query.items() if value is not None}
        url = self.url + path + (f"?{urlencode(given, doseq=True)}" if given else "")
        headers = self._headers if body is None else {**self._headers, "Content-Type": _JSON}
        method = "GET" if body is None else "POST"
        request = urllib.request.Request(url, body, headers, method=method)
        try:
            response: HTTPResponse = self._opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            raise ServerRefusedError(self.url, error.code, _detail(error)) from None
        except (urllib.error.URLError, OSError) as error:
            raise ServerUnreachableError(self.url, getattr(error, "reason", error)) from None
        return response


def parse_events(lines: Iterator[bytes]) -> Iterator[Event]:
    """Server-sent events from the stream's lines (the WHATWG format; comments skipped)."""
    kind, data, event_id = "message", list[str](), None
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield Event(kind, "\n".join(data), event_id)
            kind, data = "message", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read())["detail"]
    except (ValueError, KeyError, TypeError, OSError):
        return str(error.reason)
    return detail if isinstance(detail, str) else json.dumps(detail)
