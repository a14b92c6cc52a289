"""Alembic's entry point: migrate the connection the store hands over (no alembic.ini)."""

from __future__ import annotations

from alembic import context

_names = context.config.attributes["names"]
context.configure(
    connection=context.config.attributes["connection"],
    version_table=_names.version_table,
    version_table_schema=_names.schema,
)
with context.begin_transaction():
    context.run_migrations()
