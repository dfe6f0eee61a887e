"""Fixtures every suite shares: a fresh store on SQLite and on PostgreSQL, and labs of
their own (`make_lab`, taken down at teardown however the test ended)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from stands.lab import make_lab  # noqa: F401  (a fixture, for every suite)

PG_URL = os.environ.get("BURST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_admin():
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        engine.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable in CI: {exc}")
        pytest.skip(f"PostgreSQL is not running at {PG_URL} (start it: pg_ctlcluster 15 main start)")
    return engine


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    admin = _pg_admin()
    name = f"burst_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The same test on both stores burst supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/burst.db"
    return request.getfixturevalue("pg_url")
