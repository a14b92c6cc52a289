"""`serve(settings)`: uvicorn runs the app, with the bounds on connections it lacks.

uvicorn closes a keep-alive connection that stays idle (`timeout_keep_alive`), but has no
timeout for a request that never completes (uvicorn #157): a client sending its headers a
byte at a time holds a connection, and a file descriptor, for ever (slowloris). Nor does
it bound connections that have not sent a request (`limit_concurrency` answers requests).
`BoundedH11` is uvicorn's h11 protocol with both: a deadline armed when a connection opens
or a request begins and cancelled once the request is in, and a cap on open connections.

Refusals, timeouts and accept errors are logged once per burst (`bursts`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from tasse.http.app import create_app
from tasse.http.bursts import BurstLog, LoopExceptionHandler, quiet_accept_errors
from tasse.http.events import end_streams
from tasse.settings import Settings

logger = logging.getLogger(__name__)

#: the client's h11 states while its request is still arriving
_RECEIVING = (h11.IDLE, h11.SEND_BODY)


@dataclass(frozen=True)
class Limits:
    """What one server allows its connections."""

    request_timeout: float
    idle_timeout: float
    max_connections: int
    #: the listen queue, and how many connections asyncio accepts per wake-up
    backlog: int
    #: seconds a client may take no data before its connection is closed
    write_timeout: float = 30.0


def limits_for(settings: Settings, open_files: int) -> Limits:
    """The limits for these settings in a process that may open `open_files` descriptors.

    HTTP gets at most half of them, so runs, their logs and the store keep the rest: a
    quarter for open connections, and a quarter for a burst of new ones being accepted
    beyond the cap (asyncio accepts up to `backlog` at a time, and about three such
    batches are open before the first is refused and closed).
    """
    cap = max(1, min(settings.http_max_connections, open_files // 4))
    backlog = min(2048, max(16, (open_files // 2 - cap) // 3))
    return Limits(
        settings.http_request_timeout,
        settings.http_idle_timeout,
        cap,
        backlog,
        settings.http_write_timeout,
    )


class BoundedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request and a cap on connections.

    At the cap, a new connection takes the place of the one that has waited longest
    without a request in progress (still sending one, or idle between two), so clients
    that hold connections open cannot lock others out; only when every connection is
    being answered is the newcomer refused. A client that takes no data for
    `write_timeout` seconds (it stopped reading a live stream) is cut off: asyncio would
    buffer for it without end, and uvicorn would wait for it at shutdown.
    """

    #: set on the subclass `protocol_for` makes for one server
    limits: ClassVar[Limits]
    bursts: ClassVar[BurstLog]
    #: this server's connections without a request in progress, longest waiting first
    waiting: ClassVar[dict[BoundedH11, None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._begun = False  # a byte of the current request has arrived
        self._stalled: asyncio.TimerHandle | None = None  # armed while writing is paused

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            self.bursts.note(
                "connections refused (limit reached)",
                logging.WARNING,
                "refused a connection from %s: %d connections are open and all are being "
                "answered (TASSE_HTTP_MAX_CONNECTIONS, or a quarter of the open-file limit)",
                _peer(self.client),
                self.limits.max_connections,
            )
            self._answer_and_close(503, "too many connections are open; try again later")
            return
        self._arm()  # a connection that never sends a whole request is closed

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state in _RECEIVING:
            if self._deadline is None:
                self._arm()  # the next request on a kept-alive connection begins
            self._begun = True
        super().data_received(data)
        if self.conn.their_state not in _RECEIVING:
            self._disarm()  # it is in: answering it may take as long as it takes
            self._begun = False

    def on_response_complete(self) -> None:
        super().on_response_complete()  # this may start a pipelined request at once
        if not (self.transport.is_closing() or self._answering or self._deadline is not None):
            self.waiting[self] = None  # idle until its next request (uvicorn times that)

    @property
    def _answering(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.resume_writing()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stalled is None:
            self._stalled = self.loop.call_later(self.limits.write_timeout, self._cut_off)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def shutdown(self) -> None:
        """Stop gracefully; a client that is not reading now would keep the server waiting."""
        if self.flow.write_paused:
            self.transport.abort()
        else:
            super().shutdown()

    def _cut_off(self) -> None:
        self._stalled = None
        self.bursts.note(
            "connections closed: the client took no data",
            logging.INFO,
            "closed a connection to %s: it took no data for %g s (TASSE_HTTP_WRITE_TIMEOUT)",
            _peer(self.client),
            self.limits.write_timeout,
        )
        self.transport.abort()  # not close(): that would wait to send what is buffered

    def _make_room(self) -> bool:
        """Close the connection that has waited longest; False if none is waiting."""
        oldest = next(iter(self.waiting), None)
        if oldest is None:
            return False
        if oldest.transport.is_closing():  # on its way out already: that is the room
            oldest._disarm()
            return True
        self.bursts.note(
            "connections closed to make room (limit reached)",
            logging.WARNING,
            "closed a waiting connection from %s to make room for one from %s: %d "
            "connections are open (TASSE_HTTP_MAX_CONNECTIONS, or a quarter of the "
            "open-file limit)",
            _peer(oldest.client),
            _peer(self.client),
            self.limits.max_connections,
        )
        oldest._close(503, "closed to make room for another connection; try again later")
        return True

    def send_400_response(self, msg: str) -> None:
        """A malformed request: uvicorn answers it in plain text, Tasse in JSON."""
        self._answer_and_close(400, msg)

    def _arm(self) -> None:
        self._begun = False
        self._deadline = self.loop.call_later(self.limits.request_timeout, self._expired)
        self.waiting.pop(self, None)
        self.waiting[self] = None  # the newest waiting: last to make room

    def _disarm(self) -> None:
        self.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.bursts.note(
            "connections closed with an incomplete request",
            logging.INFO,
            "closed a connection from %s: no whole request within %g s "
            "(TASSE_HTTP_REQUEST_TIMEOUT)",
            _peer(self.client),
            self.limits.request_timeout,
        )
        seconds = self.limits.request_timeout
        self._close(408, f"the request did not arrive within {seconds:g} s")

    def _close(self, status: int, detail: str) -> None:
        """Close a connection waiting for its request; answer `status` if it began one."""
        self._disarm()
        if self._begun and not self._answering:
            self._answer_and_close(status, detail)
        else:  # idle, or the app has the request (with part of its body) and sees it go
            self.transport.close()

    def _answer_and_close(self, status: int, detail: str) -> None:
        # Written past h11: the request is incomplete, malformed or not begun, and the
        # connection closes right after, so h11's view of it no longer matters.
        body = json.dumps({"detail": detail}).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown peer"


def protocol_for(limits: Limits, bursts: BurstLog) -> type[BoundedH11]:
    """`BoundedH11` bound to one server's limits (uvicorn builds protocols from a class)."""

    class Bound(BoundedH11):
        pass

    Bound.limits = limits
    Bound.bursts = bursts
    Bound.waiting = {}
    return Bound


class _Server(uvicorn.Server):
    """uvicorn's server, with our exception handler on the loop it runs in; at shutdown
    `stopping` ends the live streams first (uvicorn waits for every open response)."""

    def __init__(
        self, config: uvicorn.Config, handler: LoopExceptionHandler, stopping: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self.handler = handler
        self.stopping = stopping

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(self.handler)
        await super().serve(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the live streams, then shut down as uvicorn does."""
        self.stopping()
        await super().shutdown(sockets)


def open_files_limit() -> int:
    """How many file descriptors this process may open (its soft RLIMIT_NOFILE)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def serve(settings: Settings, worker: bool = False) -> bool:
    """Serve the API (a `tasse worker`'s: its runs' logs) until a stop signal; False if the
    server never started."""
    open_files = open_files_limit()
    limits = limits_for(settings, open_files)
    bursts = BurstLog(logger)
    if worker:  # a worker's application (procrastinate's import: only there)
        from tasse.http.worker_app import create_worker_app

        app = create_worker_app(settings)
    else:
        app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # The limits are built on these two: h11 (not httptools, even when installed),
        # and asyncio's own loop, whose accept errors the handler knows.
        http=protocol_for(limits, bursts),
        loop="asyncio",
        backlog=limits.backlog,
        timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type]  # a float will do
    )
    logger.info(
        "HTTP: at most %d connections (open-file limit %d), a request must arrive within "
        "%g s, idle connections close after %g s",
        limits.max_connections,
        open_files,
        limits.request_timeout,
        limits.idle_timeout,
    )
    server = _Server(config, quiet_accept_errors(bursts, open_files), lambda: end_streams(app))
    # uvicorn re-raises the stop signal after its graceful shutdown so the process dies of
    # it; a stop we handled cleanly should exit 0 (what Docker and systemd expect).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    server.run()
    return server.started
