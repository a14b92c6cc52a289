"""What a manual run was asked for: its `args` and `params`, so it can be run again alike.

The environment values a request carries are not kept: they are how secrets reach a run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("args", "params")


def upgrade() -> None:
    """Add nullable `args` and `params` JSON columns to the runs table (null: none given)."""
    names = context.config.attributes["names"]
    columns = sa.inspect(op.get_bind()).get_columns(names.runs, schema=names.schema)
    present = {column["name"] for column in columns}
    for name in _COLUMNS:
        if name not in present:  # an interrupted upgrade may have added one already
            op.add_column(names.runs, sa.Column(name, sa.JSON), schema=names.schema)


def downgrade() -> None:
    """Drop the request columns."""
    names = context.config.attributes["names"]
    for name in _COLUMNS:
        op.drop_column(names.runs, name, schema=names.schema)
