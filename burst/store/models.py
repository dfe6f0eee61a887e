"""The tables: a burst (the intent and its plan), one row per host, and the
append-only journal from which every timing is derived.

Times are aware UTC datetimes (SQLModel's UTCDateTime stores them in UTC on both
SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from burst.lifecycle import BurstStatus, HostState
from burst.plan import Plan, demand_from_json


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum_column(enum: type, default, *, index: bool = True) -> Column:
    """An enum stored as its value (a VARCHAR on both stores), read back as the enum."""
    return Column(SAEnum(enum, native_enum=False, create_constraint=False, length=20, validate_strings=True,
                         values_callable=lambda e: [m.value for m in e]),
                  nullable=False, default=default, index=index)


class Burst(SQLModel, table=True):
    """One event's extra capacity: what was asked for, the plan, where it stands."""

    __table_args__ = (
        # at most one live burst per event, whatever races (two `burst up` at once)
        Index("uq_burst_live_event", "event", unique=True, sqlite_where=text("status != 'down'"),
              postgresql_where=text("status != 'down'")),
    )

    id: str = Field(primary_key=True)
    event: str = Field(index=True)
    cluster: str
    #: active (going up or holding), draining (burst down running), down
    status: BurstStatus = Field(default=BurstStatus.ACTIVE, sa_column=_enum_column(BurstStatus, BurstStatus.ACTIVE))
    demand_json: str = Field(sa_column=Column(Text, nullable=False))
    plan_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    deadline_at: datetime
    ready_at: datetime | None = None
    down_requested_at: datetime | None = None
    down_at: datetime | None = None
    version: int = 1
    #: the process driving this burst ("host:pid:nonce") and until when its lease
    #: holds: two reconcilers (a `burst up` and the daemon) never drive one burst
    driver: str | None = None
    driver_until: datetime | None = None
    #: why the burst stopped trying (a tier's credentials were refused...): set once
    halted: str | None = None

    @property
    def demand(self) -> dict[str, int]:
        return demand_from_json(self.demand_json)

    @property
    def plan(self) -> Plan:
        return Plan.from_json(self.plan_json)

    @property
    def live(self) -> bool:
        return self.status is not BurstStatus.DOWN


class Host(SQLModel, table=True):
    """One host of a burst. A slot is one planned host; a failed host's replacement
    takes the same slot with the next attempt number, so a slot never holds two live
    hosts and 'exactly the planned hosts' is checkable."""

    __table_args__ = (
        UniqueConstraint("burst_id", "slot", "attempt"),
        Index("ix_host_burst_state", "burst_id", "state"),
    )

    id: str = Field(primary_key=True)
    burst_id: str = Field(foreign_key="burst.id")
    slot: int
    attempt: int = 0
    tier: str
    provider: str
    zone: str
    instance_type: str
    state: HostState = Field(default=HostState.REQUESTED, sa_column=_enum_column(HostState, HostState.REQUESTED))
    #: the slot gets no further attempt: the burst completes short of it
    given_up: bool = False
    #: optimistic concurrency: every write checks and bumps it
    version: int = 1
    #: the launch request id (ClientToken) of the batch this host was launched in
    launch_request_id: str | None = Field(default=None, index=True)
    instance_id: str | None = Field(default=None, index=True)
    address: str | None = None
    node_id: str | None = None
    config_hash: str | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    #: when the phase the host is in must be done by; past it the host fails
    phase_deadline: datetime | None = None


class JournalEntry(SQLModel, table=True):
    """Append-only: never updated, never deleted."""

    __tablename__ = "journal"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    burst_id: str | None = Field(default=None, index=True)
    host_id: str | None = Field(default=None, index=True)
    kind: str
    from_state: str | None = None
    to_state: str | None = None
    message: str = ""
    detail_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class StoreIdentity(SQLModel, table=True):
    """Who this store is: one row, made when the schema is. Every instance burst
    launches carries it (`burst:store`), and gc collects only instances carrying it,
    so two stores that share a cluster name never collect each other's hosts."""

    __tablename__ = "store_identity"

    id: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
