"""Discovery: task folders on disk → tasks, or errors that name the task, the file and the key."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tasse.errors import TaskConfigError
from tasse.schedule.specs import IntervalSpec
from tasse.tasks import discovery, task_file
from tasse.tasks.task import Task
from tasse.tasks.triggers import prepare
from tests.conftest import MakeTask, settle

INTERVAL_10S = """
    scheduler:
      trigger: interval
      seconds: 10
"""


@pytest.fixture
def tasks_dir(data_dir: Path) -> Path:
    return data_dir / "tasks"


def load(folder: Path) -> Task:
    """Load a folder that must be a good task."""
    result = discovery.load_or_error(folder)
    assert isinstance(result, Task), f"expected a task, got {result}"
    return result


def error_of(folder: Path) -> TaskConfigError:
    """Load a folder that must be broken, and return its error."""
    result = discovery.load_or_error(folder)
    assert isinstance(result, TaskConfigError), f"expected an error, got {result!r}"
    return result


def assert_names_file(error: TaskConfigError, folder: Path, key: str | None) -> None:
    """The message a user reads names the task, its task.yaml and the offending key."""
    assert error.task == folder.name
    assert error.file == str(folder / "task.yaml")
    assert error.key == key
    message = str(error)
    assert repr(folder.name) in message
    assert str(folder / "task.yaml") in message
    if key is not None:
        assert key in message


# -- names -------------------------------------------------------------------------------


def test_each_well_named_folder_becomes_a_task_of_that_name(
    make_task: MakeTask, tasks_dir: Path
) -> None:
    names = {"hello", "Report.v2", "db_backup-nightly", "7", "x" * 64}
    for name in names:
        make_task(name)

    found = discovery.scan(tasks_dir, {})

    assert set(found.loaded) == names
    assert {task.name for task in found.loaded.values() if isinstance(task, Task)} == names
    assert found.rejected == []


@pytest.mark.parametrize("name", ["bad name", "-leading-dash", "_private", "x" * 65, "café"])
def test_badly_named_folders_are_rejected_not_loaded(
    make_task: MakeTask, tasks_dir: Path, name: str
) -> None:
    make_task("good")
    make_task(name)

    found = discovery.scan(tasks_dir, {})

    assert found.rejected == [name]
    assert set(found.loaded) == {"good"}


def test_hidden_folders_and_stray_files_are_neither_tasks_nor_errors(
    make_task: MakeTask, tasks_dir: Path
) -> None:
    make_task("good")
    make_task(".git")
    (tasks_dir / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tasks_dir / "README.md").write_text("my tasks\n")
    (tasks_dir / "notes.yaml").write_text("a: 1\n")

    found = discovery.scan(tasks_dir, {})

    assert set(found.loaded) == {"good"}
    assert found.rejected == []


def test_a_missing_tasks_folder_has_no_tasks(tmp_path: Path) -> None:
    found = discovery.scan(tmp_path / "nowhere", {})

    assert (found.loaded, found.removed, found.rejected) == ({}, set(), [])


# -- task.yaml is optional; entrypoints ----------------------------------------------------


def test_a_folder_with_only_task_py_is_an_on_demand_task(make_task: MakeTask) -> None:
    task = load(make_task("plain"))

    assert task.spec.triggers == []
    assert task.spec.enabled
    assert task.command == ("python", "task.py")


@pytest.mark.parametrize("content", ["", "# nothing to say yet\n", "---\n"])
def test_an_empty_task_yaml_means_all_defaults(make_task: MakeTask, content: str) -> None:
    task = load(make_task("empty", yaml=content))

    assert task.spec.triggers == []
    assert task.spec.args == []


def test_task_sh_runs_with_bash(make_task: MakeTask) -> None:
    folder = make_task("shell", script=None, **{"task.sh": "echo hi\n"})

    assert load(folder).command == ("bash", "task.sh")


def test_task_py_wins_over_task_sh(make_task: MakeTask) -> None:
    folder = make_task("both", **{"task.sh": "echo hi\n"})

    assert load(folder).command == ("python", "task.py")


@pytest.mark.parametrize(
    ("entrypoint", "command"),
    [
        ("src/main.py", ("python", "src/main.py")),
        ("./src/main.py", ("python", "src/main.py")),
        ("bin/run.sh", ("bash", "bin/run.sh")),
        ("bin/run", ("./bin/run",)),
    ],
)
def test_entrypoint_key_names_a_file_in_a_subfolder(
    make_task: MakeTask, entrypoint: str, command: tuple[str, ...]
) -> None:
    folder = make_task("custom", yaml=f"entrypoint: {entrypoint}\n", script=None)
    target = folder / entrypoint
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("print('hi')\n")

    assert load(folder).command == command


@pytest.mark.parametrize("entrypoint", ["../other/task.py", "/etc/hostname", "src/../../x.py"])
def test_an_entrypoint_outside_the_task_folder_is_rejected(
    make_task: MakeTask, entrypoint: str
) -> None:
    make_task("other")
    folder = make_task("escape", yaml=f"entrypoint: {entrypoint}\n", script=None)
    (folder.parent / "x.py").write_text("print('outside')\n")

    error = error_of(folder)

    assert_names_file(error, folder, "entrypoint")
    assert "must stay inside the task folder" in str(error)


def test_an_entrypoint_that_does_not_exist_is_an_error(make_task: MakeTask) -> None:
    folder = make_task("typo", yaml="entrypoint: mian.py\n")

    error = error_of(folder)

    assert_names_file(error, folder, "entrypoint")
    assert "'mian.py' does not exist" in str(error)


def test_a_folder_without_any_entrypoint_says_what_is_missing(make_task: MakeTask) -> None:
    folder = make_task("empty", yaml=INTERVAL_10S, script=None)

    error = error_of(folder)

    assert error.task == "empty"
    assert str(folder) in str(error)
    assert "has no task.py or task.sh" in str(error)


# -- errors name the task, the file and the key ---------------------------------------------


def test_an_unknown_key_under_scheduler_is_named(make_task: MakeTask) -> None:
    folder = make_task(
        "typo",
        yaml="""
            scheduler:
              trigger: interval
              secondz: 10
        """,
    )

    error = error_of(folder)

    assert_names_file(error, folder, "scheduler.secondz")
    assert "unknown key 'secondz'" in str(error)


def test_an_unknown_top_level_key_is_named(make_task: MakeTask) -> None:
    folder = make_task("typo", yaml="schedulr:\n  trigger: interval\n  seconds: 10\n")

    error = error_of(folder)

    assert_names_file(error, folder, "schedulr")
    assert "unknown key 'schedulr'" in str(error)


@pytest.mark.parametrize(
    ("key", "yaml", "shown"),
    [
        ("scheduler.hour", "scheduler: {trigger: cron, hour: 25}", "25"),
        ("schedules.1.minute", "schedules: [{trigger: cron}, {trigger: cron, minute: 61}]", "61"),
        ("scheduler.day_of_week", "scheduler: {trigger: cron, day_of_week: someday}", "someday"),
    ],
)
def test_an_out_of_range_cron_field_is_a_task_error_naming_the_key(
    make_task: MakeTask, key: str, yaml: str, shown: str
) -> None:
    folder = make_task("cron", yaml=yaml)

    result = prepare(load(folder), "UTC")

    assert isinstance(result, TaskConfigError)
    assert_names_file(result, folder, key)
    assert shown in str(result)


@pytest.mark.parametrize(
    ("yaml", "key", "shown"),
    [
        ("timeout: soon", "timeout", "'soon'"),
        ("timeout: 0", "timeout", "greater than 0"),
        ("enabled: maybe", "enabled", "'maybe'"),
        ("args: --verbose", "args", "'--verbose'"),
        ("env: [API_URL]", "env", "['API_URL']"),
        ("description: [a, b]", "description", "['a', 'b']"),
        ("scheduler: {trigger: interval, seconds: ten}", "scheduler.seconds", "'ten'"),
        ("scheduler: {trigger: interval, minutes: -5}", "scheduler.minutes", "-5"),
        ("scheduler: {trigger: date, run_date: someday}", "scheduler.run_date", "'someday'"),
        ("scheduler: {trigger: weekly}", "scheduler", "'weekly'"),
        ("scheduler: {seconds: 10}", "scheduler", "trigger"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_its_key(
    make_task: MakeTask, yaml: str, key: str, shown: str
) -> None:
    folder = make_task("wrong", yaml=yaml)

    error = error_of(folder)

    assert_names_file(error, folder, key)
    assert shown in error.problem


def test_several_problems_report_the_first_and_count_the_rest(make_task: MakeTask) -> None:
    folder = make_task("wrong", yaml="timeout: soon\nenabled: maybe\n")

    error = error_of(folder)

    assert error.key == "enabled"
    assert "and 1 more problem" in str(error)


def test_invalid_yaml_reports_the_line(make_task: MakeTask) -> None:
    folder = make_task(
        "broken",
        yaml="""
            description: fine
            scheduler:
              trigger: [interval
              seconds: 10
        """,
    )

    error = error_of(folder)

    assert_names_file(error, folder, None)
    assert "is not valid YAML" in str(error)
    assert "line 5" in str(error)


@pytest.mark.parametrize(
    ("content", "kind"), [("- a\n- b\n", "list"), ("just words\n", "str"), ("42\n", "int")]
)
def test_yaml_that_is_not_a_mapping_is_rejected(
    make_task: MakeTask, content: str, kind: str
) -> None:
    folder = make_task("flat", yaml=content)

    error = error_of(folder)

    assert_names_file(error, folder, None)
    assert f"must be a mapping of keys, not {kind}" in str(error)


def test_a_task_yaml_that_is_not_utf8_is_rejected(make_task: MakeTask) -> None:
    folder = make_task("latin1")
    (folder / "task.yaml").write_bytes("description: café\n".encode("latin-1"))

    error = error_of(folder)

    assert_names_file(error, folder, None)
    assert "is not UTF-8 text" in str(error)


def test_an_oversized_task_yaml_is_rejected_without_parsing(make_task: MakeTask) -> None:
    size = task_file.MAX_TASK_FILE_BYTES + 1
    folder = make_task("huge", yaml="#" * (size - 1) + "\n")

    error = error_of(folder)

    assert_names_file(error, folder, None)
    assert f"is {size} bytes" in str(error)
    assert str(task_file.MAX_TASK_FILE_BYTES) in str(error)


@pytest.mark.parametrize(
    ("yaml", "key"),
    [
        ("timezone: Mars/Olympus", "timezone"),
        ("scheduler: {trigger: cron, hour: 6, timezone: Mars/Olympus}", "scheduler.timezone"),
    ],
)
def test_an_unknown_timezone_is_named(make_task: MakeTask, yaml: str, key: str) -> None:
    folder = make_task("tz", yaml=yaml)

    error = error_of(folder)

    assert_names_file(error, folder, key)
    assert "unknown time zone 'Mars/Olympus'" in str(error)


def test_a_broken_task_does_not_affect_the_others(make_task: MakeTask, tasks_dir: Path) -> None:
    make_task("good", yaml=INTERVAL_10S)
    make_task("bad", yaml="scheduler: [")

    found = discovery.scan(tasks_dir, {})

    assert isinstance(found.loaded["good"], Task)
    assert isinstance(found.loaded["bad"], TaskConfigError)


# -- fingerprints: rescans re-read only what changed -----------------------------------------


def test_an_unchanged_rescan_parses_nothing(make_task: MakeTask, tasks_dir: Path) -> None:
    make_task("one", yaml=INTERVAL_10S)
    make_task("two")
    make_task("broken", yaml="scheduler: [")
    settle(tasks_dir)
    first = discovery.scan(tasks_dir, {})

    again = discovery.scan(tasks_dir, first.fingerprints)

    assert again.loaded == {}
    assert again.removed == set()
    assert again.fingerprints == first.fingerprints


def test_an_in_place_edit_of_task_yaml_is_picked_up(make_task: MakeTask, tasks_dir: Path) -> None:
    folder = make_task("edited", yaml=INTERVAL_10S)
    make_task("other")
    settle(tasks_dir)
    first = discovery.scan(tasks_dir, {})

    (folder / "task.yaml").write_text("scheduler: {trigger: interval, minutes: 5}\n")
    again = discovery.scan(tasks_dir, first.fingerprints)

    assert set(again.loaded) == {"edited"}
    task = again.loaded["edited"]
    assert isinstance(task, Task)
    assert isinstance(task.spec.scheduler, IntervalSpec)
    assert task.spec.scheduler.minutes == 5


def test_a_same_size_edit_within_one_timestamp_tick_is_picked_up(
    make_task: MakeTask, tasks_dir: Path
) -> None:
    folder = make_task("edited", yaml=INTERVAL_10S)
    task_file = folder / "task.yaml"
    before = task_file.stat()
    first = discovery.scan(tasks_dir, {})

    task_file.write_text(task_file.read_text().replace("10", "90"))  # same size
    # What a filesystem with coarse timestamps (1-2 s on FAT/SMB/NFS, a jiffy on older
    # kernels) records for a second save within the same tick: the same mtime.
    os.utime(task_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = discovery.scan(tasks_dir, first.fingerprints)

    assert set(again.loaded) == {"edited"}


def test_adding_the_missing_entrypoint_is_picked_up(make_task: MakeTask, tasks_dir: Path) -> None:
    folder = make_task("later", yaml=INTERVAL_10S, script=None)
    first = discovery.scan(tasks_dir, {})
    assert isinstance(first.loaded["later"], TaskConfigError)

    (folder / "task.py").write_text("print('here now')\n")
    again = discovery.scan(tasks_dir, first.fingerprints)

    assert isinstance(again.loaded["later"], Task)


def test_a_removed_folder_is_reported(make_task: MakeTask, tasks_dir: Path) -> None:
    gone = make_task("gone")
    make_task("kept")
    settle(tasks_dir)
    first = discovery.scan(tasks_dir, {})

    shutil.rmtree(gone)
    again = discovery.scan(tasks_dir, first.fingerprints)

    assert again.removed == {"gone"}
    assert set(again.fingerprints) == {"kept"}
    assert again.loaded == {}


def test_a_targeted_scan_looks_only_at_the_named_folders(
    make_task: MakeTask, tasks_dir: Path
) -> None:
    edited = make_task("edited", yaml=INTERVAL_10S)
    untouched = make_task("untouched", yaml=INTERVAL_10S)
    gone = make_task("gone")
    first = discovery.scan(tasks_dir, {})
    (edited / "task.yaml").write_text("scheduler: {trigger: interval, hours: 1}\n")
    (untouched / "task.yaml").write_text("scheduler: {trigger: interval, hours: 2}\n")
    shutil.rmtree(gone)
    make_task("new")

    again = discovery.scan(tasks_dir, first.fingerprints, only={"edited", "new"})

    assert set(again.loaded) == {"edited", "new"}
    assert again.removed == set()  # `gone` was not asked about


def test_a_targeted_scan_reports_a_named_folder_that_is_gone(
    make_task: MakeTask, tasks_dir: Path
) -> None:
    gone = make_task("gone")
    make_task("kept")
    settle(tasks_dir)
    first = discovery.scan(tasks_dir, {})
    shutil.rmtree(gone)

    again = discovery.scan(tasks_dir, first.fingerprints, only={"gone"})

    assert again.removed == {"gone"}
    assert again.loaded == {}
