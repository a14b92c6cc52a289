"""Log files: a run's raw output, the task's timestamped log, and following a run live."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tasse.runs.logs import RunLogWriter, follow
from tasse.store.log_files import LogLayout

RUN_ID = "20261122-101500-123456-9f3a1c"


@pytest.fixture
def layout(tmp_path: Path) -> LogLayout:
    return LogLayout(tmp_path / "logs")


@pytest.fixture
def writer(layout: LogLayout) -> Iterator[RunLogWriter]:
    """An open writer for one run of task `report`, closed afterwards."""
    writer = RunLogWriter(layout, "report", RUN_ID)
    writer.open()
    yield writer
    if not writer.closed:
        writer.close()


def task_log_lines(layout: LogLayout, task: str = "report") -> list[tuple[str, str, str]]:
    """log.txt split into (timestamp, [run id], text) per line."""
    lines = layout.task_log(task).read_text().splitlines()
    return [(stamp, run_id, text) for stamp, run_id, text in (line.split(" ", 2) for line in lines)]


def test_complete_lines_reach_the_task_log_and_partial_ones_wait(
    writer: RunLogWriter, layout: LogLayout
) -> None:
    writer.write(b"hel")
    writer.write(b"lo\nwor")
    assert writer.path.read_bytes() == b"hello\nwor"
    assert [text for _, _, text in task_log_lines(layout)] == ["hello"]

    writer.write(b"ld\nlast")
    writer.close()
    assert writer.path.read_bytes().startswith(b"hello\nworld\nlast")
    assert [text for _, _, text in task_log_lines(layout)] == ["hello", "world", "last"]


def test_task_log_lines_carry_a_timestamp_and_the_run_id(
    writer: RunLogWriter, layout: LogLayout
) -> None:
    writer.note("run started (manual)")
    writer.write(b"output\n")
    writer.close()
    lines = task_log_lines(layout)
    assert [text for _, _, text in lines] == ["-- run started (manual)", "output"]
    for stamp, run_id, _ in lines:
        assert datetime.fromisoformat(stamp).utcoffset() is not None
        assert run_id == f"[{RUN_ID}]"


def test_runs_of_a_task_share_its_log_and_keep_their_own(layout: LogLayout) -> None:
    ids = [f"20261122-10150{i}-000000-aaaaaa" for i in range(2)]
    for run_id in ids:
        writer = RunLogWriter(layout, "report", run_id)
        writer.open()
        writer.write(f"from {run_id}\n".encode())
        writer.close()
    for run_id in ids:
        assert layout.run_log("report", run_id).read_bytes() == f"from {run_id}\n".encode()
    assert [(run_id, text) for _, run_id, text in task_log_lines(layout)] == [
        (f"[{run_id}]", f"from {run_id}") for run_id in ids
    ]


@pytest.mark.anyio
async def test_follow_yields_what_is_there_then_live_output_then_stops(
    writer: RunLogWriter,
) -> None:
    writer.write(b"before\n")
    stream = follow(writer.path, writer)
    assert isinstance(stream, AsyncGenerator)
    async with contextlib.aclosing(stream):
        assert await anext(stream) == b"before\n"

        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)  # the follower is now waiting for news
        assert not waiting.done()
        began = time.monotonic()
        writer.write(b"live\n")
        assert await asyncio.wait_for(waiting, 5) == b"live\n"
        # A write wakes the follower at once, not at its once-a-second look.
        assert time.monotonic() - began < 0.9

        writer.write(b"tail")
        writer.close()
        rest = [chunk async for chunk in stream]
    assert b"".join(rest).startswith(b"tail")


@pytest.mark.anyio
async def test_follow_of_a_finished_run_gives_its_output_and_ends(writer: RunLogWriter) -> None:
    writer.write(b"all done\n")
    writer.close()
    assert [chunk async for chunk in follow(writer.path, None)] == [b"all done\n"]
    missing = writer.path.with_name("20261122-000000-000000-000000.log")
    assert [chunk async for chunk in follow(missing, None)] == []


def test_run_log_lives_in_the_task_folder(layout: LogLayout) -> None:
    path = layout.run_log("report", RUN_ID)
    assert path == layout.logs_dir / "report" / "runs" / f"{RUN_ID}.log"
    assert layout.task_log("report") == layout.logs_dir / "report" / "log.txt"


@pytest.mark.parametrize("run_id", ["../secret", "a/b", "..", "", "/etc/passwd", "x" * 65])
def test_a_run_id_cannot_leave_the_runs_folder(layout: LogLayout, run_id: str) -> None:
    with pytest.raises(ValueError, match="not a run id"):
        layout.run_log("report", run_id)


def test_a_run_keeps_only_its_first_bytes_and_counts_the_rest(tmp_path: Path) -> None:
    layout = LogLayout(tmp_path / "logs", max_run_log_bytes=1024)
    writer = RunLogWriter(layout, "flood", "run-1")
    writer.open()
    for _ in range(100):
        writer.write(b"x" * 99 + b"\n")
    writer.close()
    kept = writer.path.read_bytes()
    assert kept.startswith(b"x" * 99 + b"\n")
    assert b"[tasse] output beyond 1024 bytes is dropped" in kept
    assert len(kept) < 1024 + 200
    assert writer.dropped == 100 * 100 - 1024
    assert len(layout.task_log("flood").read_bytes()) < 3 * 1024


def test_log_txt_rolls_over_and_keeps_a_few(tmp_path: Path) -> None:
    layout = LogLayout(tmp_path / "logs", max_task_log_bytes=1024, task_log_backups=2)
    for number in range(4):
        writer = RunLogWriter(layout, "busy", f"run-{number}")
        writer.open()
        writer.write(b"y" * 2000 + b"\n")
        writer.close()
    folder = layout.task_log("busy").parent
    assert sorted(p.name for p in folder.glob("log.txt*")) == ["log.txt", "log.txt.1", "log.txt.2"]
    assert b"[run-3]" in layout.task_log("busy").read_bytes()
    assert b"[run-2]" in (folder / "log.txt.1").read_bytes()
