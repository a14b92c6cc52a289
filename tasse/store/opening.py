"""The store's parts as a server's settings make them: its log folders, its database, and
the writer with its journal — the same for a `tasse serve` node and a `tasse worker`."""

from __future__ import annotations

from tasse.settings import Settings
from tasse.store.database import Timeouts
from tasse.store.journal import Journal
from tasse.store.log_files import LogLayout
from tasse.store.nodes import SCHEDULER
from tasse.store.runs import RunStore
from tasse.store.writer import RecordWriter


def log_layout(settings: Settings) -> LogLayout:
    """Where the runs' logs go, with their caps."""
    return LogLayout(
        settings.logs_dir,
        settings.max_run_log_bytes,
        settings.max_task_log_bytes,
        settings.task_log_backups,
    )


def open_store(settings: Settings, node: str | None, node_address: str | None) -> RunStore:
    """The job store (migrated); `node`: this cluster node's name, stamped on its runs."""
    return RunStore(
        settings.store_url,
        settings.store_schema_name,
        settings.store_table_name,
        Timeouts(settings.store_connect_timeout, settings.store_statement_timeout),
        node=node,
        node_address=node_address,
    )


def record_writer(store: RunStore, settings: Settings, role: str = SCHEDULER) -> RecordWriter:
    """The writer of every record, journaling what the store cannot take."""
    return RecordWriter(
        store,
        Journal(settings.journal_path, settings.journal_max_bytes),
        deadline=settings.store_statement_timeout,
        role=role,
    )
