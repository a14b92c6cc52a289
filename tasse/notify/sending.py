"""Sending one notification (on a delivery thread), and the test message.

A message's last log lines are read here, when it is sent: the loop never reads a file for
a message. The target's scheme picks the way out: `webhook+` a signed POST, any other an
Apprise URL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tasse.errors import DeliveryError, NotifyTargetError
from tasse.notify import apprise_sender, message, webhook
from tasse.notify.addressing import Addressing, check
from tasse.notify.targets import parse_entry, webhook_parts
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.outbox import Notice


class Sender:
    """Sends a notification to its target (the delivery threads' `Send`)."""

    def __init__(self, addressing: Addressing, layout: LogLayout, settings: Settings):
        self._addressing = addressing
        self._layout = layout
        self._log_lines = settings.notify_log_lines
        self._timeout = settings.notify_timeout

    def __call__(self, notice: Notice) -> None:
        target = self._addressing.known.get(notice.target)
        if target is None:
            raise DeliveryError(notice.shown_target, "is not configured any more")
        tail: list[str] = []
        if notice.run_id:
            log = self._layout.run_log(notice.task, notice.run_id)
            tail = message.log_tail(log, self._log_lines)
        if target.is_webhook:
            url, secret = webhook_parts(target.url)
            body = {**notice.payload, "id": notice.id, "log_tail": tail}
            webhook.post(url, secret, notice.id, body, self._timeout)
        else:
            title, text = message.render(notice.payload, tail)
            apprise_sender.send(target.url, title, text, self._timeout)


def rows_of_a_test(
    addressing: Addressing, wanted: str | None, public_url: str | None
) -> list[Notice]:
    """Rows of a test message to a target (a URL, a tag or a target key; all by default)."""
    if wanted and "://" in wanted:
        target = parse_entry(wanted, "the test target")
        check(target, "the test target")
        addressing.known.setdefault(target.key, target)
        chosen = [target]
    else:
        chosen = [
            t for t in addressing.targets if not wanted or wanted in t.tags or wanted == t.key
        ]
    if not chosen:
        raise NotifyTargetError(wanted or "(all)", "names no configured target")
    now = datetime.now(UTC)
    payload = message.payload("(test)", ["test"], "a test sent from Tasse", None, (), public_url)
    return [
        Notice(
            id=f"test-{now:%Y%m%d%H%M%S%f}-{target.key}",
            task="(test)",
            events=("test",),
            run_id=None,
            target=target.key,
            shown_target=addressing.shown_of(target),
            created_at=now,
            payload=payload,
        )
        for target in chosen
    ]
