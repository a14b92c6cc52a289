"""Shared fixtures: real task folders in tmp_path, real settings, a real running Tasse."""

from __future__ import annotations

import asyncio
import os
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tasse.models import Run
from tasse.service import Tasse
from tasse.settings import Settings
from tests.http.test_api import Server

MakeTask = Callable[..., Path]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "data" / "tasks").mkdir(parents=True)
    return tmp_path / "data"


@pytest.fixture
def make_task(data_dir: Path) -> MakeTask:
    """Create `data/tasks/<name>/` with a task.yaml (text, dedented) and a task.py."""

    def make(
        name: str, yaml: str | None = None, script: str | None = 'print("hello")', **files: str
    ) -> Path:
        folder = data_dir / "tasks" / name
        folder.mkdir(parents=True, exist_ok=True)
        if yaml is not None:
            (folder / "task.yaml").write_text(textwrap.dedent(yaml))
        if script is not None:
            (folder / "task.py").write_text(textwrap.dedent(script))
        for filename, content in files.items():
            (folder / filename.replace("__", ".")).write_text(textwrap.dedent(content))
        return folder

    return make


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """Settings for a test: its own data folder, fast stops, the file watcher on."""
    return Settings(data_dir=data_dir, kill_grace=1.0, debounce=0.05, _env_file=None)


@pytest.fixture
async def tasse(settings: Settings) -> AsyncIterator[Tasse]:
    """A started Tasse on the test's data folder (use inside `@pytest.mark.anyio` tests)."""
    service = Tasse(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def settle(folder: Path, seconds_ago: float = 10.0) -> None:
    """Date every file and folder below `folder` back, as if written a while ago.

    Discovery re-reads folders changed in the last two seconds at every scan (a coarse
    filesystem clock could hide a second edit); settled folders count as unchanged.
    """
    moment = time.time() - seconds_ago
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (moment, moment))


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start real `tasse serve` processes on the test's data folder, with flags and env."""
    (tmp_path / "data" / "tasks").mkdir(parents=True, exist_ok=True)
    started: list[Server] = []

    def start(*flags: str, **env: str) -> Server:
        server = Server(tmp_path / "data", env, list(flags))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None and server.process.poll() is None:
            code, output = server.stop()
            assert code == 0, output
        server.http.close()


async def history(tasse: Tasse, task: str, **query: Any) -> list[Run]:
    """The task's runs as the store has them, once the writer has written what it holds."""
    assert await asyncio.to_thread(tasse.records.wait_written, 10), "the writer fell behind"
    return tasse.store.for_task(task, **query)


async def stored(tasse: Tasse, run_id: str) -> Run | None:
    """One run as the store has it, once the writer has written what it holds."""
    assert await asyncio.to_thread(tasse.records.wait_written, 10), "the writer fell behind"
    return tasse.store.get(run_id)
