"""The tables: a burst (the intent and its plan), one row per host, and the
append-only journal from which every timing is derived.

Times are aware UTC datetimes (SQLModel's UTCDateTime stores them in UTC on both
SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Burst(SQLModel, table=True):
    """One event's extra capacity: what was asked for, the plan, where it stands."""

    id: str = Field(primary_key=True)
    event: str = Field(index=True)
    cluster: str
    #: active (going up or holding), draining (burst down running), down, failed
    status: str = Field(default="active", index=True)
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
    state: str = Field(default="requested", index=True)
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
