"""The notifications outbox: `<table>_outbox`, one row per message to one target.

Written with the record that caused it (through the writer), delivered off the loop and
marked sent; a restart resumes the rows still pending. The id is made from what caused the
message and the target, so writing a row again (a journal replayed) adds nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the outbox table (unless an interrupted upgrade made it already)."""
    names = context.config.attributes["names"]
    if sa.inspect(op.get_bind()).has_table(names.outbox, schema=names.schema):
        return
    op.create_table(
        names.outbox,
        sa.Column("id", sa.String(160), primary_key=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("events", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("shown_target", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", _DATETIME, nullable=False),
        sa.Column("next_attempt_at", _DATETIME),
        sa.Column("sent_at", _DATETIME),
        sa.Column("error", sa.Text),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Index(f"ix_{names.outbox}_status", "status"),
        sa.Index(f"ix_{names.outbox}_task", "task", "created_at"),
        sa.Index(f"ix_{names.outbox}_at", "created_at"),
        schema=names.schema,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    """Drop the outbox table."""
    names = context.config.attributes["names"]
    op.drop_table(names.outbox, schema=names.schema)
