"""GET /metrics against a real server's history: parsed with prometheus_client's parser."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import StartServer
from tests.http.test_api import Server, wait_until

#: a run id (`models.new_run_id`): never a label value
RUN_ID = re.compile(r"\d{8}-\d{6}-\d{6}-[0-9a-f]{6}")
#: label names a scrape may have: ours, the histograms' buckets, the info's version
LABELS = {"task", "status", "trigger", "le", "version"}

Key = tuple[str, frozenset[tuple[str, str]]]


def scrape(server: Server) -> dict[Key, float]:
    """Every sample of GET /metrics: (name, labels) → value, after checking the answer."""
    answer = server.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(answer.text):
        assert family.name.startswith("tasse_"), family.name
        for sample in family.samples:
            assert set(sample.labels) <= LABELS, sample
            for value in sample.labels.values():
                assert not RUN_ID.search(value), sample
                assert "/" not in value, sample  # no path, so no command line either
                assert " " not in value, sample
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def of(samples: dict[Key, float], name: str) -> dict[frozenset[tuple[str, str]], float]:
    """One sample name's values by their labels."""
    return {labels: value for (found, labels), value in samples.items() if found == name}


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def runs_of(server: Server, task: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = server.http.get(f"/tasks/{task}/runs").json()
    return runs


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def make_tasks(server: Server) -> None:
    server.task("good", None, 'print("fine")')
    server.task("bad", None, "raise SystemExit(3)")
    server.task("slow", "timeout: 1\n", "import time\ntime.sleep(30)")
    # Every second, a run of 1.5 s: the fire in between finds it running, and is skipped.
    server.task(
        "busy", "scheduler: {trigger: interval, seconds: 1}\n", "import time\ntime.sleep(1.5)"
    )
    server.task("hourly", "scheduler: {trigger: interval, hours: 1}\n")


def make_history(server: Server) -> None:
    """A success, a failure, a timeout (manual runs), and a skipped fire of `busy`."""
    for name in ("good", "bad", "slow"):
        run = server.http.post(f"/tasks/{name}/run").json()
        server.finished(run["id"])
    statuses = lambda: {run["status"] for run in runs_of(server, "busy")}  # noqa: E731
    wait_until(lambda: {"skipped", "succeeded"} <= statuses(), timeout=20)
    # Unscheduled, it stops firing; its run in progress ends, and the history is still.
    (server.data_dir / "tasks" / "busy" / "task.yaml").write_text("description: done\n")
    wait_until(lambda: server.http.get("/tasks/busy").json()["schedules"] == [])
    wait_until(lambda: "running" not in statuses(), timeout=10)


@pytest.mark.slow
def test_metrics_tell_the_history_and_keep_last_and_next_across_a_restart(
    start_server: StartServer,
) -> None:
    server = start_server()
    make_tasks(server)
    server.http.post("/rescan")
    make_history(server)
    history = {name: runs_of(server, name) for name in ("good", "bad", "slow", "busy")}
    samples = scrape(server)

    # Each run ended since the start, by task, outcome and trigger, as the history has it.
    expected = Counter(
        labels(task=name, status=run["status"], trigger=run["trigger"])
        for name, runs in history.items()
        for run in runs
    )
    assert of(samples, "tasse_runs_total") == dict(expected)
    assert (
        of(samples, "tasse_runs_total")[labels(task="slow", status="timed_out", trigger="manual")]
        == 1
    )
    skipped = sum(run["status"] == "skipped" for run in history["busy"])
    assert skipped >= 1
    assert of(samples, "tasse_fires_skipped_total") == {labels(task="busy"): skipped}

    # Histograms: a duration per run that ran, a delay per run that started.
    ran = [run for runs in history.values() for run in runs if run["started_at"]]
    durations = Counter(run["status"] for run in ran)
    assert of(samples, "tasse_run_duration_seconds_count") == {
        labels(status=status): count for status, count in durations.items()
    }
    delays = Counter(run["trigger"] for run in ran)
    assert of(samples, "tasse_schedule_delay_seconds_count") == {
        labels(trigger=trigger): count for trigger, count in delays.items()
    }
    slow_bucket = of(samples, "tasse_run_duration_seconds_bucket")
    assert slow_bucket[labels(status="timed_out", le="0.5")] == 0  # it ran its full second
    assert slow_bucket[labels(status="timed_out", le="+Inf")] == 1

    assert of(samples, "tasse_tasks") == {labels(): 5}
    assert of(samples, "tasse_tasks_broken") == {labels(): 0}
    assert of(samples, "tasse_runs_running") == {labels(): 0}
    assert of(samples, "tasse_runs_queued") == {labels(): 0}
    assert of(samples, "tasse_journal_records_pending") == {labels(): 0}
    assert of(samples, "tasse_info") == {labels(version="0.1.0"): 1}
    assert of(samples, "tasse_env_build_duration_seconds_count")[labels()] >= 1
    assert of(samples, "tasse_env_build_failures_total") == {labels(): 0}
    assert of(samples, "tasse_notification_deliveries_total") == {labels(): 0}

    def last_and_next(samples: dict[Key, float]) -> None:
        last = of(samples, "tasse_task_last_success_timestamp_seconds")
        successes = {
            name: max(timestamp(run["finished_at"]) for run in runs if run["status"] == "succeeded")
            for name, runs in history.items()
            if any(run["status"] == "succeeded" for run in runs)
        }
        assert set(successes) == {"good", "busy"}
        assert last == {
            labels(task=name): pytest.approx(at, abs=1e-6) for name, at in successes.items()
        }
        hourly = server.http.get("/tasks/hourly").json()["next_run_at"]
        assert of(samples, "tasse_task_next_fire_timestamp_seconds") == {
            labels(task="hourly"): pytest.approx(timestamp(hourly), abs=1e-6)
        }

    last_and_next(samples)
    code, output = server.stop()
    assert code == 0, output
    server.start()
    after = scrape(server)
    last_and_next(after)  # read from the store at start
    assert of(after, "tasse_runs_total") == {}  # counters start again with the process


def test_a_broken_task_is_counted_and_metrics_need_no_token(start_server: StartServer) -> None:
    server = start_server(TASSE_API_TOKEN="secret-token")
    server.task("broken", "schedules: [not a schedule]\n")
    assert server.http.post("/rescan").status_code == 401  # a token is set: reads stay open
    wait_until(lambda: server.http.get("/tasks/broken").json().get("error"))
    samples = scrape(server)
    assert of(samples, "tasse_tasks_broken") == {labels(): 1}
    assert of(samples, "tasse_task_next_fire_timestamp_seconds") == {}
