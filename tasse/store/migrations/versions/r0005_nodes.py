"""The servers that use the store: `<table>_nodes`, each with its heartbeat.

A server writes its heartbeat every few seconds: the cheap write that tells `/health`
the store takes writes, not only reads (and, later, which cluster nodes are alive).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the nodes table (unless an interrupted upgrade made it already)."""
    names = context.config.attributes["names"]
    if sa.inspect(op.get_bind()).has_table(names.nodes, schema=names.schema):
        return
    op.create_table(
        names.nodes,
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("started_at", _DATETIME, nullable=False),
        sa.Column("heartbeat_at", _DATETIME, nullable=False),
        schema=names.schema,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    """Drop the nodes table."""
    names = context.config.attributes["names"]
    op.drop_table(names.nodes, schema=names.schema)
