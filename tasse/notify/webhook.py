"""The signed webhook: a JSON POST whose signature a receiver checks with the shared secret.

Headers: `X-Tasse-Timestamp` (Unix seconds when it was signed), `X-Tasse-Signature:
sha256=<hex>`, the HMAC-SHA256 with the secret of `<timestamp>.<body>`, and
`X-Tasse-Notification` (the notification's id, the same on every attempt: a receiver
that keeps the ids it has seen takes a message once however often it comes). A receiver
rejects a timestamp more than a few minutes off its clock (a replay) and a signature that
does not match (docs/notifications.md shows the check). Stdlib HTTP: one POST per message
needs no client library, and `http/` keeps the web stack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from tasse.errors import DeliveryError

USER_AGENT = "Tasse-notify/1"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of `X-Tasse-Signature` for this body, signed at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def post(
    url: str, secret: str | None, notice_id: str, payload: dict[str, Any], timeout: float
) -> None:
    """POST the payload as JSON, signed if there is a secret; DeliveryError unless a 2xx."""
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Tasse-Timestamp": timestamp,
        "X-Tasse-Notification": notice_id,
    }
    if secret:
        headers["X-Tasse-Signature"] = signature(secret, timestamp, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(65536)
    except urllib.error.HTTPError as error:
        raise DeliveryError(url, f"answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(url, f"cannot be reached: {reason}") from None
