"""Leader election: only one `burst daemon` per store acts; the others stand by.

PostgreSQL: a session-level `pg_try_advisory_lock` on a dedicated connection held for
the leader's whole life. When the leader dies (even SIGKILL) its connection closes
and the server frees the lock; a standby polling every tick gets it at once.
SQLite: an exclusive file lock (flock) next to the database file, freed by the
kernel when the holder dies.

The lock decides who acts; it is not what keeps an action from running twice (a
paused leader can wake up after losing it). That is the unique key of each
calendar action, claimed in the transaction that decides it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Protocol

from filelock import FileLock, Timeout
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from burst.errors import StoreError

log = logging.getLogger(__name__)


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if free; True when this process holds it."""

    def still_held(self) -> bool:
        """False once the lock is lost (e.g. the connection holding it broke)."""

    def release(self) -> None: ...


def lock_key(cluster: str) -> int:
    """A signed 64-bit advisory lock key for the cluster's daemon."""
    digest = hashlib.sha256(f"burst-daemon:{cluster}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresLeaderLock:
    def __init__(self, url: str, cluster: str):
        self.key = lock_key(cluster)
        # its own engine without a pool: the connection is the lock, nothing else uses it
        self._engine = create_engine(url, poolclass=NullPool,
                                     connect_args={"application_name": f"burst-daemon-{cluster}"[:63]})
        self._conn: Connection | None = None
        self._held = False

    def try_acquire(self) -> bool:
        if self._held:
            return self.still_held()
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            got = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            self._conn.commit()
        except Exception as exc:  # the database is unreachable: not the leader, try again next tick
            log.warning("leader lock: %s", str(exc).splitlines()[0])
            self._drop()
            return False
        self._held = got
        return got

    def still_held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            # session-level advisory locks live exactly as long as this session
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
            return True
        except Exception as exc:
            log.error("leader lock lost: %s", str(exc).splitlines()[0])
            self._drop()
            return False

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # already broken; nothing more to free
                pass
            self._conn = None

    def release(self) -> None:
        if self._conn is not None and self._held:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            except Exception:  # the session is going away anyway, and that frees it
                pass
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._held = False
        self._engine.dispose()


class FileLeaderLock:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path), thread_local=False)

    def try_acquire(self) -> bool:
        if self._lock.is_locked:
            return True
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def still_held(self) -> bool:
        return self._lock.is_locked

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)


def leader_lock_for(store_url: str, cluster: str, lock_file: str = "") -> LeaderLock:
    url = make_url(store_url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        return PostgresLeaderLock(store_url, cluster)
    if backend == "sqlite":
        if lock_file:
            return FileLeaderLock(lock_file)
        if not url.database or url.database == ":memory:":
            raise StoreError("burst daemon needs a store file (sqlite:///path) or PostgreSQL, not an in-memory store")
        return FileLeaderLock(f"{url.database}.leader.lock")
    raise StoreError(f"no leader lock for store backend {backend!r}")
