"""Alembic environment: runs on the connection `burst.store.engine.migrate` hands over.

The migrations are written by hand: upgrading needs no table metadata, so the store
imports no module of the packages that keep tables on it. Whoever compares or writes
a migration hands the complete metadata over as the `target_metadata` attribute
(burst.schema collects it)."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through burst.store.engine.migrate")

context.configure(
    connection=connection,
    target_metadata=context.config.attributes.get("target_metadata"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
