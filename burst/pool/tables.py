"""The pool ledger's tables.

A pool host belongs to exactly one business unit. It is *lent* while it is in the
pool (an open `PoolLending` row) and *leased* while a burst holds it (an open
`PoolLease` row). The two history tables are append-and-close only: a lending or a
lease gets its end time once and is never deleted, so the accounting report can be
recomputed for any period. They name the host by its name rather than by a foreign
key, so history outlives a host removed from its unit's inventory.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel

from burst.store.models import utcnow


class PoolUnit(SQLModel, table=True):
    """A business unit that owns servers and lends a share of them."""

    __tablename__ = "pool_unit"

    name: str = Field(primary_key=True)
    #: the inventory file last imported, for the operator's reference
    inventory: str = ""
    imported_at: datetime = Field(default_factory=utcnow)
    #: the share last asked for with `burst pool lend BU --share` (0..1), if any
    share: float | None = None


class PoolHost(SQLModel, table=True):
    """One server of a unit, as its inventory describes it."""

    __tablename__ = "pool_host"
    __table_args__ = (Index("ix_pool_host_free", "lent", "lease_id"),)

    #: the inventory hostname; unique across the whole pool
    name: str = Field(primary_key=True)
    unit: str = Field(foreign_key="pool_unit.name", index=True)
    #: ansible_host (the inventory name when unset)
    address: str
    port: int = 22
    cpu: float
    memory_gib: float
    zone: str = "onprem"
    #: every other inventory variable (ansible_user, ...), JSON
    vars_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    #: in the pool now (mirrors the open PoolLending row)
    lent: bool = False
    #: the open lease, if a burst holds the host now (mirrors the open PoolLease row)
    lease_id: str | None = None
    #: set by a recall while the host is still leased: no new lease, and the holder
    #: is asked to give it back
    recalled_at: datetime | None = None


class PoolLending(SQLModel, table=True):
    """A period during which a host was in the pool."""

    __tablename__ = "pool_lending"

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(index=True)
    unit: str = Field(index=True)
    lent_at: datetime = Field(default_factory=utcnow)
    returned_at: datetime | None = None
    #: why it ended: "recall" (and by whom, in the journal)
    ended_by: str | None = None


class PoolLease(SQLModel, table=True):
    """A burst holding a pool host: who borrowed which host, when, for which event."""

    __tablename__ = "pool_lease"
    __table_args__ = (
        # The database itself refuses a second open lease of one host, whatever the
        # locking above it does.
        Index("uq_pool_lease_open_host", "host", unique=True,
              sqlite_where=text("released_at IS NULL"), postgresql_where=text("released_at IS NULL")),
    )

    id: str = Field(primary_key=True)
    host: str = Field(index=True)
    unit: str = Field(index=True)
    cluster: str = Field(index=True)
    #: the LaunchRequest's request id: a repeated launch returns these leases
    request_id: str = Field(index=True)
    instance_type: str
    zone: str
    event: str | None = None
    burst_id: str | None = None
    tags_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    leased_at: datetime = Field(default_factory=utcnow)
    released_at: datetime | None = None
    release_request_id: str | None = None
