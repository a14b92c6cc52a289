"""Delivering the outbox: worker threads take each notification when it is due, send it, and
hand its new state to the writer; a failed attempt is tried again later, doubling the wait,
until the last attempt gives it up.

Nothing here runs on the event loop: `add` only puts rows on a heap. What a target did
lately (`TargetHealth`) is kept for the Problems page: failing targets, given-up messages.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tasse.errors import DeliveryError
from tasse.store.outbox import Notice, NoticeStatus
from tasse.store.writer import RecordWriter

logger = logging.getLogger(__name__)

#: newest notification states kept in memory, for listings before the store has them
RECENT = 2000
#: failed attempts in a row after which a target counts as failing (a Problem)
FAILING_AFTER = 3

#: seconds a delivery thread rests after a send while more are due: a burst's sends back
#: to back hold the GIL in long stretches, and the loop's fires wait behind them
PACE = 0.002
#: sent states handed to the writer as one op (sooner when no send is due)
RECORD_BATCH = 50

#: sends one notification (DeliveryError if it did not reach its target this time)
Send = Callable[[Notice], None]


@dataclass(frozen=True)
class Backoff:
    """How often and how long a delivery is tried."""

    max_attempts: int = 10
    first: float = 5.0
    longest: float = 600.0

    def wait(self, attempts: int) -> float:
        """Seconds before the next attempt, after `attempts` failed ones."""
        return float(min(self.first * 2 ** min(attempts - 1, 30), self.longest))


@dataclass
class TargetHealth:
    """What one target did lately."""

    shown: str
    failures_in_a_row: int = 0
    last_error: str | None = None
    failing_since: datetime | None = None
    given_up: int = 0
    sent: int = 0


class Delivery:
    """The outbox's delivery threads."""

    def __init__(
        self,
        writer: RecordWriter,
        send: Send,
        backoff: Backoff,
        workers: int = 4,
        on_attempt: Callable[[bool], None] = lambda delivered: None,
        may_deliver: Callable[[], bool] = lambda: True,
    ):
        self._writer = writer
        #: False on a cluster node that is not the scheduler: it attempts nothing, and a row
        #: that comes due is dropped here (it stays pending in the store, for the scheduler)
        self._may_deliver = may_deliver
        #: told of each attempt, delivered or not (the metrics' counters)
        self._on_attempt = on_attempt
        self._send = send
        self._backoff = backoff
        self._workers = workers
        self._due: list[tuple[datetime, int, Notice]] = []
        #: ids waiting or being attempted: a row is never queued twice
        self._queued: set[str] = set()
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._recent: OrderedDict[str, Notice] = OrderedDict()
        #: sent states not yet handed to the writer
        self._unsaved: list[Notice] = []
        self.targets: dict[str, TargetHealth] = {}

    # -- any thread --------------------------------------------------------------------------

    def add(self, notices: Iterable[Notice]) -> None:
        """Deliver these pending notifications when each is due (now, or its next attempt)."""
        with self._wake:
            for notice in notices:
                if notice.id in self._queued:
                    continue
                self._keep(notice)
                if notice.status is NoticeStatus.pending:
                    self._queued.add(notice.id)
                    due = notice.next_attempt_at or notice.created_at
                    heapq.heappush(self._due, (due, next(self._order), notice))
            self._wake.notify(len(self._due))

    def note(self, notices: Iterable[Notice]) -> None:
        """Notifications that changed without being sent (held, digested): keep them shown."""
        with self._wake:
            for notice in notices:
                self._keep(notice)

    def recent(self) -> list[Notice]:
        """The newest states of recent notifications (some not in the store yet)."""
        with self._wake:
            return list(self._recent.values())

    @property
    def waiting(self) -> int:
        """Notifications waiting for an attempt."""
        return len(self._due)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery threads."""
        for number in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"tasse-notify-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> None:
        """Let attempts under way end (at most `timeout`); what waits stays pending in the store."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        self._save_sent()

    # -- the threads --------------------------------------------------------------------------

    def _work(self) -> None:
        while (notice := self._next()) is not None:
            if not self._may_deliver():
                with self._wake:
                    self._queued.discard(notice.id)
                continue
            try:
                self._attempt(notice)
            except Exception:  # a thread must outlive any surprise: the others depend on it
                logger.exception("notification %s: its delivery failed unexpectedly", notice.id)
                with self._wake:
                    self._queued.discard(notice.id)
            if self._more_due():
                time.sleep(PACE)  # lets the loop have the GIL between two sends
            else:
                self._save_sent()

    def _more_due(self) -> bool:
        with self._wake:
            return bool(self._due) and self._due[0][0] <= datetime.now(UTC)

    def _save_sent(self) -> None:
        with self._wake:
            batch, self._unsaved = self._unsaved, []
        if batch:
            self._writer.save_notices(batch)

    def _next(self) -> Notice | None:
        """The next notification due, waiting for one; None once stopping."""
        with self._wake:
            while not self._stopping:
                now = datetime.now(UTC)
                if self._due and self._due[0][0] <= now:
                    return heapq.heappop(self._due)[2]
                wait = (self._due[0][0] - now).total_seconds() if self._due else None
                self._wake.wait(wait)
            return None

    def _attempt(self, notice: Notice) -> None:
        attempts = notice.attempts + 1
        health = self.targets.setdefault(notice.target, TargetHealth(notice.shown_target))
        try:
            self._send(notice)
        except DeliveryError as error:
            self._on_attempt(False)
            self._failed(notice.but(attempts=attempts, error=error.problem), health)
            return
        self._on_attempt(True)
        now = datetime.now(UTC)
        sent = notice.but(
            status=NoticeStatus.sent, attempts=attempts, sent_at=now, next_attempt_at=None
        )
        health.failures_in_a_row, health.failing_since = 0, None
        health.sent += 1
        with self._wake:
            self._keep(sent)
            self._unsaved.append(sent)
            full = len(self._unsaved) >= RECORD_BATCH
        if full:
            self._save_sent()
        logger.info(
            "notification %s (%s, task %s) sent to %s",
            notice.id,
            ",".join(notice.events),
            notice.task,
            notice.shown_target,
        )

    def _failed(self, notice: Notice, health: TargetHealth) -> None:
        now = datetime.now(UTC)
        health.failures_in_a_row += 1
        health.last_error = notice.error
        health.failing_since = health.failing_since or now
        if notice.attempts >= self._backoff.max_attempts:
            health.given_up += 1
            self._record(notice.but(status=NoticeStatus.failed, next_attempt_at=None))
            logger.error(
                "notification %s (task %s) given up after %d attempts: %s",
                notice.id,
                notice.task,
                notice.attempts,
                notice.error,
            )
            return
        at = now + timedelta(seconds=self._backoff.wait(notice.attempts))
        later = notice.but(next_attempt_at=at)
        self._record(later)
        logger.warning(
            "notification %s (task %s) not delivered (attempt %d): %s; tried again at %s",
            notice.id,
            notice.task,
            notice.attempts,
            notice.error,
            at,
        )
        with self._wake:
            heapq.heappush(self._due, (at, next(self._order), later))
            self._wake.notify()

    def _record(self, notice: Notice) -> None:
        self._writer.save_notices([notice])
        with self._wake:
            self._keep(notice)
            if notice.status.is_final:
                self._queued.discard(notice.id)

    def _keep(self, notice: Notice) -> None:
        self._recent[notice.id] = notice
        self._recent.move_to_end(notice.id)
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)
