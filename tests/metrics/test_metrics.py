"""Metrics' hooks and text, rendered and read back with prometheus_client's parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from tasse.metrics.metrics import Metrics, ServerState
from tasse.metrics.text import family, labels
from tasse.models import Run, RunStatus, RunTrigger, new_run_id
from tasse.runs.ledger import ONE_BY_ONE, not_run_records

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
STATE = ServerState(
    tasks=frozenset({"nightly", "gone-soon"}),
    broken=0,
    running=0,
    queued=0,
    pending_records=0,
    journaled_records=0,
    next_fires={"nightly": NOW + timedelta(hours=1)},
)


def values(metrics: Metrics, state: ServerState = STATE) -> dict[tuple[str, str], float]:
    """Sample name and its labels' values joined by commas, in the text's order → the value."""
    text = metrics.take(state).render().decode()
    return {
        (sample.name, ",".join(sample.labels.values())): sample.value
        for parsed in text_string_to_metric_families(text)
        for sample in parsed.samples
    }


def ended(task: str, status: RunStatus, seconds: float, finished_at: datetime = NOW) -> Run:
    return Run(
        id=new_run_id(finished_at),
        task=task,
        trigger=RunTrigger.schedule,
        status=status,
        scheduled_at=finished_at - timedelta(seconds=seconds + 0.5),
        started_at=finished_at - timedelta(seconds=seconds),
        finished_at=finished_at,
    )


def test_fires_summed_up_in_one_record_count_one_by_one() -> None:
    """A day of a per-second schedule missed while down is 86,400 misses, not 101."""
    metrics = Metrics("1.2.3")
    down = [(NOW - timedelta(seconds=s), RunStatus.missed, "server down") for s in range(86_400)]
    for record in not_run_records("nightly", down):
        metrics.note_run(record)
    found = values(metrics)
    assert found["tasse_fires_missed_total", "nightly"] == 86_400
    assert found["tasse_runs_total", "nightly,missed,schedule"] == ONE_BY_ONE + 1  # records
    assert found["tasse_info", "1.2.3"] == 1


def test_a_start_observes_the_delay_and_an_end_the_duration() -> None:
    metrics = Metrics("1")
    run = ended("nightly", RunStatus.running, 2.0)
    run.finished_at = None
    metrics.note_run(run)  # recorded as running: half a second after its fire time
    run.status, run.finished_at = RunStatus.timed_out, NOW
    metrics.note_run(run)
    found = values(metrics)
    assert found["tasse_schedule_delay_seconds_bucket", "0.25,schedule"] == 0
    assert found["tasse_schedule_delay_seconds_bucket", "0.5,schedule"] == 1
    assert found["tasse_run_duration_seconds_sum", "timed_out"] == 2.0
    assert found["tasse_runs_total", "nightly,timed_out,schedule"] == 1


def test_the_newest_success_wins_and_removed_tasks_are_left_out() -> None:
    metrics = Metrics("1")
    metrics.note_run(ended("nightly", RunStatus.succeeded, 1.0))
    metrics.note_run(ended("nightly", RunStatus.failed, 1.0, NOW + timedelta(minutes=1)))
    metrics.note_run(ended("removed", RunStatus.succeeded, 1.0))
    # The store's (read at start, after a success was noted) is older: it does not win.
    metrics.note_last_successes(
        {"nightly": NOW - timedelta(days=1), "gone-soon": NOW - timedelta(days=2)}
    )
    found = values(metrics)
    assert found["tasse_task_last_success_timestamp_seconds", "nightly"] == NOW.timestamp()
    assert (
        found["tasse_task_last_success_timestamp_seconds", "gone-soon"]
        == (NOW - timedelta(days=2)).timestamp()
    )
    assert ("tasse_task_last_success_timestamp_seconds", "removed") not in found
    assert (
        found["tasse_task_next_fire_timestamp_seconds", "nightly"]
        == (NOW + timedelta(hours=1)).timestamp()
    )


def test_builds_and_notifications_are_counted() -> None:
    metrics = Metrics("1")
    metrics.note_env_build(12.5, ok=True)
    metrics.note_env_build(3.0, ok=False)
    metrics.note_notification(ok=True)
    metrics.note_notification(ok=False)
    metrics.note_notification(ok=False)
    found = values(metrics)
    assert found["tasse_env_build_duration_seconds_count", ""] == 2
    assert found["tasse_env_build_duration_seconds_sum", ""] == 15.5
    assert found["tasse_env_build_failures_total", ""] == 1
    assert found["tasse_notification_deliveries_total", ""] == 1
    assert found["tasse_notification_failures_total", ""] == 2


def test_the_text_writer_escapes_what_would_break_a_scrape() -> None:
    text = family(
        "tasse_x_total", "counter", "help with \\ and\nnewline", {labels(task='a"b\\c\nd'): 2}
    )
    [parsed] = text_string_to_metric_families(text)
    assert parsed.type == "counter"
    assert parsed.documentation == "help with \\ and\nnewline"
    assert [(s.labels, s.value) for s in parsed.samples] == [({"task": 'a"b\\c\nd'}, 2.0)]
