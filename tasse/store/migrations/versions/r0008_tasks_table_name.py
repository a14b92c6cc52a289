"""The defined tasks' table takes the store's own name: `--store-table-name jobs` is `jobs`.

Supertask keeps its jobs in the table its `--store-table-name` names; so does Tasse now,
its other tables beside it (`jobs_runs`, …). The default name keeps `tasse_tasks`. A store
whose tasks were in `<table>_tasks` has that table renamed, rows and all; a table of the
new name that is not Tasse's was refused before this runs (`refuse_foreign_tasks_table`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Rename `<table>_tasks` to `<table>` (but for the default table name)."""
    names = context.config.attributes["names"]
    _rename(names.prefixed_tasks, names.tasks, names.schema)


def downgrade() -> None:
    """Give the tasks table its earlier name, `<table>_tasks`, again."""
    names = context.config.attributes["names"]
    _rename(names.tasks, names.prefixed_tasks, names.schema)


def _rename(old: str, new: str, schema: str | None) -> None:
    inspector = sa.inspect(op.get_bind())
    # MySQL commits a RENAME at once: an upgrade cut short may have done it already.
    done = not inspector.has_table(old, schema=schema) or inspector.has_table(new, schema=schema)
    if old != new and not done:
        op.rename_table(old, new, schema=schema)
