"""Live streams, as server-sent events: `GET /events` and `GET /runs/{run_id}/log/events`.

Both open like the API's reads (no token), send a `retry:` hint first, a heartbeat
comment when quiet, and end cleanly when the server stops (`end_streams`). A client that
stops reading is dropped: from `/events` once its queue is full (`EventHub`), from either
once it has taken no data for `http_write_timeout` seconds (`server.BoundedH11`).

Live logs send on a shared beat (`LogBeat`): a stream with new output waits for the next
`LOG_BEAT` tick, and the streams waiting for a tick send in the same few turns of the loop.
A send wakes the client; sent apart, each wakes it on its own (20 pages following runs
that print every 100 ms, 200 such sends a second, cost the loop a fifth of its time, more
than forking 40 runs a second; docs/benchmarks.md, issue 13), sent together they share
the wake-ups of a client, or of the proxy in front, that reads several. A line waits
`LOG_BEAT` at most for its tick; what a run writes meanwhile is read and goes on it too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse

from tasse.events import SLICE, Interest, Subscription
from tasse.http.api import RunId, TasseDep
from tasse.http.failures import guarded
from tasse.http.proxy import from_log_home
from tasse.runs.live_log import Piece, Text, Truncated
from tasse.service import Tasse
from tasse.values import TASK_NAME_PATTERN

#: milliseconds a client waits before it reconnects (the `retry:` hint)
RETRY_MS = 3000
#: response headers: no cache or proxy may hold events back
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: seconds between the ticks on which live logs send what they gathered
LOG_BEAT = 0.05
#: pieces of a live log read ahead of its client, at most
HELD = 16
#: how the routes are shown in the OpenAPI document
STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}

router = APIRouter()

Types = Annotated[
    str | None,
    Query(
        pattern=r"^[a-z.]{1,40}(,[a-z.]{1,40}){0,9}$",
        description="only these event types, comma-separated (`task` means every `task.*`)",
    ),
]
TaskFilter = Annotated[
    str | None, Query(pattern=TASK_NAME_PATTERN, description="only events of this task")
]
LastEventId = Annotated[
    str | None, Header(max_length=40, description="resume after this event (EventSource sends it)")
]
LastEventIdQuery = Annotated[
    str | None,
    Query(alias="last_event_id", max_length=40, description="the same, for clients without it"),
]


@router.get("/events", response_class=StreamingResponse, responses=STREAM)
async def events(
    tasse: TasseDep,
    types: Types = None,
    task: TaskFilter = None,
    last_event_id: LastEventId = None,
    after: LastEventIdQuery = None,
) -> StreamingResponse:
    """Run and task changes as they happen (README, "Live events"); resumes after an id."""
    interest = Interest(frozenset(types.split(",")) if types else frozenset(), task)
    resume = last_event_id if last_event_id is not None else after
    # An id that is not one of ours (not a number) cannot be resumed: it gets `reset`.
    last_id = None if resume is None else int(resume) if resume.strip().isdigit() else -1
    subscription = tasse.events.subscribe(interest, last_id)
    # A new client learns the newest id at once, so a reconnect misses nothing even
    # before its first event; a resuming one keeps its own until the missed ones arrive.
    prelude = f"retry: {RETRY_MS}\n" + (f"id: {tasse.events.last_id}\n" if last_id is None else "")
    frames = _event_frames(subscription, prelude + "\n", tasse.settings.events_heartbeat)
    return StreamingResponse(frames, media_type="text/event-stream", headers=HEADERS)


async def _event_frames(
    subscription: Subscription, prelude: str, heartbeat: float
) -> AsyncIterator[bytes]:
    try:
        yield prelude.encode()
        while True:
            events = subscription.take()
            if events:
                yield b"".join(event.frame for event in events)
            elif subscription.ended:
                return
            elif not await subscription.wait(heartbeat):
                yield _heartbeat(subscription.caught_up_id)
    finally:
        subscription.end()


def _heartbeat(caught_up: int | None) -> bytes:
    # With the newest id: a filtered stream's id moves on while what it skips goes by, so
    # a reconnect long after its last event still resumes instead of being reset.
    newest = "" if caught_up is None else f"id: {caught_up}\n"
    return f": heartbeat\n{newest}\n".encode()


@router.get("/runs/{run_id}/log/events", response_class=StreamingResponse, responses=STREAM)
async def run_log_events(
    run_id: RunId,
    request: Request,
    tasse: TasseDep,
    last_event_id: LastEventId = None,
    after: LastEventIdQuery = None,
) -> StreamingResponse:
    """The run's output live: its last 256 KiB, then lines as written, then `end`; in a
    cluster, from the node that runs it (relayed)."""
    # Its heartbeats come every events_heartbeat s: three missed, and the node is gone.
    quiet = 3 * tasse.settings.events_heartbeat
    if (relayed := await from_log_home(request, tasse, run_id, quiet)) is not None:
        return relayed
    resume = last_event_id if last_event_id is not None else after
    offset = int(resume) if resume is not None and resume.strip().isdigit() else None
    pieces = await tasse.live_log(run_id, offset)
    frames = _log_frames(tasse, run_id, pieces, _beat_of(request))
    frames = guarded(frames, f"the live log of run {run_id}")
    return StreamingResponse(frames, media_type="text/event-stream", headers=HEADERS)


async def _log_frames(
    tasse: Tasse, run_id: str, pieces: AsyncIterator[Piece], beat: LogBeat
) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    async for batch in _gathered(pieces, beat):
        yield b"".join(_piece_frame(run_id, piece) for piece in batch)
    if tasse.events.closed.is_set():
        return  # the server stops, not the run: the client reconnects and resumes
    run = await tasse.get_run(run_id)
    if run.status.is_final:
        yield _json_frame("end", {"status": run.status.value, "run": run.model_dump(mode="json")})


async def _gathered(pieces: AsyncIterator[Piece], beat: LogBeat) -> AsyncIterator[list[Piece]]:
    """The pieces as they come, those with output held to the next tick, all sent then."""
    got: list[Piece] = []
    more, room = asyncio.Event(), asyncio.Event()

    async def pump() -> None:
        # Read on while the last pieces wait for their tick (they all go on it), but not
        # far ahead of a client that reads slowly.
        try:
            async for piece in pieces:
                got.append(piece)
                more.set()
                if len(got) >= HELD:
                    room.clear()
                    await room.wait()
        finally:
            more.set()

    pumping = asyncio.ensure_future(pump())
    try:
        while True:
            await more.wait()
            if any(isinstance(piece, Text) for piece in got):
                await beat.tick()
            more.clear()
            batch, got[:] = got[:], []
            room.set()
            if batch:
                yield batch
            if pumping.done() and not got:
                pumping.result()  # (raises what reading the log raised)
                return
    finally:
        pumping.cancel()


def _piece_frame(run_id: str, piece: Piece) -> bytes:
    if isinstance(piece, Text):
        return _text_frame(piece)
    if isinstance(piece, Truncated):
        log = {"size": piece.size, "offset": piece.offset, "log": f"/runs/{run_id}/log"}
        return _json_frame("truncated", log)
    return b": heartbeat\n\n"


class LogBeat:
    """The live logs' shared tick: `tick` waits for the next one; on it, the streams
    waiting go on `SLICE` per turn of the loop (a fire due meanwhile waits for a few sends)."""

    def __init__(self, period: float = LOG_BEAT):
        self._period = period
        self._waiting: list[asyncio.Future[None]] = []
        self._due: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def tick(self) -> None:
        """Wait for the next tick (ticks fall on the loop clock's multiples of the period)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # (an app served again, on a new loop: start afresh)
            self._loop, self._waiting, self._due = loop, [], None
        future = loop.create_future()
        self._waiting.append(future)
        if self._due is None:
            at = (loop.time() // self._period + 1) * self._period
            self._due = loop.call_at(at, self._release)
        await future

    def _release(self) -> None:
        self._due = None
        waiting, self._waiting = self._waiting, []
        self._release_some(iter(waiting))

    def _release_some(self, rest: Iterator[asyncio.Future[None]]) -> None:
        for count, future in enumerate(rest, 1):
            if not future.done():  # (not a page that went away meanwhile)
                future.set_result(None)
            if count == SLICE:
                asyncio.get_running_loop().call_soon(self._release_some, rest)
                return


def _beat_of(request: Request) -> LogBeat:
    beat: LogBeat = request.app.state.log_beat  # one per app (`create_app`)
    return beat


def _text_frame(piece: Text) -> bytes:
    # A line break of any kind ends an SSE line: each line of the text is a `data:` line,
    # which the client joins with "\n" again (a lone "\r" arrives as a line break).
    lines = piece.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    data = "".join(f"data: {line}\n" for line in lines)
    return f"id: {piece.offset}\nevent: log\n{data}\n".encode()


def _json_frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def end_streams(app: FastAPI) -> None:
    """End every live stream: the server stops (uvicorn waits for open responses)."""
    tasse: Tasse | None = getattr(app.state, "tasse", None)
    if tasse is not None:
        tasse.events.close()
