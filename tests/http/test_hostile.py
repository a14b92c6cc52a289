"""Odd and hostile input found in review: each is an error on its task, never a hang or a wedge."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tasse.errors import TaskConfigError
from tasse.models import RunRequest, RunStatus
from tasse.runs.logs import MAX_LINE, RunLogWriter
from tasse.schedule.triggers import upcoming
from tasse.service import Tasse
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.tasks import discovery
from tasse.tasks.triggers import prepare
from tests.conftest import MakeTask, settle
from tests.runs.test_runner import add_task, wait_final


def error_of(folder: Path) -> TaskConfigError:
    result = prepare(discovery.load_or_error(folder), "UTC")
    assert isinstance(result, TaskConfigError), result
    return result


@pytest.mark.parametrize(
    ("yaml", "key"),
    [
        ("scheduler: {trigger: interval, weeks: 1e10}", "scheduler.weeks"),
        ("scheduler: {trigger: interval, seconds: .inf}", "scheduler.seconds"),
        ("scheduler: {trigger: interval, seconds: 0.001}", "scheduler"),
        ("scheduler: {trigger: interval, seconds: 10, jitter: 1e20}", "scheduler.jitter"),
        ("scheduler: {trigger: cron, year: 9999, month: 12, day: 31, hour: 23}", None),
    ],
)
def test_values_beyond_the_calendar_are_task_errors(
    make_task: MakeTask, yaml: str, key: str | None
) -> None:
    folder = make_task("odd", yaml=yaml + "\n")
    result = prepare(discovery.load_or_error(folder), "UTC")
    if key is None:  # a legal but far-away schedule loads, and listing its fires is safe
        assert not isinstance(result, TaskConfigError), result
        fires = upcoming(result[1], 5, datetime.now(UTC))
        assert [(f.year, f.month, f.day) for f in fires] == [(9999, 12, 31)] * len(fires)
        assert 1 <= len(fires) <= 5
        return
    assert isinstance(result, TaskConfigError)
    assert result.key == key


def test_a_huge_value_is_shown_shortened(make_task: MakeTask) -> None:
    # A YAML alias bomb: 1 KB of text standing for ten million strings.
    levels = ["  - &a0 [" + ", ".join(["x"] * 10) + "]"]
    levels += [f"  - &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 7)]
    folder = make_task("bomb", yaml="description:\n" + "\n".join(levels) + "\n")
    error = error_of(folder)
    assert error.key == "description"
    assert len(str(error)) < 1000


def test_a_fifo_named_task_yaml_is_an_error_not_a_hang(make_task: MakeTask) -> None:
    folder = make_task("pipe", yaml=None)
    os.mkfifo(folder / "task.yaml")
    error = error_of(folder)
    assert "not a regular file" in str(error)


@pytest.mark.anyio
async def test_nested_entrypoint_appearing_is_loaded_at_the_next_full_rescan(
    tasse: Tasse, make_task: MakeTask
) -> None:
    folder = make_task("nested", yaml="entrypoint: scripts/run.py\n", script=None)
    (folder / "scripts").mkdir()
    settle(folder)  # nothing that discovery stats will change from here on
    await tasse.rescan()
    assert tasse.get_task("nested").error is not None
    before = folder.stat()
    (folder / "scripts" / "run.py").write_text("print('found')\n")
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))  # as it was: unchanged
    await tasse.rescan()
    assert tasse.get_task("nested").error is None


@pytest.mark.anyio
async def test_a_log_that_cannot_be_written_does_not_wedge_the_task(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    await add_task(tasse, make_task, "full", script="print('x' * 1000)")
    log = data_dir / "logs" / "full" / "log.txt"
    log.parent.mkdir(parents=True)
    log.symlink_to("/dev/full")  # every write: No space left on device
    first = await wait_final(tasse, tasse.run_now("full", RunRequest()).id)
    assert first.status is RunStatus.failed
    second = tasse.run_now("full", RunRequest())  # TaskBusyError here: the task is wedged
    assert (await wait_final(tasse, second.id)).status.is_final


def test_output_without_newlines_reaches_log_txt_in_bounded_pieces(tmp_path: Path) -> None:
    writer = RunLogWriter(LogLayout(tmp_path), "bar", "run-1")
    writer.open()
    for _ in range(3 * MAX_LINE // 100):
        writer.write(b"\r" + b"#" * 99)  # a progress bar
    writer.close()
    lines = (tmp_path / "bar" / "log.txt").read_bytes().splitlines()
    assert len(lines) >= 3
    assert all(len(line) < MAX_LINE + 100 for line in lines)
    assert writer.path.stat().st_size == 3 * MAX_LINE // 100 * 100


@pytest.mark.parametrize(
    "body",
    [{"env": {"A": "a\x00b"}}, {"args": ["\ud800"]}, {"env": {"A=B": "x"}}],
)
def test_text_a_process_cannot_take_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RunRequest.model_validate(body)


def test_tasse_run_refuses_a_path_instead_of_a_name(data_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tasse", "run", "../../etc", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "is not a task name" in result.stderr


@pytest.mark.anyio
async def test_an_output_flood_is_capped_and_the_run_still_succeeds(
    make_task: MakeTask, data_dir: Path
) -> None:
    make_task("flood", script="import sys\nfor _ in range(3000):\n    print('z' * 1023)\n")
    settings = Settings(data_dir=data_dir, max_run_log_bytes=100_000, watch=False, _env_file=None)
    tasse = Tasse(settings)
    await tasse.start()
    try:
        run = await wait_final(tasse, tasse.run_now("flood", RunRequest()).id)
    finally:
        await tasse.stop()
    assert run.status is RunStatus.succeeded
    assert tasse.layout.run_log("flood", run.id).stat().st_size < 100_000 + 200
    last = tasse.layout.task_log("flood").read_text().splitlines()[-1]
    assert f"{3000 * 1024 - 100_000} bytes of output beyond the limit were dropped" in last


@pytest.mark.anyio
@pytest.mark.parametrize("link", ["task.py", "task.yaml", "requirements.txt", "folder"])
async def test_a_symlink_out_of_the_data_directory_is_an_error_on_its_task(
    tasse: Tasse, make_task: MakeTask, data_dir: Path, tmp_path: Path, link: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.py"
    secret.write_text("print('read from outside')\n")
    if link == "folder":
        (outside / "task.py").write_text("print('outside')\n")
        (data_dir / "tasks").mkdir(parents=True, exist_ok=True)
        (data_dir / "tasks" / "sneaky").symlink_to(outside, target_is_directory=True)
    else:
        folder = make_task("sneaky", script=None if link == "task.py" else "print(1)")
        (folder / link).symlink_to(secret)
    make_task("fine")
    await tasse.rescan()

    error = tasse.registry.entries["sneaky"].error
    assert isinstance(error, TaskConfigError)
    assert "symlink leading out of the data directory" in str(error)
    assert str(outside) in str(error)
    assert tasse.registry.entries["fine"].task is not None  # the others load


@pytest.mark.anyio
async def test_a_symlink_inside_the_data_directory_is_followed(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    shared = data_dir / "shared"
    shared.mkdir()
    (shared / "job.py").write_text("print('shared code')\n")
    folder = make_task("linked", script=None)
    (folder / "task.py").symlink_to(shared / "job.py")
    task = await add_task(tasse, make_task, "linked", script=None)
    run = await wait_final(tasse, tasse.run_now(task.name, RunRequest()).id)
    assert run.status is RunStatus.succeeded
    assert (await tasse.read_log(run.id)) == b"shared code\n"
