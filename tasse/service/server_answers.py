"""The server as a whole: health, metrics, cluster nodes, notifications."""

from __future__ import annotations

import asyncio
from datetime import datetime

from tasse.metrics.metrics import ServerState
from tasse.models import (
    RunStatus,
)
from tasse.service.parts import Parts
from tasse.store.outbox import Notice


class ServerAnswers(Parts):
    """Answers about the server itself, from memory where they can be."""

    async def notifications(
        self, task: str | None, status: str | None, before: datetime | None, limit: int
    ) -> list[Notice]:
        """Notifications newest first: sent, pending, held, given up."""
        return await self.notifier.page(task, status, before, limit)

    def notify_test(self, target: str | None) -> list[Notice]:
        """Queue a test message to a target (URL, tag or key; every server target by default)."""
        return self.notifier.send_test(target)

    async def scrape_metrics(self) -> bytes:
        """The text of `GET /metrics`: state read now on the loop, rendered on a thread."""
        live = self.dispatcher.live_statuses()
        state = ServerState(
            tasks=frozenset(self.registry.entries),
            broken=len(self.registry.errors().keys() | self.envs.failed()),
            running=live[RunStatus.running],
            queued=live[RunStatus.queued],
            pending_records=self.records.pending_count,
            journaled_records=self.records.journaled,
            next_fires=self.scheduler.next_run_times(),
        )
        # Rendering 10,000 tasks' lines takes milliseconds the loop has better use for.
        return await asyncio.to_thread(self.metrics.take(state).render)

    def health(self) -> dict[str, object]:
        """Liveness and readiness in one answer, from memory: it never waits on the store."""
        state = self.records.state
        pending = self.records.pending_count
        lag = self.lag.worst
        problems = []
        if not state.writable:
            problems.append(
                f"the job store {self.store.shown_address} cannot be written ({state.problem});"
                f" {pending} record(s) wait in the journal"
            )
        if lag > self.settings.health_max_lag:
            problems.append(f"the event loop lags {lag:.2f} s behind")
        answer: dict[str, object] = {
            "status": "degraded" if problems else "ok",
            "tasks": len(self.registry.entries),
            "errors": len(self.registry.errors().keys() | self.envs.failed()),
            "started_at": self.started_at,
            "store": {
                "address": self.store.shown_address,
                "writable": state.writable,
                "problem": state.problem,
                "failing_since": state.failing_since,
                "last_write_at": state.last_write_at,
            },
            "pending_records": pending,
            "journaled_records": self.records.journaled,
            "loop_lag": round(lag, 4),
        }
        if problems:
            answer["detail"] = "; ".join(problems)
        return answer
