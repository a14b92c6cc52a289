"""procrastinate, the cluster's run queue: its schema, and the loop that takes run jobs.

A run job names the task `tasse.run` (`store/run_jobs.py` writes it with its run); a
worker takes jobs from its queues with procrastinate's worker (LISTEN/NOTIFY, so a job is
taken within milliseconds, with polling as the fallback) and hands each to Tasse's own
runner. procrastinate's retries are off: a failed run is retried by its task's policy, on
the scheduler, as a new run. Finished jobs are deleted at once: a job's arguments hold the
run's environment values, which must not outlive it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import ConnectorException
from procrastinate.schema import SchemaManager

from tasse.errors import StoreUnavailableError
from tasse.store.database import first_line
from tasse.store.run_jobs import RUN_JOB

logger = logging.getLogger(__name__)

#: seconds between polls for jobs when a notification was missed (LISTEN/NOTIFY is first)
POLL_FALLBACK = 1.0
#: procrastinate workers (fetch loops) one `tasse worker` runs, its slots shared among
#: them: each fetches one job per round trip, so a burst of fires waits for one loop's
#: round trips in turn; several loops fetch side by side (bench/dispatch.py: a burst of
#: 10 on two workers, fetch p99 111 ms with 1 loop, 48 with 4, 17 with 8). Each loop
#: holds a connection of its own to listen on, besides the pool's (up to 2 per loop + 2).
FETCH_LOOPS = 8

#: carries out one run job, given its arguments (`cluster/worker.py`)
CarryOut = Callable[[dict[str, Any]], Awaitable[None]]


def queue_schema() -> str:
    """procrastinate's schema, as its version creates it (`RunJobs.apply_schema` applies it)."""
    return SchemaManager.get_schema()


class RunQueue:
    """One worker's procrastinate worker: takes run jobs from `queues`, `concurrency` at once."""

    def __init__(
        self,
        conninfo: str,
        queues: Sequence[str],
        concurrency: int,
        node: str,
        carry_out: CarryOut,
        shown_address: str,
    ):
        # Its job lines show a job's arguments, which hold the run's environment values:
        # only its warnings are logged (Tasse logs each run itself).
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
        self._loops = min(FETCH_LOOPS, concurrency)
        # Each loop holds a connection to LISTEN on and fetches on another.
        connector = PsycopgConnector(conninfo=conninfo, min_size=1, max_size=2 * self._loops + 2)
        self._app = App(connector=connector)
        self._queues = list(queues)
        self._concurrency = concurrency
        self._node = node
        #: the store's address as errors name it (no password)
        self._shown_address = shown_address

        @self._app.task(name=RUN_JOB, pass_context=False)
        async def run_job(**args: Any) -> None:
            await carry_out(args)

    async def take(self, statement: str, run_id: str, node: str, now: datetime) -> bool:
        """`queued → running` on one of the queue's own connections (`RunJobs.take_on_async`):
        whether this worker won the run. A thread's store call would cost a hop to the
        thread pool, the slowest step of a burst of jobs on a busy worker."""
        naive = now.astimezone(UTC).replace(tzinfo=None)  # the column is UTC, without a zone
        try:
            rows = await self._app.connector.execute_query_all_async(
                statement, run_id=run_id, node=node, now=naive
            )
        except ConnectorException as error:  # as a store call's failure: the job fails
            raise StoreUnavailableError(self._shown_address, first_line(error)) from None
        return bool(rows)

    async def run(self) -> None:
        """Take jobs until cancelled (jobs under way are waited for, then ended)."""
        async with self._app.open_async():
            logger.info(
                "worker %s takes runs from queue(s) %s, %d at a time",
                self._node,
                ", ".join(self._queues),
                self._concurrency,
            )
            slots = [self._concurrency // self._loops] * self._loops
            for index in range(self._concurrency % self._loops):
                slots[index] += 1
            await asyncio.gather(*(self._loop(index, count) for index, count in enumerate(slots)))

    async def _loop(self, index: int, slots: int) -> None:
        await self._app.run_worker_async(
            queues=self._queues,
            concurrency=slots,
            name=f"{self._node}/{index + 1}",
            delete_jobs="always",
            install_signal_handlers=False,
            listen_notify=True,
            fetch_job_polling_interval=POLL_FALLBACK,
        )
