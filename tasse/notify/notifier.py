"""The notifier: turns recorded outcomes into outbox rows, and keeps the outbox delivered.

`notices_for` is called where every run state is recorded (`Executor.record`), on the loop,
with the runs about to be handed to the writer: the rows it returns go in the same writer
operation, so an outcome and its notifications reach the store (or the journal) together.
It only computes and queues (`outcomes.py`); the delivery threads send (`delivery.py`,
`sending.py`). The dead-man switches (`silences.py`) and the digests (`limits.py`) are
checked by one small periodic task on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from tasse.errors import NotifyTargetError
from tasse.models import Run, RunStatus
from tasse.notify import views
from tasse.notify.addressing import Addressing
from tasse.notify.delivery import Backoff, Delivery
from tasse.notify.history import TaskHistory, history_from, history_of_last
from tasse.notify.limits import RateLimit, digest_of
from tasse.notify.outcomes import Outcomes, SpecOf
from tasse.notify.sending import Sender, TailElsewhere, rows_of_a_test
from tasse.notify.silences import Silences
from tasse.notify.targets import Target, read_targets
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.outbox import Notice, NoticeStatus, OutboxTable
from tasse.store.runs import RunStore
from tasse.store.writer import RecordWriter
from tasse.tasks.notify_spec import DEFAULT_EVENTS, Event, NotifySpec

logger = logging.getLogger(__name__)

_KNOWN_EVENTS = set(Event.__args__)  # type: ignore[attr-defined]


class Notifier:
    """Rules, targets, the rate limit and the outbox of one server."""

    def __init__(
        self,
        settings: Settings,
        store: RunStore,
        writer: RecordWriter,
        layout: LogLayout,
        spec_of: SpecOf,
        retries_of: Callable[[str], int],
        env_problem: Callable[[str], str | None],
        on_attempt: Callable[[bool], None] = lambda delivered: None,
        may_deliver: Callable[[], bool] = lambda: True,
        tail_elsewhere: TailElsewhere | None = None,
    ):
        self._settings = settings
        #: whether this server delivers and checks the dead-man switches now (in a cluster:
        #: only the scheduler node; docs/cluster.md)
        self._may_deliver = may_deliver
        self._store = store
        self._table = OutboxTable(store)
        unknown = set(settings.notify_on) - _KNOWN_EVENTS
        if unknown:
            raise NotifyTargetError("notify_on", f"names unknown events: {sorted(unknown)}")
        self._limit = RateLimit(settings.notify_rate_window)
        self._addressing = Addressing(
            read_targets(settings.notify, settings.notify_file), self._limit
        )
        self._history: dict[str, TaskHistory] = {}
        public = settings.public_url
        self._outcomes = Outcomes(
            self._addressing,
            self._history,
            spec_of,
            retries_of,
            env_problem,
            tuple(settings.notify_on) or DEFAULT_EVENTS,
            public,
        )
        self._silences = Silences(self._addressing, self._history, spec_of, public, self.now())
        backoff = Backoff(
            settings.notify_max_attempts, settings.notify_retry_first, settings.notify_retry_max
        )
        self.delivery = Delivery(
            writer,
            Sender(self._addressing, layout, settings, tail_elsewhere),
            backoff,
            settings.notify_workers,
            on_attempt=on_attempt,
            may_deliver=may_deliver,
        )
        self._writer = writer
        self._tick: asyncio.Task[None] | None = None
        #: rows made on the loop and not yet handed to the delivery threads
        self._to_deliver: list[Notice] = []

    def now(self) -> datetime:
        """The time the rules see (moved by `clock_shift` in tests of the dead-man switch)."""
        return datetime.now(UTC) + timedelta(seconds=self._settings.clock_shift)

    @property
    def targets(self) -> list[Target]:
        """The server's own targets (`TASSE_NOTIFY`, the targets file)."""
        return self._addressing.targets

    @property
    def target_problems(self) -> dict[str, str]:
        """Tasks whose own targets cannot be used, and why."""
        return self._addressing.problems

    @property
    def started_at(self) -> datetime:
        """When the dead-man switches of tasks that never succeeded started counting."""
        return self._silences.started_at

    def shown_of(self, target: Target) -> str:
        """The target as it may be shown (secrets masked), worked out once."""
        return self._addressing.shown_of(target)

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, last_runs: dict[str, Run], specs: dict[str, NotifySpec]) -> None:
        """Read what the rules need of the past, resume the pending rows, start delivering."""
        self._silences.started_at = self.now()
        for name, run in last_runs.items():
            self._history[name] = history_of_last(run)
        looking_back = {name: spec for name, spec in specs.items() if spec.needs_history}
        found = await asyncio.to_thread(self._read_history, looking_back)
        self._history.update(found)
        unfinished = await asyncio.to_thread(self._table.unfinished)
        for notice in unfinished:
            if notice.status is NoticeStatus.held:
                self._limit.held_again(notice)
        self.delivery.add(n for n in unfinished if n.status is NoticeStatus.pending)
        if unfinished:
            logger.info("notifications: %d unfinished from before resumed", len(unfinished))
        self.delivery.start()
        interval = min(5.0, self._settings.notify_check_interval)
        self._tick = asyncio.get_running_loop().create_task(self._ticking(interval))

    async def take_over(self, specs: dict[str, NotifySpec]) -> int:
        """This cluster node delivers from now on: the past the rules read, from the store
        (runs and notices other nodes recorded), and every pending row (`adopt`)."""
        looking_back = {name: spec for name, spec in specs.items() if spec.needs_history}
        self._history.update(await asyncio.to_thread(self._read_history, looking_back))
        return await self.adopt()

    async def adopt(self) -> int:
        """Queue the store's pending rows this server does not have (other nodes' rows)."""
        rows = await asyncio.to_thread(self._table.unfinished)
        done = {notice.id for notice in self.delivery.recent() if notice.status.is_final}
        found = [n for n in rows if n.status is NoticeStatus.pending and n.id not in done]
        self.delivery.add(found)
        return len(found)

    def _read_history(self, specs: dict[str, NotifySpec]) -> dict[str, TaskHistory]:
        found = {}
        for name, spec in specs.items():
            recent = self._store.for_task(name, max(20, spec.after_failures or 0))
            successes = self._store.for_task(name, 20, RunStatus.succeeded.value)
            found[name] = history_from(recent, successes)
            if spec.no_success_for:
                self._silences.told[name] = self._table.latest_of(name, "no_success_for")
        return found

    async def stop(self, timeout: float) -> None:
        """Stop checking and delivering; what is pending stays so in the store."""
        if self._tick is not None:
            self._tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick
        await asyncio.to_thread(self.delivery.stop, timeout)

    # -- outcomes (on the loop) --------------------------------------------------------------

    def notices_for(self, runs: Sequence[Run]) -> list[Notice]:
        """The notifications these recorded run states cause (queued for delivery)."""
        notices = self._outcomes.of_runs(runs)
        self._queue(notices)
        return notices

    def env_failed(self, names: Iterable[str]) -> None:
        """Tell of tasks whose environment cannot be had now (once per distinct problem)."""
        self._save_and_queue(self._outcomes.env_failed(names, self.now()))

    def check_silences(self) -> None:
        """The dead-man switches: tell of tasks with no success for longer than they allow."""
        self._save_and_queue(self._silences.check(self.now()))

    def watch(self, names: Iterable[str]) -> None:
        """Tasks known now (at start, after a rescan): their dead-man switches count from now."""
        self._silences.watch(names)

    def send_test(self, wanted: str | None) -> list[Notice]:
        """Queue a test message to a target (a URL, a tag or a target key; all by default)."""
        notices = rows_of_a_test(self._addressing, wanted, self._settings.public_url)
        self._writer.save_notices(notices)
        self.delivery.add(notices)
        return notices

    def _queue(self, notices: Sequence[Notice]) -> None:
        held = [notice for notice in notices if notice.status is NoticeStatus.held]
        self.delivery.note(held)
        sending = [notice for notice in notices if notice.status is NoticeStatus.pending]
        if not sending:
            return
        # After the caller handed the rows to the writer with their runs (the same call on
        # the loop), and all of one loop iteration's at once: a burst of 1,000 failures
        # wakes the delivery threads once, not 1,000 times (each wake-up costs the loop
        # the GIL for a while).
        if not self._to_deliver:
            asyncio.get_running_loop().call_soon(self._hand_to_delivery)
        self._to_deliver += sending

    def _hand_to_delivery(self) -> None:
        batch, self._to_deliver = self._to_deliver, []
        self.delivery.add(batch)

    def _save_and_queue(self, notices: Sequence[Notice]) -> None:
        if notices:
            self._writer.save_notices(notices)
            self._queue(notices)

    # -- the periodic check -----------------------------------------------------------------

    async def _ticking(self, interval: float) -> None:
        since_check = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                self._send_digests()
                since_check += interval
                if since_check >= self._settings.notify_check_interval and self._may_deliver():
                    since_check = 0.0
                    self.check_silences()
            except Exception:  # the checks must go on whatever one of them met
                logger.exception("the notifications' periodic check failed")

    def _send_digests(self) -> None:
        now = datetime.now(UTC)
        rows = [row for held in self._limit.due(now) for row in digest_of(held, now, self._public)]
        if rows:
            self._writer.save_notices(rows)
            self.delivery.note(n for n in rows if n.status is NoticeStatus.digested)
            self.delivery.add(n for n in rows if n.status is NoticeStatus.pending)

    @property
    def _public(self) -> str | None:
        return self._settings.public_url

    # -- what people see ---------------------------------------------------------------------

    async def page(
        self, task: str | None, status: str | None, before: datetime | None, limit: int
    ) -> list[Notice]:
        """Notifications newest first, the store's merged with newer states in memory."""
        filters = (task, status, before)
        return await views.page(self._store, self._table, self.delivery, filters, limit)

    def problems(self) -> list[tuple[str, str]]:
        """Failing targets and bad task targets: (subject, detail)."""
        return views.problems(self.delivery, self.target_problems)
