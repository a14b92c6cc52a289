"""Retries: each run's attempt number (1 for a first run, 2 for its first retry, …)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add `attempt` to the runs table; runs recorded before retries existed were first tries."""
    names = context.config.attributes["names"]
    columns = sa.inspect(op.get_bind()).get_columns(names.runs, schema=names.schema)
    if any(column["name"] == "attempt" for column in columns):
        return  # an interrupted upgrade added it already
    op.add_column(
        names.runs,
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        schema=names.schema,
    )


def downgrade() -> None:
    """Drop the attempt column."""
    names = context.config.attributes["names"]
    op.drop_column(names.runs, "attempt", schema=names.schema)
