"""The one writer: every record reaches the store from its own thread, or waits in the journal.

Callers on the event loop hand records over and return at once (`put_runs`,
`save_fire_times`, `forget_fire_times`, `save_pauses`, `save_notices`); they never wait
on the store. The writer's thread writes them in batches, each store call with a
deadline. When the store fails or does not answer, the records stay in memory *and* go to
the journal on the local disk, and are written again, in order, until the store takes
them; writes are idempotent (upserts by key), so one that landed although its call timed
out does no harm. What has not been written yet is visible (`pending_run`,
`pending_runs_of`, `health`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tasse.models import Run
from tasse.store.deadline import call_with_deadline
from tasse.store.fire_times import FireTime, FireTimes, FireTimeStore
from tasse.store.journal import Journal, JournalFullError
from tasse.store.nodes import SCHEDULER, Nodes
from tasse.store.outbox import Notice, OutboxTable
from tasse.store.pauses import Pause, PauseTable
from tasse.store.records import (
    FireTimeChanges,
    Notices,
    Op,
    PauseChanges,
    Runs,
    coalesce,
    entry_of,
    op_from_entry,
)
from tasse.store.runs import RunStore

logger = logging.getLogger(__name__)

#: records written per transaction; a long backlog goes in several
BATCH = 1000
#: seconds between retries while the store fails: doubling from the first to the last
RETRY_FIRST, RETRY_LAST = 0.5, 5.0
#: records waiting beyond this many is worth a warning: the store is far behind
BEHIND = 100_000


@dataclass
class WriterState:
    """What /health says of the store's writes."""

    #: the last write (or heartbeat) reached the store
    writable: bool = True
    #: why it did not, when it did not
    problem: str | None = None
    #: when writes started failing (None while they succeed)
    failing_since: datetime | None = None
    #: when the store last took a write
    last_write_at: datetime | None = None


class RecordWriter:
    """Writes runs, fire times, pauses and notifications off the loop, journaling what the
    store cannot take."""

    def __init__(
        self,
        store: RunStore,
        journal: Journal,
        deadline: float = 10.0,
        heartbeat_interval: float = 5.0,
        role: str = SCHEDULER,
    ):
        self._store = store
        self._fire_times = FireTimes(store)
        self._nodes = Nodes(store, role=role)
        self._pauses = PauseTable(store)
        self._outbox = OutboxTable(store)
        self._journal = journal
        self._deadline = deadline
        self._heartbeat_interval = heartbeat_interval
        # Not bounded: a bound would mean dropping records or making the loop wait, and
        # both are what this writer is for avoiding. The thread takes what arrives at once,
        # even while the store is down (to the journal); `pending_count` shows the rest.
        self._inbox: queue.SimpleQueue[Op | None] = queue.SimpleQueue()
        #: ops taken by the thread and not yet in the store, in order; the first
        #: `_journaled` of them are in the journal too
        self._backlog: list[Op] = []
        self._journaled = 0
        #: the newest state of each run not yet in the store, for readers on the loop
        self._pending: dict[str, Run] = {}
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._retry_in = RETRY_FIRST
        self.state = WriterState()

    # -- handing records over (any thread, never blocks) -----------------------------------

    def put_runs(self, runs: Iterable[Run], notices: Iterable[Notice] = ()) -> None:
        """Write these runs as they are now (new or known): later, in order, surely; with
        the notifications their outcomes caused, in the same write."""
        snapshots = tuple(run.model_copy() for run in runs)
        if not snapshots:
            return
        with self._guard:
            for run in snapshots:
                self._pending[run.id] = run
        self._hand_over(Runs(snapshots, tuple(notices)))

    def save_notices(self, notices: Iterable[Notice]) -> None:
        """Write these notifications' states (a row is immutable, so no copy is needed)."""
        rows = tuple(notices)
        if rows:
            self._hand_over(Notices(rows))

    def save_fire_times(self, times: Mapping[str, FireTime]) -> None:
        """Replace these schedules' stored next fire times."""
        if times:
            self._hand_over(FireTimeChanges(dict(times)))

    def forget_fire_times(self, job_ids: Iterable[str]) -> None:
        """Drop these schedules' stored fire times (their task is gone)."""
        ids = tuple(job_ids)
        if ids:
            self._hand_over(FireTimeChanges({}, ids))

    def save_pauses(self, changes: Mapping[str, Pause | None]) -> None:
        """Pause (a Pause) or resume (None) these tasks in the store."""
        if changes:
            self._hand_over(PauseChanges(dict(changes)))

    def _hand_over(self, op: Op | None) -> None:
        self._inbox.put(op)

    # -- what readers see --------------------------------------------------------------------

    def pending_run(self, run_id: str) -> Run | None:
        """The newest state of a run the store does not have yet, if it is one."""
        with self._guard:
            run = self._pending.get(run_id)
        return run.model_copy() if run is not None else None

    def pending_runs_of(self, task: str) -> list[Run]:
        """The task's runs that are not in the store yet (their newest state)."""
        with self._guard:
            return [run.model_copy() for run in self._pending.values() if run.task == task]

    def pending_runs(self) -> list[Run]:
        """Every run that is not in the store yet (its newest state)."""
        with self._guard:
            return [run.model_copy() for run in self._pending.values()]

    @property
    def pending_count(self) -> int:
        """Records handed over and not yet in the store."""
        return self._inbox.qsize() + len(self._backlog)

    def wait_written(self, timeout: float) -> bool:
        """Wait until the store has every record handed over so far; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending_count or self._pending:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    @property
    def fire_times(self) -> FireTimeStore:
        """The scheduler's fire times: read from the table, written through this writer."""
        return _FireTimesThroughWriter(self._fire_times, self)

    @property
    def journaled(self) -> int:
        """Entries in the journal on disk."""
        return self._journal.count

    # -- life cycle --------------------------------------------------------------------------

    def replay(self) -> int:
        """Write what the journal holds from an earlier process (at start, before anything)."""
        entries = self._journal.open()
        read = [op_from_entry(entry) for entry in entries]
        ops = [op for op in read if op is not None]
        if not ops:
            self._journal.clear()
            return 0
        for start in range(0, len(ops), BATCH):
            self._write(ops[start : start + BATCH])
        self._journal.clear()
        logger.warning("wrote %d record(s) the journal kept from before the restart", len(ops))
        return len(ops)

    def start(self) -> None:
        """Start the writer's thread."""
        self._thread = threading.Thread(target=self._work, name="tasse-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Write what is left (waiting at most `timeout`); the rest stays in the journal."""
        if self._thread is None:
            return
        self._hand_over(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Stuck past its deadlines: journal what it holds from here, as the process ends.
            logger.error("the store writer did not finish in %g s: journaling the rest", timeout)
            self._journal_new()
        self._thread = None

    # -- the thread -------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                self._write_until_stopped()
                return
            except Exception:  # the writer must outlive any surprise: records depend on it
                logger.exception("the store writer failed; it goes on")
                time.sleep(RETRY_LAST)

    def _write_until_stopped(self) -> None:
        stopping = False
        next_heartbeat = next_retry = 0.0
        while True:
            # With a backlog the next retry is what to wait for: the heartbeat time, not
            # moved while records wait, would make the thread spin through an outage.
            wake = next_retry if self._backlog else next_heartbeat
            stopping = self._take(0 if stopping else wake - time.monotonic()) or stopping
            now = time.monotonic()
            if self._backlog and (stopping or now >= next_retry):
                # Stopping, one more try whatever the backoff: the store may be back.
                if self._attempt():
                    next_retry = 0.0
                elif stopping:
                    return  # what could not be written is in the journal for the next start
                else:
                    next_retry = now + self._retry_in
            elif not self._backlog and now >= next_heartbeat:
                self._heartbeat()
                pause = self._heartbeat_interval if self.state.writable else self._retry_in
                next_heartbeat = now + pause
            if stopping and not self._backlog:
                return

    def _take(self, timeout: float) -> bool:
        """Move handed-over ops to the backlog; True if a stop was asked for."""
        stop = False
        taken: list[Op | None] = []
        try:
            taken.append(
                self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
            )
            while len(taken) < BATCH:
                taken.append(self._inbox.get_nowait())
        except queue.Empty:
            pass
        for op in taken:  # every op taken is kept: none is left between two batches
            if op is None:
                stop = True
            else:
                self._backlog.append(op)
        if len(self._backlog) > BEHIND:
            logger.warning("the store writer is %d records behind", len(self._backlog))
        if not self.state.writable:
            self._journal_new()  # while the store fails, nothing waits only in memory
        return stop

    def _attempt(self) -> bool:
        batch = self._backlog[:BATCH]
        try:
            call_with_deadline(lambda: self._write(batch), self._deadline, "a store write")
        except Exception as error:
            self._failed(error)
            return False
        self._written(batch)
        return True

    def _write(self, batch: Sequence[Op]) -> None:
        write = coalesce(batch)
        if write.runs:
            self._store.put(write.runs)
        if write.saves:
            self._fire_times.save(write.saves)
        if write.forgets:
            self._fire_times.forget(write.forgets)
        if write.pauses:
            self._pauses.save(write.pauses)
        if write.notices:
            self._outbox.save(write.notices)

    def _written(self, batch: Sequence[Op]) -> None:
        self._succeeded()
        del self._backlog[: len(batch)]
        self._journaled = max(0, self._journaled - len(batch))
        if not self._backlog:
            try:
                self._journal.clear()
                self._journaled = 0
            except OSError as error:  # it is written again at the next start: no harm
                logger.error("the journal could not be emptied: %s", error)
        written = {run.id: run for op in batch if isinstance(op, Runs) for run in op.runs}
        with self._guard:
            for run_id, run in written.items():
                # A newer state handed over meanwhile stays pending until it is written.
                if self._pending.get(run_id) is run:
                    del self._pending[run_id]

    def _heartbeat(self) -> None:
        try:
            call_with_deadline(self._nodes.heartbeat, self._deadline, "the store heartbeat")
        except Exception as error:
            self._failed(error)
            return
        self._succeeded()

    def _succeeded(self) -> None:
        if not self.state.writable:
            logger.warning("the store %s takes writes again", self._store.shown_address)
        self.state = WriterState(last_write_at=datetime.now(UTC))
        self._retry_in = RETRY_FIRST

    def _failed(self, error: Exception) -> None:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        if self.state.writable:
            logger.error(
                "the store %s cannot be written (%s): %d record(s) journaled until it can",
                self._store.shown_address,
                problem,
                len(self._backlog),
            )
        self.state = WriterState(
            writable=False,
            problem=problem,
            failing_since=self.state.failing_since or datetime.now(UTC),
            last_write_at=self.state.last_write_at,
        )
        self._journal_new()
        self._retry_in = min(RETRY_LAST, self._retry_in * 2)

    def _journal_new(self) -> None:
        new = self._backlog[self._journaled :]
        if not new:
            return
        try:
            self._journal.append(entry_of(op) for op in new)
        except JournalFullError as error:
            logger.error("%s: %d record(s) are kept in memory only", error, len(new))
            return
        self._journaled = len(self._backlog)


class _FireTimesThroughWriter:
    def __init__(self, table: FireTimes, writer: RecordWriter):
        self._table = table
        self._writer = writer

    def load(self) -> dict[str, FireTime]:
        return self._table.load()

    def save(self, times: Mapping[str, FireTime]) -> None:
        self._writer.save_fire_times(times)

    def forget(self, job_ids: Iterable[str]) -> None:
        self._writer.forget_fire_times(job_ids)
