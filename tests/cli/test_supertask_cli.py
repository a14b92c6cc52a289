"""Supertask's command line, as its README types it: flags without a sub-command serve,
`--version`, and every `ST_*` variable its CLI reads (supertask/cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasse import __version__
from tasse.settings import Settings
from tests.http.test_api import Server
from tests.tasks.test_seeds import tasks, write_seed

#: Supertask's CLI options and the variables it reads them from (click `envvar=`)
SUPERTASK_VARIABLES = {
    "ST_STORE_ADDRESS": "store_address",
    "ST_STORE_SCHEMA_NAME": "store_schema_name",
    "ST_STORE_TABLE_NAME": "store_table_name",
    "ST_JOBS_DELETE": "pre_delete_jobs",
    "ST_JOBS_PRESEED": "pre_seed_jobs",
    "ST_HTTP_LISTEN_ADDRESS": "http_listen_address",
}
JOB = {
    "id": 1,
    "name": "Example Python reference",
    "trigger_cron": "0 3 * * *",
    "exec_python_ref": "json:dumps",
    "exec_args": [],
    "enabled": True,
}


class SupertaskServer(Server):
    """`tasse` started as `supertask` is: flags (or variables) only, no sub-command."""

    def arguments(self) -> list[str]:
        return self.flags


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.upper().startswith(("TASSE_", "ST_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_version_prints_the_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tasse", "--version"], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout) == (0, f"tasse {__version__}\n")


@pytest.mark.usefixtures("clean_env")
def test_every_supertask_variable_sets_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "ST_STORE_ADDRESS": "postgresql://st@db/jobs",
        "ST_STORE_SCHEMA_NAME": "ext",
        "ST_STORE_TABLE_NAME": "jobs",
        "ST_JOBS_DELETE": "true",
        "ST_JOBS_PRESEED": "https://example.org/cronjobs.json",
        "ST_HTTP_LISTEN_ADDRESS": "localhost:4243",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    found = {name: getattr(settings, field) for name, field in SUPERTASK_VARIABLES.items()}
    assert found == {**values, "ST_JOBS_DELETE": True}
    assert (settings.host, settings.port) == ("localhost", 4243)
    # Tasse's own names win where both are set.
    monkeypatch.setenv("TASSE_HTTP_LISTEN_ADDRESS", "127.0.0.1:9999")
    assert Settings().port == 9999


@pytest.mark.usefixtures("clean_env")
def test_empty_supertask_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # As an env file often has them: `ST_JOBS_DELETE=` is click's False, not an error.
    monkeypatch.setenv("ST_JOBS_DELETE", "")
    monkeypatch.setenv("ST_JOBS_PRESEED", "")
    settings = Settings()
    assert (settings.pre_delete_jobs, settings.pre_seed_jobs) == (False, None)


def test_flags_without_a_sub_command_serve_the_seed(tmp_path: Path) -> None:
    seed = write_seed(tmp_path / "cronjobs.json", [JOB])
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)
    server = SupertaskServer(data)
    server.flags = [
        f"--pre-seed-jobs={seed}",
        f"--http-listen-address=127.0.0.1:{server.port}",
        "--data-dir",
        str(data),
        "--verbose",
    ]
    server.start()
    try:
        assert list(tasks(server)) == ["example-python-reference"]
    finally:
        code, output = server.stop()
        server.http.close()
    assert code == 0, output


def test_supertask_variables_alone_serve_and_pre_delete_removes_api_tasks(
    tmp_path: Path,
) -> None:
    seed = write_seed(tmp_path / "cronjobs.json", [JOB])
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)
    store = f"sqlite:///{tmp_path / 'jobs.db'}"
    first = SupertaskServer(data)
    first.env = {
        "TASSE_DATA_DIR": str(data),
        "ST_STORE_ADDRESS": store,
        "ST_STORE_TABLE_NAME": "jobs",
        "ST_JOBS_PRESEED": str(seed),
        "ST_HTTP_LISTEN_ADDRESS": f"127.0.0.1:{first.port}",
    }
    first.start()
    made = first.http.post("/tasks", json={"name": "by-hand", "command": ["true"]})
    assert made.status_code == 201, made.text
    assert set(tasks(first)) == {"by-hand", "example-python-reference"}
    assert first.stop()[0] == 0
    first.http.close()

    second = SupertaskServer(data)
    second.env = {
        **first.env,
        "ST_JOBS_DELETE": "1",
        "ST_HTTP_LISTEN_ADDRESS": f"127.0.0.1:{second.port}",
    }
    second.start()
    try:
        # The API task is gone; the seed's is seeded again after the deletion.
        assert set(tasks(second)) == {"example-python-reference"}
    finally:
        code, output = second.stop()
        second.http.close()
    assert code == 0, output
    assert "API and seed task(s) removed" in output
