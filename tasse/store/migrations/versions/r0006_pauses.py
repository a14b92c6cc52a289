"""The paused tasks: `<table>_pauses`, one row per paused task name, so a pause survives restarts.

Keyed by the name alone, whatever defines the task (a folder, the API, a seed file): a
folder removed and added again is still paused.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the pauses table (unless an interrupted upgrade made it already)."""
    names = context.config.attributes["names"]
    if sa.inspect(op.get_bind()).has_table(names.pauses, schema=names.schema):
        return
    op.create_table(
        names.pauses,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("paused_at", _DATETIME, nullable=False),
        sa.Column("reason", sa.Text),
        schema=names.schema,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    """Drop the pauses table."""
    names = context.config.attributes["names"]
    op.drop_table(names.pauses, schema=names.schema)
