"""What people see of the notifications: the history page (the store's rows merged with the
newer states the delivery threads hold), the Problems, and a row as the API shows it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasse.notify.delivery import Delivery
from tasse.store.outbox import Notice, OutboxTable
from tasse.store.runs import RunStore


async def page(
    store: RunStore,
    table: OutboxTable,
    delivery: Delivery,
    filters: tuple[str | None, str | None, datetime | None],
    limit: int,
) -> list[Notice]:
    """Notifications newest first, the store's merged with newer states in memory."""
    task, status, before = filters
    stored = await store.off_loop(lambda: table.page(task, status, before, limit))
    newest = {notice.id: notice for notice in stored}
    for notice in delivery.recent():
        if (
            (task is None or notice.task == task)
            and (status is None or notice.status.value == status)
            and (before is None or notice.created_at < before)
        ):
            newest[notice.id] = notice
        elif notice.id in newest:
            del newest[notice.id]  # its newer state no longer fits the filters
    ordered = sorted(newest.values(), key=lambda n: (n.created_at, n.id), reverse=True)
    return ordered[:limit]


def problems(delivery: Delivery, target_problems: dict[str, str]) -> list[tuple[str, str]]:
    """Failing targets and bad task targets: (subject, detail)."""
    found = [
        (
            health.shown,
            f"{health.failures_in_a_row} failed attempt(s) in a row since "
            f"{health.failing_since:%Y-%m-%d %H:%M:%S} UTC: {health.last_error}"
            + (f"; {health.given_up} notification(s) given up" if health.given_up else ""),
        )
        for health in delivery.targets.values()
        if health.failing_since is not None or health.given_up
    ]
    return found + sorted(target_problems.items())


def public(notice: Notice) -> dict[str, Any]:
    """A notification as the API shows it (its target masked, its message's text)."""
    return {
        "id": notice.id,
        "task": notice.task,
        "events": list(notice.events),
        "run_id": notice.run_id,
        "target": notice.shown_target,
        "status": notice.status.value,
        "attempts": notice.attempts,
        "created_at": notice.created_at,
        "next_attempt_at": notice.next_attempt_at,
        "sent_at": notice.sent_at,
        "error": notice.error,
        "title": notice.payload.get("title"),
        "reason": notice.payload.get("reason"),
    }
