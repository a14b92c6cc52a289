"""Who hears of a task's events: its own targets and the server's it picks by tag, one outbox
row per target, each admitted now or held by the rate limit.

Targets are read once: a task's URL is parsed (and checked by Apprise) the first time it is
used, and a target's masked form is worked out once, since Apprise's privacy form costs a
parse each time. A task target that cannot be used is kept as a Problem, not raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tasse.errors import NotifyTargetError
from tasse.notify import apprise_sender
from tasse.notify.limits import RateLimit
from tasse.notify.targets import Target, masked_webhook, parse_entry
from tasse.store.outbox import Notice, NoticeStatus
from tasse.tasks.notify_spec import NotifySpec


class Addressing:
    """The server's targets, the tasks' own, and the rows that address them."""

    def __init__(self, targets: list[Target], limit: RateLimit):
        for target in targets:
            check(target, "TASSE_NOTIFY")
        self.targets = targets
        #: every target a row may name, by key (the server's, the tasks', the tests')
        self.known = {target.key: target for target in targets}
        #: each task target's URL, read once (or why it cannot be used)
        self._parsed: dict[str, Target | NotifyTargetError] = {}
        self._shown: dict[str, str] = {}
        #: task → why one of its own targets cannot be used
        self.problems: dict[str, str] = {}
        self._limit = limit

    def notices(
        self,
        task: str,
        spec: NotifySpec,
        events: Sequence[str],
        cause: str,
        run_id: str | None,
        payload: dict[str, Any],
    ) -> list[Notice]:
        """One row per target of the task, each admitted now or held by the rate limit."""
        now = datetime.now(UTC)
        notices = []
        for target in self.targets_of(task, spec):
            notice = Notice(
                id=f"{cause}-{target.key}",
                task=task,
                events=tuple(events),
                run_id=run_id,
                target=target.key,
                shown_target=self.shown_of(target),
                created_at=now,
                payload=payload,
            )
            if not self._limit.admit(notice, now):
                notice = notice.but(status=NoticeStatus.held)
            notices.append(notice)
        return notices

    def targets_of(self, task: str, spec: NotifySpec) -> list[Target]:
        """The task's own targets, and the server's it picks by tag (or, naming none, the
        untagged ones)."""
        chosen = []
        for url in spec.targets:
            target = self._parsed.get(url) or self._parse(url, f"task {task}: notify.targets")
            if isinstance(target, NotifyTargetError):
                self.problems[task] = str(target)
                continue
            chosen.append(target)
        wanted = set(spec.tags)
        for target in self.targets:
            if (target.tags & wanted) if wanted else not target.tags and not spec.targets:
                chosen.append(target)
        return chosen

    def _parse(self, url: str, where: str) -> Target | NotifyTargetError:
        try:
            target = parse_entry(url, where)
            check(target, where)
        except NotifyTargetError as error:
            self._parsed[url] = error
            return error
        self._parsed[url] = self.known.setdefault(target.key, target)
        return target

    def shown_of(self, target: Target) -> str:
        """The target as it may be shown (secrets masked), worked out once."""
        if target.key not in self._shown:
            self._shown[target.key] = shown(target)
        return self._shown[target.key]


def shown(target: Target) -> str:
    """A target as it may be shown anywhere: every secret masked."""
    if target.is_webhook:
        return masked_webhook(target.url)
    return apprise_sender.shown(target.url)


def check(target: Target, where: str) -> None:
    """Raise NotifyTargetError if Apprise cannot use the target's URL."""
    if not target.is_webhook:
        apprise_sender.check(target.url, where)
