"""Tasks defined through the API or a seed file: `<table>_tasks`, one JSON definition each."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the tasks table (unless a run interrupted after creating it made it already)."""
    # Made under its name of then, `<table>_tasks`; revision 0008 names it as it is now.
    names = context.config.attributes["names"]
    # MySQL commits each CREATE at once, so an upgrade cut short may have done this part.
    if sa.inspect(op.get_bind()).has_table(names.prefixed_tasks, schema=names.schema):
        return
    op.create_table(
        names.prefixed_tasks,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("created_at", _DATETIME, nullable=False),
        sa.Column("updated_at", _DATETIME, nullable=False),
        schema=names.schema,
        # MySQL's default collation ignores case: "Report" and "report" are two tasks.
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    """Drop the tasks table."""
    names = context.config.attributes["names"]
    op.drop_table(names.prefixed_tasks, schema=names.schema)
