"""The dead-man switches (`no_success_for`): a task with no success for longer than it allows
is told of once per silence, even when nothing runs. Checked by the notifier's periodic task.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from tasse.notify import message
from tasse.notify.addressing import Addressing
from tasse.notify.history import TaskHistory
from tasse.notify.outcomes import SpecOf
from tasse.store.outbox import Notice


class Silences:
    """Each watched task's last success against its `no_success_for`."""

    def __init__(
        self,
        addressing: Addressing,
        history: dict[str, TaskHistory],
        spec_of: SpecOf,
        public_url: str | None,
        started_at: datetime,
    ):
        self._addressing = addressing
        self._history = history
        self._spec_of = spec_of
        self._public = public_url
        #: a silent task counts from here when it never succeeded (the server's start)
        self.started_at = started_at
        #: task → when its silence was last told (read from the outbox at start)
        self.told: dict[str, datetime | None] = {}

    def watch(self, names: Iterable[str]) -> None:
        """Tasks known now (at start, after a rescan): their dead-man switches count from now."""
        for name in names:
            self._history.setdefault(name, TaskHistory())

    def check(self, now: datetime) -> list[Notice]:
        """Rows for the tasks silent for longer than they allow, not told yet."""
        notices = []
        for name, history in self._history.items():
            spec = self._spec_of(name)
            if spec is None or spec.no_success_for is None:
                continue
            since = history.last_success or self.started_at
            told = self.told.get(name)
            if now - since < timedelta(seconds=spec.no_success_for) or (told and told >= since):
                continue
            self.told[name] = now
            hours = (now - since).total_seconds() / 3600
            reason = f"no success for {hours:.1f} h (allowed: {spec.no_success_for / 3600:g} h)"
            payload = message.payload(name, ["no_success_for"], reason, None, (), self._public)
            cause = f"silent-{name}-{since:%Y%m%d%H%M%S}"
            notices += self._addressing.notices(
                name, spec, ["no_success_for"], cause, None, payload
            )
        return notices
