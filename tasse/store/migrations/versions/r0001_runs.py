"""Run history: `<table>_runs`, kept as it is where an earlier Tasse made it with create_all."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here, not imported: a revision must create what it created when it was written.
_STRING_ID = sa.String(64)
_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the runs table and its indexes unless Tasse before migrations did."""
    names = context.config.attributes["names"]
    if sa.inspect(op.get_bind()).has_table(names.runs, schema=names.schema):
        return
    op.create_table(
        names.runs,
        sa.Column("id", _STRING_ID, primary_key=True),
        sa.Column("task", _STRING_ID, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("scheduled_at", _DATETIME),
        sa.Column("started_at", _DATETIME),
        sa.Column("finished_at", _DATETIME),
        sa.Column("error", sa.Text),
        schema=names.schema,
        # MySQL's default collation ignores case: "Report" and "report" are two tasks.
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index(f"ix_{names.runs}_task_id", names.runs, ["task", "id"], schema=names.schema)
    op.create_index(f"ix_{names.runs}_status", names.runs, ["status"], schema=names.schema)


def downgrade() -> None:
    """Drop the runs table."""
    names = context.config.attributes["names"]
    op.drop_table(names.runs, schema=names.schema)
