"""One address for a thing, whoever asks: a browser gets the page, a script the JSON.

`/tasks/{name}`, `/runs/{id}` and `/problems` are API routes. A browser navigating there
(it asks for `text/html` first) is handed to the page under `/ui`; curl, fetch() and API
clients (`*/*`, `application/json`) get the API as before. Links in the pages, the log
and notifications can then name the API's address and still open a page in a browser.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PAGES = re.compile(r"^/(?:tasks/[^/]+|runs/[^/]+|problems|notifications|nodes)$")


def wants_html(accept: str) -> bool:
    """True when text/html is asked for before (or instead of) JSON."""
    html = accept.find("text/html")
    json = accept.find("application/json")
    return html >= 0 and (json < 0 or html < json)


class Negotiation:
    """Pure ASGI middleware: a browser's GET of a shared address goes to its page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not _PAGES.match(path):
            await self.app(scope, receive, send)
            return
        if wants_html(Headers(scope=scope).get("accept", "")):
            scope = dict(scope, path="/ui" + path, raw_path=("/ui" + path).encode())

        async def varied(message: Message) -> None:
            # Caches must keep the page and the JSON apart.
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"vary", b"Accept"))
            await send(message)

        await self.app(scope, receive, varied)
