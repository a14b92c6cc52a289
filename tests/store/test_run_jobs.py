"""Runs queued for workers on a real PostgreSQL: a run and its job written together and only
under the scheduler lease, `queued → running` won once, a withdrawal, and the jobs a
silent worker left."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from tasse.cluster.queue import queue_schema
from tasse.models import Run, RunRequest, RunStatus, RunTrigger, new_run_id
from tasse.store.leases import SCHEDULER_LEASE, Leases
from tasse.store.nodes import WORKER, Nodes
from tasse.store.run_jobs import LeaseLostError, RunJobs, job_queue
from tasse.store.runs import RunStore
from tests.store.test_store import node_store


@pytest.fixture
def store() -> Iterator[RunStore]:
    with node_store("job") as opened:
        yield opened


@pytest.fixture
def jobs(store: RunStore) -> RunJobs:
    made = RunJobs(store)
    made.apply_schema(queue_schema())  # once per database: later calls find it there
    return made


def _queued(task: str = "t") -> Run:
    now = datetime.now(UTC)
    return Run(
        id=new_run_id(now),
        task=task,
        trigger=RunTrigger.manual,
        status=RunStatus.queued,
        scheduled_at=now,
    )


def _jobs_of(store: RunStore, run_id: str) -> list[tuple[str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT queue_name, status FROM procrastinate_jobs WHERE args->>'run_id' = :id"),
            {"id": run_id},
        )
        return [(row.queue_name, row.status) for row in rows]


def test_a_run_and_its_job_are_written_together_only_under_the_lease(
    store: RunStore, jobs: RunJobs
) -> None:
    run = _queued()
    with pytest.raises(LeaseLostError, match="node a no longer holds the scheduler lease"):
        jobs.enqueue([(run, "default", {"run_id": run.id})], "a", None)
    token = Leases(store).acquire(SCHEDULER_LEASE, "a", 30)
    assert token is not None
    with pytest.raises(LeaseLostError):  # a token of the past
        jobs.enqueue([(run, "default", {"run_id": run.id})], "a", token + 1)
    assert store.get(run.id) is None
    assert _jobs_of(store, run.id) == []

    jobs.enqueue([(run, "gpu", {"run_id": run.id})], "a", token)
    stored = store.get(run.id)
    assert stored is not None
    assert stored.status is RunStatus.queued
    assert store.node_of(run.id) == (RunStatus.queued, None)  # no worker has it yet
    assert _jobs_of(store, run.id) == [(job_queue(store, "gpu"), "todo")]
    assert job_queue(store, "gpu") == f"{store.names.table}/gpu"


def test_queued_to_running_is_won_once(store: RunStore, jobs: RunJobs) -> None:
    token = Leases(store).acquire(SCHEDULER_LEASE, "a", 30)
    run = _queued()
    jobs.enqueue([(run, "default", {"run_id": run.id})], "a", token)
    taken = jobs.take(run.id, "w1", datetime.now(UTC))
    assert taken is not None
    assert taken.status is RunStatus.running
    assert taken.started_at is not None
    assert jobs.take(run.id, "w2", datetime.now(UTC)) is None  # the job picked again
    assert store.node_of(run.id) == (RunStatus.running, "w1")
    assert not jobs.withdraw(run.id, RunStatus.cancelled, "too late", datetime.now(UTC))
    states = jobs.states([run.id, "no-such-run"])
    assert list(states) == [run.id]
    assert states[run.id][0].status is RunStatus.running
    assert states[run.id][1] == "w1"
    assert jobs.unfinished() == []  # w1 is not a worker the nodes table knows of
    Nodes(store, name="w1", role=WORKER).heartbeat()
    assert [(r.id, node) for r, node, _ in jobs.unfinished()] == [(run.id, "w1")]


def test_a_run_taken_over_keeps_the_request_its_job_carries(store: RunStore, jobs: RunJobs) -> None:
    token = Leases(store).acquire(SCHEDULER_LEASE, "a", 30)
    asked, bare = _queued(), _queued()
    request = RunRequest(args=["--fast"], env={"API_KEY": "s3cr3t"}, params={"n": 3})
    jobs.enqueue(
        [(asked, "default", {"run_id": asked.id, "request": request.model_dump()})], "a", token
    )
    jobs.enqueue([(bare, "default", {"run_id": bare.id})], "a", token)  # a job of old: no request
    found = {item.run.id: item.request for item in jobs.unfinished()}
    assert found[asked.id] == request  # its env is kept nowhere but in its job
    assert found[bare.id] == RunRequest(args=bare.args, params=bare.params)


def test_a_run_no_worker_took_is_withdrawn_and_then_never_taken(
    store: RunStore, jobs: RunJobs
) -> None:
    token = Leases(store).acquire(SCHEDULER_LEASE, "a", 30)
    run = _queued()
    jobs.enqueue([(run, "default", {"run_id": run.id})], "a", token)
    assert [item.run.id for item in jobs.unfinished()] == [run.id]
    why = "stopped before a worker took it"
    assert jobs.withdraw(run.id, RunStatus.cancelled, why, datetime.now(UTC))
    assert jobs.take(run.id, "w1", datetime.now(UTC)) is None
    stored = store.get(run.id)
    assert stored is not None
    assert (stored.status, stored.error) == (RunStatus.cancelled, why)
    assert jobs.unfinished() == []


def test_a_silent_workers_jobs_are_queued_again_or_dropped(store: RunStore, jobs: RunJobs) -> None:
    token = Leases(store).acquire(SCHEDULER_LEASE, "a", 30)
    untaken, taken = _queued(), _queued()
    for run in (untaken, taken):
        jobs.enqueue([(run, "default", {"run_id": run.id, "secret": "s3cr3t"})], "a", token)
    jobs.take(taken.id, "w1", datetime.now(UTC))
    with store.engine.begin() as connection:
        # Both fetched by a worker that then fell silent (its heartbeat a minute old).
        worker = connection.execute(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - interval '60 seconds') RETURNING id"
            )
        ).scalar()
        connection.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w"
                " WHERE args->>'run_id' IN (:a, :b)"
            ),
            {"w": worker, "a": untaken.id, "b": taken.id},
        )
    assert jobs.settle_stalled(20) == (1, 1)
    assert _jobs_of(store, untaken.id) == [(job_queue(store, "default"), "todo")]  # again
    assert _jobs_of(store, taken.id) == []  # gone, and the secret in its arguments with it
    assert jobs.settle_stalled(20) == (0, 0)
    with store.engine.connect() as connection:
        args = connection.execute(
            text("SELECT args FROM procrastinate_jobs WHERE args->>'run_id' = :id"),
            {"id": untaken.id},
        ).scalar()
    assert args == {"run_id": untaken.id, "secret": "s3cr3t"}  # queued again as it was
