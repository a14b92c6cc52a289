"""A store address whose driver is not installed: one line saying what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: `tasse serve` as the console script runs it, with one module made unimportable
WITHOUT = """
import sys
sys.modules[sys.argv[1]] = None  # `import` of it now fails, as if never installed
from tasse.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    ("module", "address", "install"),
    [
        ("psycopg", "postgresql://ada:s3cret@127.0.0.1:1/tasse", "pip install 'tasse[postgres]'"),
        ("psycopg", "postgres://ada:s3cret@127.0.0.1:1/tasse", "pip install 'tasse[postgres]'"),
        ("pymysql", "mysql://ada:s3cret@127.0.0.1:1/tasse", "pip install 'tasse[mysql]'"),
        ("pymysql", "mariadb://ada:s3cret@127.0.0.1:1/tasse", "pip install 'tasse[mysql]'"),
    ],
)
def test_a_missing_driver_is_one_line_naming_what_to_install(
    data_dir: Path, module: str, address: str, install: str
) -> None:
    serve = ["serve", "--data-dir", str(data_dir), "--store-address", address]
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT, module, *serve],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()  # no traceback
    assert line.startswith("tasse: store ")
    assert f"its driver ({module}) is not installed: {install}" in line
    assert "127.0.0.1:1/tasse" in line
    assert "s3cret" not in line  # the address is shown without its password
    assert not (data_dir / "tasse.db").exists()
