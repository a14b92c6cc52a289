"""Cluster mode: nodes with a role and an address, runs with the node that ran them, and the
tables coordination rests on — leases with fencing tokens, fire claims, commands.

`<table>_fire_claims` has one row per (task, nominal fire time): the node that inserts it
first (`ON CONFLICT DO NOTHING`) owns the fire, so no fire becomes two runs whatever the
number of scheduler nodes. `<table>_leases` names who may fire now (`token` grows with each
new holder, so a claim made with an old one is refused). `<table>_commands` carries a manual
run or a cancel from the node asked to the node that acts. Every store gets them; only
`--cluster` uses them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

from tasse.store.migrations import StoreNames

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Add the node columns and create the cluster's tables (what is not there yet)."""
    names: StoreNames = context.config.attributes["names"]
    _add_column(names.nodes, names.schema, sa.String(16), "role")
    _add_column(names.nodes, names.schema, sa.String(255), "address")
    _add_column(names.runs, names.schema, sa.String(128), "node")
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(names.leases, schema=names.schema):
        op.create_table(
            names.leases,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("holder", sa.String(128), nullable=False),
            sa.Column("token", sa.BigInteger, nullable=False),
            sa.Column("acquired_at", _DATETIME, nullable=False),
            sa.Column("expires_at", _DATETIME, nullable=False),
            schema=names.schema,
            mysql_charset="utf8mb4",
            mysql_collate="utf8mb4_bin",
        )
    if not inspector.has_table(names.fire_claims, schema=names.schema):
        op.create_table(
            names.fire_claims,
            sa.Column("task", sa.String(64), primary_key=True),
            sa.Column("scheduled_at", _DATETIME, primary_key=True),
            sa.Column("node", sa.String(128), nullable=False),
            sa.Column("token", sa.BigInteger, nullable=False),
            sa.Column("claimed_at", _DATETIME, nullable=False),
            schema=names.schema,
            mysql_charset="utf8mb4",
            mysql_collate="utf8mb4_bin",
        )
        op.create_index(
            f"ix_{names.fire_claims}_claimed_at",
            names.fire_claims,
            ["claimed_at"],
            schema=names.schema,
        )
    if not inspector.has_table(names.commands, schema=names.schema):
        op.create_table(
            names.commands,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            sa.Column("kind", sa.String(16), nullable=False),
            # the node that is to act; null: whichever holds the scheduler lease
            sa.Column("target", sa.String(128)),
            sa.Column("sender", sa.String(128), nullable=False),
            sa.Column("body", sa.JSON, nullable=False),
            sa.Column("created_at", _DATETIME, nullable=False),
            sa.Column("taken_by", sa.String(128)),
            sa.Column("answered_at", _DATETIME),
            sa.Column("answer", sa.JSON),
            schema=names.schema,
            mysql_charset="utf8mb4",
            mysql_collate="utf8mb4_bin",
        )


def downgrade() -> None:
    """Drop the cluster's tables and columns."""
    names: StoreNames = context.config.attributes["names"]
    for table in (names.commands, names.fire_claims, names.leases):
        op.drop_table(table, schema=names.schema)
    op.drop_column(names.runs, "node", schema=names.schema)
    op.drop_column(names.nodes, "address", schema=names.schema)
    op.drop_column(names.nodes, "role", schema=names.schema)


def _add_column(table: str, schema: str | None, kind: sa.types.TypeEngine[str], name: str) -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table, schema=schema)}
    if name not in present:  # an interrupted upgrade may have added it already
        op.add_column(table, sa.Column(name, kind), schema=schema)
