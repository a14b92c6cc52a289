"""A cluster on loopback for tests and benchmarks: a private PostgreSQL, a shared tasks
folder, `tasse serve --cluster` nodes and `tasse worker`s as separate processes, each with
its own data folder — killed, frozen and continued as a failing machine would be."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tasse.store.database import make_engine
from tests.http.test_api import Server, wait_until
from tests.ports import free_port
from tests.store.private_postgres import PrivateCluster


class Rig:
    """A private PostgreSQL and the nodes sharing it."""

    def __init__(self, postgres: PrivateCluster | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tasse-cluster-"))
        self.tasks = self.root / "tasks"
        self.tasks.mkdir()
        self.postgres = postgres or PrivateCluster()
        self.nodes: dict[str, Server] = {}
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._engine: Any = None

    def __enter__(self) -> Rig:
        self.postgres.create()
        self._engine = make_engine(self.postgres.address)
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGCONT)
            worker.kill()
            worker.wait(10)
        for node in self.nodes.values():
            node.http.close()
            if node.process is not None and node.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.process.pid, signal.SIGCONT)
                node.process.kill()
                node.process.wait(10)
        if self._engine is not None:
            self._engine.dispose()
        self.postgres.destroy()

    def task(self, name: str, yaml: str, script: str = "echo fired\n") -> None:
        """A task folder in the shared tasks folder (a shell script: cheap to start)."""
        folder = self.tasks / name
        folder.mkdir()
        (folder / "task.yaml").write_text(textwrap.dedent(yaml))
        (folder / "task.sh").write_text(script)

    def data(self, name: str) -> Path:
        data = self.root / name / "data"
        if not data.exists():
            data.mkdir(parents=True)
            (data / "tasks").symlink_to(self.tasks)
        return data

    def start(
        self, name: str, env: dict[str, str] | None = None, flags: tuple[str, ...] = ()
    ) -> Server:
        """Start node `name` (again, on its own data folder, if it ran before)."""
        node = Server(
            self.data(name), env=env, flags=self.flags(name, self.postgres.address, flags)
        )
        return self.add(name, node)

    def add(self, name: str, node: Server) -> Server:
        """Start a node made elsewhere (in a network namespace, say) as node `name`."""
        node.env = {"TASSE_LOG_LEVEL": "INFO", **node.env}
        if name in self.nodes:  # started again: the old process's connections are dead
            self.nodes[name].http.close()
        node.start(timeout=30)
        self.nodes[name] = node
        return node

    @staticmethod
    def flags(name: str, store: str, more: tuple[str, ...] = ()) -> list[str]:
        """A cluster node's command-line flags."""
        return ["--cluster", "--node-name", name, "--store-address", store, *more]

    def start_worker(
        self, name: str, flags: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `tasse worker` `name` and wait for its heartbeat in the store."""
        data = self.data(name)
        command = [sys.executable, "-m", "tasse", "worker", "--data-dir", str(data)]
        command += ["--node-name", name, "--store-address", self.postgres.address]
        command += ["--http-listen-address", f"127.0.0.1:{free_port()}", *flags]
        settings = {"TASSE_KILL_GRACE": "1", "TASSE_LOG_LEVEL": "INFO", **(env or {})}
        with (data.parent / "worker.log").open("ab") as output:
            worker = subprocess.Popen(
                command, env={**os.environ, **settings}, stdout=output, stderr=subprocess.STDOUT
            )
        self.workers[name] = worker
        started = self.query("SELECT clock_timestamp() AT TIME ZONE 'UTC'")[0][0]

        def beating() -> bool:
            if worker.poll() is not None:
                raise AssertionError(f"worker exited: {self.worker_log(name)}")
            rows = self.query(
                "SELECT 1 FROM tasse_nodes WHERE name = :name AND role = 'worker'"
                " AND heartbeat_at >= :started",
                name=name,
                started=started,
            )
            return bool(rows)

        wait_until(beating, timeout=30)
        return worker

    def worker_log(self, name: str) -> str:
        return (self.root / name / "worker.log").read_text(errors="replace")

    def _process(self, name: str) -> subprocess.Popen[bytes]:
        if name in self.workers:
            return self.workers[name]
        process = self.nodes[name].process
        assert process is not None
        return process

    def scheduler(self) -> str | None:
        """The node holding the scheduler lease now, by the store."""
        rows = self.query(
            "SELECT holder FROM tasse_leases WHERE name = 'scheduler'"
            " AND expires_at > (clock_timestamp() AT TIME ZONE 'UTC')"
        )
        return rows[0][0] if rows else None

    def wait_for_scheduler(self, timeout: float = 20) -> str:
        found: str = wait_until(self.scheduler, timeout=timeout)
        return found

    def kill(self, name: str) -> None:
        """kill -9 the node or worker, as a crash would (its runs' processes are left)."""
        process = self._process(name)
        process.kill()
        process.wait(10)

    def freeze(self, name: str) -> None:
        os.kill(self._process(name).pid, signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        os.kill(self._process(name).pid, signal.SIGCONT)

    def query(self, sql: str, **values: Any) -> list[Any]:
        with self._engine.connect() as connection:
            return list(connection.execute(text(sql), values))

    def fires_without_one_record(
        self, tasks: Sequence[str], began: float, ended: float
    ) -> dict[tuple[str, int], int]:
        """Each task's fire times (whole seconds, `* * * * * *`) from `began` to `ended`
        (time.time()) whose number of records is not one: what a lost or doubled fire is."""
        records = Counter(
            (task, round(at))
            for task, at in self.query(
                "SELECT task, EXTRACT(EPOCH FROM scheduled_at AT TIME ZONE 'UTC')"
                " FROM tasse_runs WHERE trigger = 'schedule'"
            )
        )
        window = range(math.ceil(began), math.floor(ended) - 1)
        return {
            (task, second): records[(task, second)]
            for task in tasks
            for second in window
            if records[(task, second)] != 1
        }

    def execute(self, sql: str, **values: Any) -> None:
        """Run a statement that writes, and commit it."""
        with self._engine.begin() as connection:
            connection.execute(text(sql), values)

    def first_claim_after(self, moment: float, by: str) -> float | None:
        """Seconds from `moment` (time.time()) to the first fire `by` claimed after it."""
        rows = self.query(
            "SELECT EXTRACT(EPOCH FROM min(claimed_at) AT TIME ZONE 'UTC')"
            " FROM tasse_fire_claims WHERE node = :node"
            " AND claimed_at > to_timestamp(:moment) AT TIME ZONE 'UTC'",
            node=by,
            moment=moment,
        )
        first = rows[0][0]
        return None if first is None else float(first) - moment
