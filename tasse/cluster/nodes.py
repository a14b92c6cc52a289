"""The cluster's nodes as `GET /nodes` and the dashboard show them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tasse.store.leases import SCHEDULER_LEASE, Leases
from tasse.store.nodes import NodeRecord, Nodes

#: a node whose heartbeat is older than this is shown as gone (heartbeats come every 5 s)
SILENT_AFTER = timedelta(seconds=15)


@dataclass(frozen=True)
class NodeInfo:
    """One node: who it is, what it does, whether it is alive, whether it schedules now."""

    name: str
    role: str
    version: str
    pid: int
    address: str | None
    started_at: datetime
    heartbeat_at: datetime
    alive: bool
    #: it holds the scheduler lease: it fires schedules and starts runs
    leader: bool
    #: the node answering
    this: bool
    #: its runs running now (a scheduler's own, or a worker's)
    running: int = 0


def read_nodes(nodes: Nodes, leases: Leases | None) -> list[NodeInfo]:
    """Every node with a heartbeat in the store, the lease's holder marked (store calls)."""
    lease = leases.get(SCHEDULER_LEASE) if leases is not None else None
    leader = lease.holder if lease is not None and lease.valid else None
    now = datetime.now(UTC)
    running = nodes.running_by_node()
    return [
        _info(record, now, leader, nodes.name, running.get(record.name, 0))
        for record in nodes.all()
    ]


def _info(
    record: NodeRecord, now: datetime, leader: str | None, this: str, running: int
) -> NodeInfo:
    return NodeInfo(
        name=record.name,
        role=record.role,
        version=record.version,
        pid=record.pid,
        address=record.address,
        started_at=record.started_at,
        heartbeat_at=record.heartbeat_at,
        alive=now - record.heartbeat_at < SILENT_AFTER,
        leader=record.name == leader,
        this=record.name == this,
        running=running,
    )
