"""Alembic environment: runs on the connection `burst.store.engine.migrate` hands over."""

from alembic import context

from burst.store import tables  # noqa: F401  (registers every table on the metadata)
from sqlmodel import SQLModel

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through burst.store.engine.migrate")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
