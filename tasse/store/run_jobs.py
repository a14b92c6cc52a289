"""Runs that travel to workers as procrastinate jobs: how a run and its job are written
together, and the one state change that lets a worker start it.

The scheduler writes a queued run's row and its job in one transaction (procrastinate's
own SQL function, `procrastinate_defer_jobs_v1`, called in ours), so a crash cannot leave a
job without its run or a queued run without its job. The row is written without a node:
the worker that takes it stamps its name with `queued → running` (`take`), a conditional
update that only one taker can win — a job picked twice (a stalled worker's job retried)
finds the run taken, or ended, and runs nothing. A run withdrawn before any worker took it
(`withdraw`) is ended by the same kind of update, so a late taker finds it ended too.
PostgreSQL only: the cluster's store.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy import String, bindparam, column, make_url, select, table, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert

from tasse.models import Run, RunRequest, RunStatus
from tasse.store.leases import SCHEDULER_LEASE, Leases
from tasse.store.nodes import WORKER, nodes_table
from tasse.store.runs import RunStore
from tasse.store.tables import row_of, run_of, tables

#: the procrastinate task every Tasse run job names (`cluster/queue.py` registers it)
RUN_JOB = "tasse.run"
#: ids per query of `states`
_BATCH = 500
_UNFINISHED = (RunStatus.queued.value, RunStatus.running.value)


#: the advisory lock two nodes starting at once take before one applies the queue's schema
_SCHEMA_LOCK = 0x7A55E


def job_queue(store: RunStore, queue: str) -> str:
    """procrastinate's name of a task's queue: prefixed by the store's table name, so that
    two stores sharing a database (`--store-table-name`) never take each other's runs."""
    return f"{store.names.table}/{queue}"


def libpq_address(address: str) -> str:
    """The store's address as libpq (procrastinate's connection) takes it."""
    url = make_url(address).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


#: procrastinate's own ways to queue a job again and to end one, deleting it
_RETRY = text("SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)")
_DELETE = text("SELECT procrastinate_finish_job_v1(:id, 'failed', true)")


#: procrastinate's jobs table, as far as finding a run's job needs it
_JOBS = table(
    "procrastinate_jobs",
    column("args", JSONB),
    column("task_name", String),
    column("queue_name", String),
)


class Unfinished(NamedTuple):
    """A run on a worker, or queued for one, as a new scheduler takes it over."""

    run: Run
    #: the worker that took it (None: queued, no worker has it yet)
    node: str | None
    #: the request its job carries (its `env` is kept nowhere else), or one made of the
    #: run's own args and params when no job is there
    request: RunRequest


class LeaseLostError(Exception):
    """The node queuing a run no longer holds the scheduler lease (it was frozen or cut off
    and another node took over): the run is not queued."""


class RunJobs:
    """Writes queued runs with their jobs; takes, withdraws and watches them."""

    def __init__(self, store: RunStore):
        self._store = store
        self._leases = Leases(store)
        self._engine = store.engine
        self._runs, _ = tables(store.names)
        self._nodes = nodes_table(store.names)
        runs = self._runs
        values = [column.name for column in runs.columns if column.name != "id"]
        upsert = insert(runs)
        self._put = upsert.on_conflict_do_update(
            index_elements=["id"], set_={name: upsert.excluded[name] for name in values}
        )
        self._defer = text(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL,"
            " CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
        )
        self._take = (
            update(runs)
            .where(runs.c.id == bindparam("run_id"), runs.c.status == RunStatus.queued.value)
            .values(
                status=RunStatus.running.value,
                started_at=bindparam("now"),
                node=bindparam("node"),
            )
            .returning(*runs.columns)
        )
        runs_table = f"{store.names.schema}.{runs.name}" if store.names.schema else runs.name
        self._take_text = (
            f"UPDATE {runs_table} SET status = 'running', started_at = %(now)s,"
            " node = %(node)s WHERE id = %(run_id)s AND status = 'queued' RETURNING id"
        )
        self._stalled = text(
            f"""
            SELECT j.id, (r.status = :queued AND r.node IS NULL) AS untaken
            FROM procrastinate_jobs j
            LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
            LEFT JOIN {runs_table} r ON r.id = j.args ->> 'run_id'
            WHERE j.status = 'doing' AND j.task_name = :task AND j.queue_name LIKE :queues
              AND (w.id IS NULL OR w.last_heartbeat < now() - make_interval(secs => :silent))
            FOR UPDATE OF j SKIP LOCKED
            """
        )
        self._withdraw = (
            update(runs)
            .where(runs.c.id == bindparam("run_id"), runs.c.status == RunStatus.queued.value)
            .values(
                status=bindparam("status"), finished_at=bindparam("now"), error=bindparam("why")
            )
        )

    def apply_schema(self, schema: str) -> bool:
        """Create procrastinate's tables and functions unless they are there: True if made."""
        with self._engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
            found = connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar()
            if found is not None:
                return False
            # psycopg's own cursor, given no parameters, sends the schema as it is (the
            # SQLAlchemy layer would read its `%` as placeholders).
            cursor = connection.connection.cursor()
            try:
                cursor.execute(schema)
            finally:
                cursor.close()
        return True

    def enqueue(
        self, runs: Sequence[tuple[Run, str, dict[str, Any]]], holder: str, token: int | None
    ) -> None:
        """Write queued runs (no node yet) and their jobs — each `(run, the task's queue,
        the job's arguments)` — in one transaction, only while `holder` holds the
        scheduler lease with `token` (raises LeaseLostError), so that a node that lost it
        starts nothing more. Runs due together are queued together: one commit."""
        rows = [{**row_of(run), "node": None} for run, _, _ in runs]
        jobs = [
            {"queue": job_queue(self._store, queue), "task": RUN_JOB, "args": json.dumps(args)}
            for _, queue, args in runs
        ]
        with self._engine.begin() as connection:
            if token is None or not self._leases.hold(connection, SCHEDULER_LEASE, holder, token):
                raise LeaseLostError(f"node {holder} no longer holds the scheduler lease")
            connection.execute(self._put, rows)
            for job in jobs:
                connection.execute(self._defer, job)

    @property
    def take_on_async(self) -> str:
        """`take` as one statement for an async psycopg connection (the worker's queue's:
        no hop to a thread), its values named `run_id`, `node` and `now` (naive UTC); it
        returns a row if the take was won."""
        return self._take_text

    def take(self, run_id: str, node: str, now: datetime) -> Run | None:
        """`queued → running` on `node`: the run, or None if it was taken or ended before."""
        with self._engine.begin() as connection:
            row = connection.execute(
                self._take, {"run_id": run_id, "now": now, "node": node}
            ).first()
        return None if row is None else run_of(row._mapping)

    def withdraw(self, run_id: str, status: RunStatus, why: str, now: datetime) -> bool:
        """End a run no worker has taken yet; False if one has (or it has ended)."""
        values = {"run_id": run_id, "status": status.value, "why": why, "now": now}
        with self._engine.begin() as connection:
            return connection.execute(self._withdraw, values).rowcount == 1

    def states(self, run_ids: Sequence[str]) -> dict[str, tuple[Run, str | None]]:
        """These runs as the store has them, each with the node that took it; those still
        queued are left out (no worker has them yet: nothing to tell, and with a backlog
        they are nearly all of them — a sixth of the query's cost with 2,000 followed)."""
        runs = self._runs
        found: dict[str, tuple[Run, str | None]] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(run_ids), _BATCH):
                batch = run_ids[start : start + _BATCH]
                taken = runs.c.status != RunStatus.queued.value
                for row in connection.execute(select(runs).where(runs.c.id.in_(batch), taken)):
                    found[row.id] = (run_of(row._mapping), row.node)
        return found

    def settle_stalled(self, silent_for: float) -> tuple[int, int]:
        """The jobs of workers silent for `silent_for` seconds (killed, frozen, cut off):
        those whose run no worker took are queued again, for another worker; those whose
        run was taken are deleted (the run ends as `interrupted`, `Orphans`), and with them
        the environment values their arguments hold. How many of each."""
        values = {
            "task": RUN_JOB,
            "silent": silent_for,
            "queued": RunStatus.queued.value,
            "queues": job_queue(self._store, "%"),  # this store's only
        }
        with self._engine.begin() as connection:
            stalled = connection.execute(self._stalled, values).all()
            again = [row.id for row in stalled if row.untaken]
            gone = [row.id for row in stalled if not row.untaken]
            for job_id in again:
                connection.execute(_RETRY, {"id": job_id})
            for job_id in gone:
                connection.execute(_DELETE, {"id": job_id})
        return len(again), len(gone)

    def unfinished(self) -> list[Unfinished]:
        """Runs queued for a worker or running on one (with its name, and the request
        its job carries): what a new scheduler takes over."""
        runs, nodes, jobs = self._runs, self._nodes, _JOBS
        workers = select(nodes.c.name).where(nodes.c.role == WORKER)
        of_the_run = (
            (jobs.c.args["run_id"].astext == runs.c.id)
            & (jobs.c.task_name == RUN_JOB)
            & jobs.c.queue_name.like(job_queue(self._store, "%"))
        )
        query = (
            select(runs, jobs.c.args["request"].label("job_request"))
            .select_from(runs.outerjoin(jobs, of_the_run))
            .where(runs.c.status.in_(_UNFINISHED))
            .where(runs.c.node.is_(None) | runs.c.node.in_(workers))
            .order_by(runs.c.id)
        )
        with self._engine.connect() as connection:
            return [
                Unfinished(run := run_of(row._mapping), row.node, _request_of(row.job_request, run))
                for row in connection.execute(query)
            ]


def _request_of(carried: dict[str, Any] | None, run: Run) -> RunRequest:
    if carried is not None:
        with contextlib.suppress(ValidationError):  # a job of another version's making
            return RunRequest.model_validate(carried)
    return RunRequest(args=run.args, params=run.params)
