"""The calendar's tables: events, the actions the daemon performed, and the
notifications it sent.

`calendar_action` is how the daemon performs each action once: the row for
(event, occurrence, action) is inserted, under its unique key, in the transaction
that decides the action; a second daemon, or the same one after a restart, finds it
and does not act again. A row left `started` by a daemon that died mid-action is
finished by the next leader (the service calls are idempotent per occurrence).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from burst.store.models import utcnow


class CalendarEventRow(SQLModel, table=True):
    """One event as the operator entered it (wall-clock times in `timezone`)."""

    __tablename__ = "calendar_event"

    name: str = Field(primary_key=True)
    title: str
    #: ISO 8601 wall-clock times without offset, in `timezone`
    start_local: str
    end_local: str | None = None
    duration_seconds: float | None = None
    timezone: str
    demand_json: str = Field(sa_column=Column(Text, nullable=False))
    lead_seconds: float | None = None
    rrule: str | None = None
    cron: str | None = None
    freeze: bool = False
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    uid: str
    created_at: datetime = Field(default_factory=utcnow)


class CalendarAction(SQLModel, table=True):
    """An action the daemon took (or recorded as missed) for one occurrence."""

    __tablename__ = "calendar_action"
    __table_args__ = (UniqueConstraint("event", "occurrence", "action"),)

    id: int | None = Field(default=None, primary_key=True)
    event: str = Field(index=True)
    #: the occurrence key, `<event>@<start UTC>`; also the name of its burst
    occurrence: str = Field(index=True)
    #: up | down | missed | frozen
    action: str
    #: started | done | failed | missed
    status: str
    #: on_time | late | missed | frozen (waited for a freeze window) | nothing_live
    outcome: str = ""
    due_at: datetime
    #: when the occurrence ends (set on `up`): its `down` is due then, even if the
    #: event has been removed meanwhile
    ends_at: datetime | None = None
    claimed_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = None
    attempts: int = 0
    burst_id: str | None = None
    error: str | None = None
    #: which daemon took it: host:pid
    daemon: str = ""


class NotificationSent(SQLModel, table=True):
    """A webhook notification, claimed once by key so it is sent at most once."""

    __tablename__ = "daemon_notification"

    key: str = Field(primary_key=True)
    kind: str
    burst_id: str | None = None
    claimed_at: datetime = Field(default_factory=utcnow)
    #: queued | sent | failed
    status: str = "queued"
    error: str | None = None
