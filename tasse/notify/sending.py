"""Sending one notification (on a delivery thread), and the test message.

A message's last log lines are read here, when it is sent: the loop never reads a file for
a message (in a cluster, a run on another node or worker: from its API). The target's
scheme picks the way out: `webhook+` a signed POST, any other an Apprise URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from tasse.errors import DeliveryError, NotifyTargetError
from tasse.notify import apprise_sender, message, webhook
from tasse.notify.addressing import Addressing, check
from tasse.notify.targets import parse_entry, webhook_parts
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.outbox import Notice

logger = logging.getLogger(__name__)


#: reads the last `size` bytes of a run's log from the node that ran it, within `timeout`
#: seconds: None when the log is this node's (`cluster/log_tails.py`)
TailElsewhere = Callable[[str, int, float], bytes | None]


class Sender:
    """Sends a notification to its target (the delivery threads' `Send`)."""

    def __init__(
        self,
        addressing: Addressing,
        layout: LogLayout,
        settings: Settings,
        tail_elsewhere: TailElsewhere | None = None,
    ):
        self._addressing = addressing
        #: the end of a run's log kept by another node (a worker), or None: it is here
        self._tail_elsewhere = tail_elsewhere
        self._layout = layout
        self._log_lines = settings.notify_log_lines
        self._timeout = settings.notify_timeout

    def __call__(self, notice: Notice) -> None:
        target = self._addressing.known.get(notice.target)
        if target is None:
            raise DeliveryError(notice.shown_target, "is not configured any more")
        tail: list[str] = []
        if notice.run_id and self._log_lines > 0:
            tail = self._tail(notice.task, notice.run_id)
        if target.is_webhook:
            url, secret = webhook_parts(target.url)
            body = {**notice.payload, "id": notice.id, "log_tail": tail}
            webhook.post(url, secret, notice.id, body, self._timeout)
        else:
            title, text = message.render(notice.payload, tail)
            apprise_sender.send(target.url, title, text, self._timeout)

    def _tail(self, task: str, run_id: str) -> list[str]:
        if self._tail_elsewhere is not None:
            try:
                data = self._tail_elsewhere(run_id, message.TAIL_BYTES, self._timeout)
            except OSError as error:  # the message goes without its log lines
                logger.warning("run %s: its log could not be read for a message: %s", run_id, error)
                return []
            if data is not None:
                return message.tail_lines(data, self._log_lines, len(data) == message.TAIL_BYTES)
        return message.log_tail(self._layout.run_log(task, run_id), self._log_lines)


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
