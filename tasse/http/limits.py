"""`BodyLimit`: a request body above the limit gets 413, and is read no further.

uvicorn bounds only the request line and headers (`h11_max_incomplete_event_size`) and
the number of connections (`--limit-concurrency`); nothing bounds a body, which FastAPI
reads whole into memory before validating it. Starlette 1.x has a `max_body_size`, but
FastAPI >= 0.115 may come with an older Starlette, it answers in plain text, and a route
that never reads its body runs before that 413; this one refuses a declared length before
any route runs.
"""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(HTTPException):
    """The request body is longer than the server accepts (HTTP 413)."""

    def __init__(self, max_bytes: int):
        # An HTTPException: FastAPI passes it on while reading a body, and its handler
        # answers with the JSON `{"detail": ...}` every other error has.
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than the limit of {max_bytes} bytes "
            "(setting max_request_bytes)",
        )


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over `max_bytes`, declared or counted."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Refused unread, so even a route that ignores its body does not act on it.
            # The connection stays open: uvicorn discards the rest of the body, and the
            # client, still sending, then reads this answer rather than a reset.
            refusal = BodyTooLargeError(self.max_bytes)
            response = JSONResponse({"detail": refusal.detail}, status_code=413)
            await response(scope, receive, send)
            return
        await self.app(scope, _counting(receive, self.max_bytes), send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The server has already refused a malformed one (400); be safe regardless.
            return int(value) if value.isdigit() else None
    return None


def _counting(receive: Receive, max_bytes: int) -> Receive:
    # A chunked body declares no length: count it as it arrives, and stop at the limit
    # rather than after the whole body is in memory.
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise BodyTooLargeError(max_bytes)
        return message

    return counted
