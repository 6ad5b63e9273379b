"""Alembic environment of the records database: run from ``station.db.store.migrate`` (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from station.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the station always hands over its connection
    raise RuntimeError("station.db migrations run through station.db.store.migrate")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
