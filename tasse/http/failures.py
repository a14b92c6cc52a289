"""Unexpected exceptions: a 500 JSON with an id, the same id in the log with the traceback.

Starlette answers an exception no handler takes with plain-text "Internal Server Error"
and hands it on to the server, which logs it without anything the client could quote.
`InternalErrors` answers `{"detail": "internal error", "error_id": ...}` instead; a
stream that fails after its first bytes cannot change its status any more, so `guarded`
ends it with a last line naming the id.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


def new_error_id() -> str:
    """A short random id to find one failure in the server log."""
    return secrets.token_hex(6)


class InternalErrors:
    """Pure ASGI middleware: an exception no handler took becomes a 500 JSON with an id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            error_id = new_error_id()
            logger.exception("internal error %s in %s %s", error_id, scope["method"], scope["path"])
            if started:
                # Too late for a status: returning unfinished makes the server close the
                # connection, so the client sees a cut answer, not a complete one.
                return
            answer = {"detail": "internal error", "error_id": error_id}
            await JSONResponse(answer, status_code=500)(scope, receive, send)


async def guarded(chunks: AsyncIterator[bytes], what: str) -> AsyncIterator[bytes]:
    """`chunks`, ended by a line naming an error id if producing them fails."""
    try:
        async for chunk in chunks:
            yield chunk
    except Exception:
        error_id = new_error_id()
        logger.exception("internal error %s while streaming %s", error_id, what)
        yield f"\n[tasse: {what} stopped: internal error {error_id}]\n".encode()
