"""Each schedule's next fire time: `<table>_fire_times`, so a restart knows what it missed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the fire-times table (unless an interrupted upgrade made it already)."""
    names = context.config.attributes["names"]
    if sa.inspect(op.get_bind()).has_table(names.fire_times, schema=names.schema):
        return
    op.create_table(
        names.fire_times,
        # `<task>#<schedule index>`: a task name (64) and a number
        sa.Column("job_id", sa.String(80), primary_key=True),
        # what the schedule was when the time was computed; another schedule, another time
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("next_fire_at", _DATETIME),
        schema=names.schema,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    """Drop the fire-times table."""
    names = context.config.attributes["names"]
    op.drop_table(names.fire_times, schema=names.schema)
