"""Real receivers on loopback: a webhook server that checks the signature, an SMTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.ports import free_port

SECRET = "s3cret-for-tests"
#: a signature older than this is a replay
MAX_AGE = 300


def verify(secret: str, headers: Any, body: bytes, now: float | None = None) -> bool:
    """The check docs/notifications.md shows a receiver: signature, then freshness."""
    timestamp = headers.get("X-Tasse-Timestamp", "")
    given = headers.get("X-Tasse-Signature", "")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    if not hmac.compare_digest(given, "sha256=" + expected.hexdigest()):
        return False
    return timestamp.isdigit() and abs((now or time.time()) - int(timestamp)) <= MAX_AGE


class Webhook:
    """An HTTP server on loopback keeping each correctly signed message (and counting the rest)."""

    def __init__(self, port: int | None = None, secret: str = SECRET):
        self.port = port or free_port()
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.rejected = 0
        self._server: ThreadingHTTPServer | None = None
        self.arrived = threading.Condition()

    @property
    def target(self) -> str:
        return f"webhook+http://127.0.0.1:{self.port}/hook?secret={self.secret}"

    def start(self) -> Webhook:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not verify(receiver.secret, self.headers, body):
                    receiver.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver.arrived:
                    receiver.received.append(json.loads(body))
                    receiver.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(
        self, count: int = 1, timeout: float = 15.0, where: Callable[[dict[str, Any]], bool] = bool
    ) -> list[dict[str, Any]]:
        """The messages received once `count` of them match `where` (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(found := [m for m in self.received if where(m)]) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(found)} of {count} message(s) came: {self.received}"
                self.arrived.wait(left)
        return found


class Mailbox:
    """An SMTP server on loopback (aiosmtpd) keeping every mail it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[EmailMessage] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def target(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=tasse@example.org&to=ops@example.org"

    async def handle_DATA(  # noqa: N802 (aiosmtpd calls it by this name)
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        mail = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append(mail)
        return "250 OK"

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, count: int = 1, timeout: float = 15.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count:
            assert time.monotonic() < deadline, f"{len(self.mails)} of {count} mail(s) came"
            time.sleep(0.02)
        return self.mails
