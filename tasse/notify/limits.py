"""The rate limit: a flapping task does not flood a target.

Per task and target: the first message goes out at once and opens a window
(`notify_rate_window`, 5 minutes by default); messages within the window are held, and
when it ends they go out as one digest, which opens the next window. A task that fails
every minute thus sends its first failure at once and then one digest every 5 minutes.
Tests and the "send a test" button are never held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tasse.notify import message
from tasse.store.outbox import Notice, NoticeStatus

#: (task, target key)
Key = tuple[str, str]


@dataclass
class _Window:
    opened_at: datetime
    held: list[Notice] = field(default_factory=list)


class RateLimit:
    """Which messages go out now, which are held, and which digests are due."""

    def __init__(self, window: float):
        self._window = timedelta(seconds=window)
        self._open: dict[Key, _Window] = {}

    def admit(self, notice: Notice, now: datetime) -> bool:
        """True: send it now (a window opens). False: it is held for the next digest."""
        if not self._window:
            return True
        key = (notice.task, notice.target)
        window = self._open.get(key)
        if window is None or (now - window.opened_at >= self._window and not window.held):
            self._open[key] = _Window(now)
            return True
        window.held.append(notice)
        return False

    def held_again(self, notice: Notice) -> None:
        """A row held before a restart: in the digest of a window opened when it was made."""
        key = (notice.task, notice.target)
        window = self._open.setdefault(key, _Window(notice.created_at))
        window.held.append(notice)

    def due(self, now: datetime) -> list[list[Notice]]:
        """The held messages of each window that has ended; each digest opens a new window."""
        digests = []
        for key, window in list(self._open.items()):
            if now - window.opened_at < self._window:
                continue
            if window.held:
                digests.append(window.held)
                self._open[key] = _Window(now)
            else:
                del self._open[key]  # quiet for a whole window: the next message goes at once
        return digests


def digest_of(held: list[Notice], now: datetime, public_url: str | None) -> list[Notice]:
    """One window's held rows marked digested, and the digest that tells of them (last)."""
    first = held[0]
    lines = [
        f"{notice.created_at:%H:%M:%S} {', '.join(notice.events)}: "
        f"{notice.payload.get('reason', '')}"
        for notice in held
    ]
    payload = message.payload(
        first.task,
        ["digest"],
        f"{len(held)} notification(s) held back by the rate limit",
        None,
        lines,
        public_url,
    )
    digest = first.but(
        id=f"digest-{first.id}"[:160],
        events=("digest",),
        run_id=None,
        created_at=now,
        status=NoticeStatus.pending,
        payload=payload,
    )
    return [*(n.but(status=NoticeStatus.digested, error=digest.id) for n in held), digest]
