"""Every table burst keeps, on one metadata: collected here, at the top, so the store
knows none of the modules that define tables on it (the calendar's, the pool's).

The migrations under burst/store/migrations are written by hand and need no metadata
to upgrade a database; `drift` holds them against the models (a test runs it on SQLite
and PostgreSQL), and `metadata()` is what a new migration is written against.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData
from sqlmodel import SQLModel

import burst.calendar.tables  # noqa: F401  (defines its tables on SQLModel.metadata)
import burst.pool.tables  # noqa: F401
import burst.store.models  # noqa: F401


def metadata() -> MetaData:
    return SQLModel.metadata


def drift(engine: Engine) -> list[Any]:
    """What differs between the database's schema and the models: [] when the
    migrations and the tables agree (alembic's own comparison)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata())
