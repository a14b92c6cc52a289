"""A database of each kind for SQL task tests: an SQLite file, PostgreSQL and MariaDB.

Each test gets a schema of its own (on MariaDB a schema is a database; SQLite's is `main`
of a fresh file), dropped afterwards. PostgreSQL and MariaDB skip with a reason when they
are not reachable, and fail instead with TASSE_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tasse.store.database import make_engine
from tests.store.test_store import require_server

BACKENDS = ("sqlite", "postgresql", "mariadb")


@dataclass(frozen=True)
class Database:
    """Where one test's SQL runs: its URL and the schema its tables go in."""

    backend: str
    url: str
    schema: str

    def execute(self, *statements: str) -> list[Any]:
        """Run statements in one transaction (outside Tasse); the last one's rows, if any."""
        engine = make_engine(self.url)
        try:
            with engine.begin() as connection:
                for statement in statements:
                    result = connection.execute(text(statement))
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """One database of each kind, with a `metrics` table of three rows (ts 1, 2, 3)."""
    backend: str = request.param
    if backend == "sqlite":
        place = Database(backend, f"sqlite:///{tmp_path / 'metrics.db'}", "main")
    else:
        place = Database(backend, require_server(backend), f"sqlt{uuid.uuid4().hex[:10]}")
        place.execute(f"CREATE SCHEMA {place.schema}")
    place.execute(
        f"CREATE TABLE {place.schema}.metrics (id INTEGER PRIMARY KEY, name VARCHAR(20), ts INT)",
        f"INSERT INTO {place.schema}.metrics VALUES (1, 'old', 1), (2, 'older', 2), (3, 'new', 3)",
    )
    yield place
    if backend != "sqlite":
        cascade = " CASCADE" if backend == "postgresql" else ""
        place.execute(f"DROP SCHEMA IF EXISTS {place.schema}{cascade}")


#: a statement that takes five seconds (SQLite: counts for ever), in each backend's words
SLEEP = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c",
    "postgresql": "SELECT pg_sleep(5)",
    "mariadb": "SELECT SLEEP(5)",
}
#: what each database says when it stops a statement at its timeout
CANCELLED = {
    "sqlite": "error: interrupted",
    "postgresql": "error: canceling statement due to statement timeout",
    "mariadb": "error: Query execution was interrupted (max_statement_time exceeded)",
}
