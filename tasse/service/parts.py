"""The parts a `Tasse` is made of, as its groups of answers see them.

`Tasse.__init__` (`service/tasse.py`) builds each one; the groups (`Discovery`,
`TaskAnswers`, `RunAnswers`, `ServerAnswers`) only read them, so what each group relies on
is written down once, here.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from tasse.cluster.node import Cluster
from tasse.cluster.remote import RemoteRuns
from tasse.envs.provisioner import Provisioner
from tasse.events import EventHub
from tasse.metrics.metrics import Metrics
from tasse.models import TaskCounts
from tasse.notify.notifier import Notifier
from tasse.runs.dispatcher import Dispatcher
from tasse.runs.outcomes import RecentOutcomes
from tasse.runs.pauses import PausedTasks
from tasse.schedule.lag import LoopLag
from tasse.schedule.scheduler import Scheduler
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.runs import RunStore
from tasse.store.timeline import Timeline
from tasse.store.writer import RecordWriter
from tasse.tasks.catalog import Catalog
from tasse.tasks.registry import Registry


class Parts:
    """What every group of `Tasse`'s answers may use (built in `Tasse.__init__`)."""

    settings: Settings
    layout: LogLayout
    store: RunStore
    records: RecordWriter
    registry: Registry
    events: EventHub
    metrics: Metrics
    envs: Provisioner
    pauses: PausedTasks
    notifier: Notifier
    dispatcher: Dispatcher
    #: a cluster's runs on workers, followed from here (None: runs run on this node)
    remote: RemoteRuns | None
    #: this node's part in a cluster (docs/cluster.md); None for a server on its own
    cluster: Cluster | None
    scheduler: Scheduler
    catalog: Catalog
    timeline: Timeline
    #: the overview's strips of last outcomes, in memory once read
    outcomes: RecentOutcomes
    lag: LoopLag
    started_at: datetime | None
    #: the tasks' counts by state, and when they were counted (`time.monotonic`)
    _counted: tuple[float, TaskCounts] | None
    _rescan_lock: asyncio.Lock
    _next_fires_slots: asyncio.Semaphore
