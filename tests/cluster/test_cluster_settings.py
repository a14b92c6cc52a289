"""Cluster mode asks for PostgreSQL, and says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasse.cli.main import main


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
