"""The cluster's tables on a real PostgreSQL: leases with fencing tokens, fire claims won
once, commands taken once, and what a dead node leaves behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tasse.cluster.upkeep import _settled
from tasse.models import Run, RunStatus, RunTrigger, run_id_prefix
from tasse.store.claims import FireClaims
from tasse.store.commands import Commands
from tasse.store.leases import SCHEDULER_LEASE, Leases
from tasse.store.nodes import Nodes
from tasse.store.orphans import Orphans
from tasse.store.runs import RunStore
from tests.store.test_store import Place, require_server, unique

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def place() -> Iterator[Place]:
    made = Place("postgresql", require_server("postgresql"), unique("clu"))
    yield made
    made.drop()


@pytest.fixture
def store(place: Place) -> Iterator[RunStore]:
    opened = RunStore(place.address, table_name=place.table_name, node="a")
    yield opened
    opened.close()


def test_a_lease_has_one_holder_and_a_new_token_per_holder(store: RunStore) -> None:
    leases = Leases(store)
    first = leases.acquire(SCHEDULER_LEASE, "a", ttl=0.5)
    assert first is not None
    assert leases.acquire(SCHEDULER_LEASE, "b", ttl=0.5) is None  # a holds it
    assert leases.acquire(SCHEDULER_LEASE, "a", ttl=0.5) == first  # renewed: the same token
    time.sleep(0.6)
    second = leases.acquire(SCHEDULER_LEASE, "b", ttl=5)
    assert second == first + 1  # expired: b takes it with a new token
    lease = leases.get(SCHEDULER_LEASE)
    assert lease is not None
    assert lease.holder == "b"
    assert lease.valid


def test_a_stale_holder_claims_nothing_and_a_fire_is_won_once(store: RunStore) -> None:
    leases = Leases(store)
    claims = FireClaims(store, leases)
    old = leases.acquire(SCHEDULER_LEASE, "a", ttl=0.3)
    assert old is not None
    fires = [("report", T0), ("report", T0 + timedelta(seconds=1))]
    assert claims.claim("a", old, fires[:1]) == {fires[0]}
    time.sleep(0.4)
    new = leases.acquire(SCHEDULER_LEASE, "b", ttl=5)
    assert new is not None
    # a wakes up from a freeze: its token is stale, whatever it believes
    assert claims.claim("a", old, fires) == set()
    assert claims.claim("b", new, fires) == {fires[1]}  # the first fire is a's already
    assert claims.claim("b", new, fires) == set()
    assert claims.last_claimed(["report", "other"]) == {"report": fires[1][1]}


def test_concurrent_claims_of_the_same_fires_give_each_to_one(store: RunStore) -> None:
    leases = Leases(store)
    claims = FireClaims(store, leases)
    token = leases.acquire(SCHEDULER_LEASE, "a", ttl=30)
    assert token is not None
    fires = [(f"t{i}", T0) for i in range(50)]
    won: list[set[tuple[str, datetime]]] = []
    threads = [
        threading.Thread(target=lambda: won.append(claims.claim("a", token, fires)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(w) for w in won) == 50
    assert set().union(*won) == set(fires)


def test_a_command_is_taken_once_and_scheduler_commands_only_by_the_holder(
    store: RunStore,
) -> None:
    leases = Leases(store)
    commands = Commands(store, leases)
    to_scheduler = commands.send("run", None, "b", {"task": "report", "env": {"K": "secret"}})
    commands.send("cancel", "c", "b", {"run_id": "r1"})
    assert commands.take("a") == []  # a holds no lease yet
    leases.acquire(SCHEDULER_LEASE, "a", ttl=30)
    assert [c.id for c in commands.take("a")] == [to_scheduler]
    assert commands.take("a") == []
    assert [c.body for c in commands.take("c")] == [{"run_id": "r1"}]
    commands.answer(to_scheduler, {"run": "…"})
    assert commands.answer_of(to_scheduler) == (True, {"run": "…"})
    with store.engine.connect() as connection:  # the secret did not stay
        bodies = connection.execute(text(f"SELECT body FROM {commands.table.name}")).scalars()
        assert "secret" not in str(list(bodies))
    late = commands.send("run", None, "b", {})
    assert commands.withdraw(late)
    assert commands.take("a") == []


def test_a_dead_nodes_runs_are_interrupted_and_its_unrecorded_fires_settled(
    store: RunStore,
) -> None:
    leases = Leases(store)
    claims = FireClaims(store, leases)
    dead = RunStore(store.address, table_name=store.names.table, node="b")
    try:
        Nodes(dead).heartbeat()
        token = leases.acquire(SCHEDULER_LEASE, "b", ttl=30)
        assert token is not None
        now = datetime.now(UTC)
        recorded, unrecorded = ("t", now - timedelta(seconds=2)), ("t", now - timedelta(seconds=1))
        assert claims.claim("b", token, [recorded, unrecorded]) == {recorded, unrecorded}
        running = Run(
            id="20260501-120000-000000-aaaaaa",
            task="t",
            trigger=RunTrigger.schedule,
            status=RunStatus.running,
            scheduled_at=recorded[1],
            started_at=now,
        )
        dead.put([running])
    finally:
        dead.close()
    orphans = Orphans(store)
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert orphans.unrecorded_fires("a", later - timedelta(seconds=60), later) == []  # alive
    fires = orphans.unrecorded_fires("a", later - timedelta(seconds=20), later)
    assert [(f.task, f.scheduled_at, f.node) for f in fires] == [(*unrecorded, "b")]
    dead_before = later - timedelta(seconds=20)
    assert orphans.interrupt_runs("a", dead_before, later, dead_before) == [running.id]
    interrupted = store.get(running.id)
    assert interrupted is not None
    assert interrupted.status is RunStatus.interrupted
    assert interrupted.error == "node b stopped answering while this run was unfinished"


def test_a_node_started_again_finds_what_its_last_process_claimed_without_a_record(
    store: RunStore,
) -> None:
    leases = Leases(store)
    claims = FireClaims(store, leases)
    orphans = Orphans(store)
    token = leases.acquire(SCHEDULER_LEASE, "a", ttl=30)
    assert token is not None
    before = orphans.clock()
    fire = ("t", datetime.now(UTC).replace(microsecond=0))
    assert claims.claim("a", token, [fire]) == {fire}  # then killed, before its record
    started = orphans.clock()  # started again under the same name

    found = orphans.own_unrecorded_fires("a", started)
    assert [(f.task, f.scheduled_at, f.node) for f in found] == [(*fire, "a")]
    assert orphans.own_unrecorded_fires("a", before) == []  # claimed by this process
    assert orphans.own_unrecorded_fires("b", started) == []
    # The scheduler and the node itself may both settle it: one id, so one row.
    first, second = _settled(found[0]), _settled(found[0])
    assert first.id == second.id
    assert first.id.startswith(run_id_prefix(found[0].claimed_at))
    store.put([first])
    store.put([second])
    assert orphans.own_unrecorded_fires("a", started) == []
    assert [run.status for run in store.for_task("t")] == [RunStatus.interrupted]
