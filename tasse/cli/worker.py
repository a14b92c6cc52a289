"""`tasse worker`: a cluster node that runs what the scheduler queued (docs/cluster.md); its
only API is its runs' logs, which the other nodes relay (`http/worker_app.py`)."""

from __future__ import annotations

import argparse
import logging

from tasse.settings import Settings
from tasse.store.data_folder import check_writable
from tasse.store.data_lock import DataLock
from tasse.store.runs import check_store

EXAMPLES = """\
examples:
  tasse worker --store-address postgresql://tasse@db/tasse
  tasse worker --store-address postgresql://tasse@db/tasse --queues gpu,default --concurrency 2
  tasse worker --node-name worker-1 --data-dir /srv/tasse-worker"""


def add_worker_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """The `worker` sub-command and its flags."""
    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="run a cluster's queued runs (no scheduling; its API: its runs' logs)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--queues", help="comma-separated queues to take runs from (default: default)"
    )
    worker.add_argument("--concurrency", type=int, help="runs carried out at once (default: 4)")
    worker.add_argument("--node-name", help="this node's name in the cluster (default: host name)")
    worker.add_argument(
        "--http-listen-address",
        help="HOST:PORT where the other nodes read its runs' logs (default: 127.0.0.1:4243)",
    )
    worker.set_defaults(handler=work, cluster=True)


def work(settings: Settings, args: argparse.Namespace) -> int:
    """Take runs until SIGTERM or SIGINT; then stop the runs under way and exit 0."""
    check_writable(settings.data_dir)
    with DataLock(settings.data_dir):
        from tasse.http.server import serve  # its log routes are the API's own

        check_store(settings.store_url, settings.store_schema_name, settings.store_table_name)
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
        return 0 if serve(settings, worker=True) else 1
