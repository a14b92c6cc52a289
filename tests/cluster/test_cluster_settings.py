"""Cluster mode asks for PostgreSQL, and says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasse.cli.main import main
from tests.http.test_api import Server


@pytest.mark.parametrize(
    ("address", "named"),
    [("", "sqlite"), ("sqlite:///x.db", "sqlite"), ("mariadb://u@localhost/db", "mariadb")],
)
def test_cluster_mode_refuses_a_store_that_is_not_postgresql(
    address: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--store-address", address] if address else []
    code = main(["serve", "--cluster", "--data-dir", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"cluster mode needs a PostgreSQL --store-address (postgresql://…), not {named}" in err


@pytest.mark.slow
def test_a_server_on_its_own_lists_itself_as_the_one_node(data_dir: Path) -> None:
    server = Server(data_dir)
    server.start()
    try:
        listed = server.http.get("/nodes").json()
    finally:
        server.stop()
    assert len(listed) == 1
    assert listed[0]["this"]
    assert listed[0]["alive"]
    assert not listed[0]["leader"]  # no lease outside cluster mode


def test_runs_go_to_workers_only_in_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--run-on", "workers", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "setting run_on: Value error, runs go to workers only in a cluster: add --cluster" in err


def test_a_worker_refuses_a_store_that_is_not_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["worker", "--data-dir", str(tmp_path), "--store-address", "sqlite:///x.db"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "cluster mode needs a PostgreSQL --store-address (postgresql://…), not sqlite" in err


def test_a_worker_says_what_is_wrong_with_its_concurrency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store-address", "postgresql://postgres@127.0.0.1/test"]
    code = main(["worker", "--data-dir", str(tmp_path), *store, "--concurrency", "0"])
    assert code == 2
    assert "setting concurrency: Input should be greater than or equal to 1" in (
        capsys.readouterr().err
    )
