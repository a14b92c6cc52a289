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
