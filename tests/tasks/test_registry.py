"""Registry: what a rescan added, changed and removed; broken folders keep their last good task."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tasse.schedule.specs import IntervalSpec
from tasse.tasks import discovery
from tasse.tasks.registry import Registry, RescanReport
from tasse.tasks.triggers import prepare
from tests.conftest import MakeTask, settle

EVERY_10S = "scheduler: {trigger: interval, seconds: 10}\n"
EVERY_20S = "scheduler: {trigger: interval, seconds: 20}\n"


@pytest.fixture
def tasks_dir(data_dir: Path) -> Path:
    return data_dir / "tasks"


@pytest.fixture
def registry() -> Registry:
    return Registry()


def rescan(registry: Registry, tasks_dir: Path, only: set[str] | None = None) -> RescanReport:
    """One pass as the service does it: scan, build triggers, apply."""
    scan = discovery.scan(tasks_dir, registry.fingerprints, only)
    prepared = {name: prepare(result, "UTC") for name, result in scan.loaded.items()}
    return registry.apply(scan, prepared, only)


def seconds_of(registry: Registry, name: str) -> float:
    """The interval the task is scheduled with (from its last good version)."""
    task = registry.entries[name].task
    assert task is not None
    assert isinstance(task.spec.scheduler, IntervalSpec)
    return task.spec.scheduler.seconds


def test_first_scan_adds_every_task(
    make_task: MakeTask, tasks_dir: Path, registry: Registry
) -> None:
    make_task("alpha", yaml=EVERY_10S)
    make_task("beta")

    report = rescan(registry, tasks_dir)

    assert sorted(report.added) == ["alpha", "beta"]
    assert (report.changed, report.removed, report.errors) == ([], [], {})
    assert len(registry.entries["alpha"].triggers) == 1
    assert registry.entries["beta"].triggers == ()


def test_an_edit_is_reported_as_changed(
    make_task: MakeTask, tasks_dir: Path, registry: Registry
) -> None:
    folder = make_task("alpha", yaml=EVERY_10S)
    make_task("beta", yaml=EVERY_10S)
    rescan(registry, tasks_dir)

    (folder / "task.yaml").write_text(EVERY_20S + "description: slower\n")
    report = rescan(registry, tasks_dir)

    assert report.changed == ["alpha"]
    assert (report.added, report.removed) == ([], [])
    assert seconds_of(registry, "alpha") == 20


def test_a_removed_folder_is_reported_and_forgotten(
    make_task: MakeTask, tasks_dir: Path, registry: Registry
) -> None:
    gone = make_task("gone", yaml=EVERY_10S)
    make_task("kept")
    rescan(registry, tasks_dir)

    shutil.rmtree(gone)
    report = rescan(registry, tasks_dir)

    assert report.removed == ["gone"]
    assert set(registry.entries) == {"kept"}
    assert "gone" not in registry.fingerprints


@pytest.mark.parametrize(
    "touch",
    [
        pytest.param(lambda folder: (folder / "README.md").write_text("notes\n"), id="new-file"),
        pytest.param(lambda folder: (folder / "task.yaml").write_text(EVERY_10S), id="same-yaml"),
        pytest.param(
            lambda folder: (folder / "task.yaml").write_text("# every ten\n" + EVERY_10S),
            id="comment-only",
        ),
    ],
)
def test_a_new_fingerprint_with_the_same_content_is_not_a_change(
    make_task: MakeTask, tasks_dir: Path, registry: Registry, touch: Callable[[Path], object]
) -> None:
    folder = make_task("alpha", yaml=EVERY_10S)
    settle(tasks_dir)
    rescan(registry, tasks_dir)
    before = dict(registry.fingerprints)

    touch(folder)
    report = rescan(registry, tasks_dir)

    assert registry.fingerprints != before, "the folder should have been re-read"
    assert (report.added, report.changed, report.removed, report.errors) == ([], [], [], {})


def test_a_broken_yaml_keeps_the_last_good_task(
    make_task: MakeTask, tasks_dir: Path, registry: Registry
) -> None:
    folder = make_task("alpha", yaml=EVERY_10S)
    make_task("beta", yaml=EVERY_10S)
    rescan(registry, tasks_dir)
    good_triggers = registry.entries["alpha"].triggers

    (folder / "task.yaml").write_text("scheduler: {trigger: cron, hour: 25}\n")
    report = rescan(registry, tasks_dir)

    entry = registry.entries["alpha"]
    assert seconds_of(registry, "alpha") == 10
    assert entry.triggers == good_triggers
    assert entry.error is not None
    assert "scheduler.hour" in str(entry.error)
    assert set(report.errors) == {"alpha"}
    assert "scheduler.hour" in report.errors["alpha"]
    assert (report.added, report.changed, report.removed) == ([], [], [])
    assert registry.entries["beta"].error is None


@pytest.mark.parametrize(
    ("fixed", "seconds"), [(EVERY_20S, 20), (EVERY_10S, 10)], ids=["new-value", "old-value"]
)
def test_fixing_a_broken_yaml_reports_changed_and_clears_the_error(
    make_task: MakeTask, tasks_dir: Path, registry: Registry, fixed: str, seconds: float
) -> None:
    folder = make_task("alpha", yaml=EVERY_10S)
    rescan(registry, tasks_dir)
    (folder / "task.yaml").write_text("scheduler: [\n")
    rescan(registry, tasks_dir)

    (folder / "task.yaml").write_text(fixed)
    report = rescan(registry, tasks_dir)

    assert report.changed == ["alpha"]
    assert report.errors == {}
    assert registry.entries["alpha"].error is None
    assert seconds_of(registry, "alpha") == seconds


def test_a_task_broken_from_the_start_is_known_with_its_error(
    make_task: MakeTask, tasks_dir: Path, registry: Registry
) -> None:
    folder = make_task("fresh", yaml="timeout: soon\n")

    report = rescan(registry, tasks_dir)

    assert registry.entries["fresh"].task is None
    assert "timeout" in report.errors["fresh"]

    (folder / "task.yaml").write_text("timeout: 60\n")
    report = rescan(registry, tasks_dir)

    assert "fresh" in report.added + report.changed
    assert report.errors == {}
    assert registry.entries["fresh"].task is not None


def test_removing_a_broken_folder_clears_its_error(
    make_task: MakeTask, tasks_dir: Path, registry: Registry
) -> None:
    folder = make_task("broken", yaml="scheduler: [\n")
    rescan(registry, tasks_dir)

    shutil.rmtree(folder)
    report = rescan(registry, tasks_dir)

    assert report.removed == ["broken"]
    assert report.errors == {}


def test_rejected_folder_names_appear_in_errors_until_renamed(
    make_task: MakeTask, tasks_dir: Path, registry: Registry
) -> None:
    folder = make_task("my task")
    make_task("good")

    report = rescan(registry, tasks_dir)

    assert report.added == ["good"]
    assert "folder 'my task' is not a task name: names must match" in report.errors["my task"]

    folder.rename(tasks_dir / "my-task")
    report = rescan(registry, tasks_dir)

    assert report.added == ["my-task"]
    assert report.errors == {}


def test_a_targeted_rescan_keeps_the_rejected_names(
    make_task: MakeTask, tasks_dir: Path, registry: Registry
) -> None:
    make_task("my task")
    good = make_task("good", yaml=EVERY_10S)
    rescan(registry, tasks_dir)

    (good / "task.yaml").write_text(EVERY_20S)
    report = rescan(registry, tasks_dir, only={"good"})

    assert report.changed == ["good"]
    assert set(report.errors) == {"my task"}
