"""A calendar event: validated strictly, stored as wall-clock time in its timezone.

Times are kept as the operator wrote them (a local wall-clock start in an IANA
timezone), so a weekly 20:00 event stays at 20:00 across a DST change; occurrences
are turned into aware UTC datetimes only when they are computed.

Every rule an operator can break is a one-line `CalendarError`, raised before
anything is stored.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from burst.errors import BurstError

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class CalendarError(BurstError):
    """A calendar event is invalid, unknown, or already exists."""


@dataclass(frozen=True)
class CalendarEvent:
    """One entry of the calendar.

    `start` and `end` are naive wall-clock times in `timezone`. Exactly one of `end`
    and `duration` is set (the one the operator gave, kept so an export writes it
    back the same way). `lead_seconds=None` means: computed from the measured p95
    time-to-ready of the tiers the plan uses, plus the daemon's margin. A `freeze`
    event is a freeze window: it asks for no capacity, and while one of its
    occurrences runs the daemon scales nothing in.
    """

    name: str
    start: datetime
    timezone: str
    demand: Mapping[str, int] = field(default_factory=dict)
    end: datetime | None = None
    duration: timedelta | None = None
    lead_seconds: float | None = None
    rrule: str | None = None
    cron: str | None = None
    freeze: bool = False
    title: str = ""
    description: str = ""
    uid: str = ""
    #: when it was entered (set by the store; not part of the event's identity)
    created_at: datetime | None = field(default=None, compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def length(self) -> timedelta:
        """How long one occurrence lasts (absolute time, DST included)."""
        if self.duration is not None:
            return self.duration
        assert self.end is not None
        return self.end.replace(tzinfo=self.tz).astimezone(UTC) - self.start.replace(tzinfo=self.tz).astimezone(UTC)

    @property
    def recurrence(self) -> str:
        if self.rrule:
            return f"RRULE:{self.rrule}"
        if self.cron:
            return f"cron: {self.cron}"
        return ""

    @property
    def kind(self) -> str:
        return "freeze" if self.freeze else "event"


@dataclass(frozen=True)
class Occurrence:
    """One run of an event, in aware UTC. `key` names it everywhere: the burst the
    daemon starts for it is named by the key, and its actions are recorded under it."""

    event: str
    start: datetime
    end: datetime
    demand: Mapping[str, int]
    freeze: bool = False

    @property
    def key(self) -> str:
        return occurrence_key(self.event, self.start)

    def live_at(self, t: datetime) -> bool:
        return self.start <= t < self.end


def occurrence_key(event: str, start: datetime) -> str:
    return f"{event}@{start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def parse_duration(text: str) -> timedelta:
    """`90m`, `2h`, `1h30m`, `45s`, `1d`, or an ISO 8601 duration such as `PT2H`."""
    text = text.strip()
    iso = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text.upper())
    if iso and text.upper() not in ("P", "PT"):
        d, h, m, s = (int(x or 0) for x in iso.groups())
        return timedelta(days=d, hours=h, minutes=m, seconds=s)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhms])", text.lower())
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([dhms])", "", text.lower()).strip():
        raise CalendarError(f"duration {text!r} is not understood (use e.g. 90m, 2h, 1h30m or PT2H)")
    unit = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))


def parse_local_time(text: str, timezone: str, *, now: datetime | None = None) -> datetime:
    """A naive wall-clock time in `timezone` from ISO 8601 (`2025-01-28T20:00`), or
    relative to now (`+2m`, `+1h30m`). An ISO time with an offset is converted."""
    text = text.strip()
    tz = zone(timezone)
    if text.startswith("+"):
        now = now or datetime.now(UTC)
        local = (now + parse_duration(text[1:])).astimezone(tz)
        return local.replace(tzinfo=None, microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CalendarError(f"time {text!r} is not ISO 8601 (e.g. 2025-01-28T20:00) nor relative (e.g. +2m)") from None
    if value.tzinfo is not None:
        value = value.astimezone(tz).replace(tzinfo=None)
    return value


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CalendarError(f"unknown timezone {name!r} (use an IANA name such as Asia/Shanghai or UTC)") from None


def parse_demand(items: Iterable[str]) -> dict[str, int]:
    """`web=10`, `api=4` (or one `web=10,api=4`) -> {"web": 10, "api": 4}."""
    demand: dict[str, int] = {}
    for item in items:
        for part in re.split(r"[,\s]+", item.strip()):
            if not part:
                continue
            name, sep, count = part.partition("=")
            if not sep or not name:
                raise CalendarError(f"demand {part!r} is not SERVICE=REPLICAS (e.g. web=10)")
            try:
                replicas = int(count)
            except ValueError:
                raise CalendarError(f"demand {part!r}: replicas must be a whole number") from None
            if name in demand:
                raise CalendarError(f"demand names service {name!r} twice")
            demand[name] = replicas
    return demand


def format_demand(demand: Mapping[str, int]) -> str:
    return ",".join(f"{name}={n}" for name, n in sorted(demand.items()))


def validate(event: CalendarEvent, *, services: Iterable[str] | None = None) -> CalendarEvent:
    """Check every rule; return the event (title defaulted) or raise `CalendarError`.

    `services` are the configured service names; None skips that check (pure tests)."""
    from burst.calendar.recurrence import first_occurrence  # recurrence imports this module

    if not NAME.match(event.name or ""):
        raise CalendarError(f"event name {event.name!r}: use 1-63 lowercase letters, digits and '-', "
                            "starting with a letter or digit")
    try:
        zone(event.timezone)
    except CalendarError as exc:
        raise CalendarError(f"event {event.name}: {exc}") from None
    if event.start is None:
        raise CalendarError(f"event {event.name}: a start is required")
    if event.start.tzinfo is not None or (event.end is not None and event.end.tzinfo is not None):
        raise CalendarError(f"event {event.name}: start and end are wall-clock times in the event's timezone")
    if (event.end is None) == (event.duration is None):
        raise CalendarError(f"event {event.name}: give exactly one of end or duration "
                            f"({'both' if event.end is not None else 'neither'} given)")
    if event.end is not None and event.end <= event.start:
        raise CalendarError(f"event {event.name}: end {event.end.isoformat()} is not after start "
                            f"{event.start.isoformat()}")
    if event.length <= timedelta(0):
        raise CalendarError(f"event {event.name}: duration must be positive")
    if event.rrule and event.cron:
        raise CalendarError(f"event {event.name}: give at most one recurrence (an RRULE or a cron expression)")
    if event.lead_seconds is not None and event.lead_seconds < 0:
        raise CalendarError(f"event {event.name}: lead time must not be negative")
    if event.freeze:
        if event.demand:
            raise CalendarError(f"event {event.name}: a freeze window asks for no capacity (drop the demand)")
    else:
        if not event.demand:
            raise CalendarError(f"event {event.name}: demand is required (e.g. web=10)")
        known = set(services) if services is not None else None
        for name, replicas in event.demand.items():
            if known is not None and name not in known:
                raise CalendarError(f"event {event.name}: unknown service {name!r} "
                                    f"(configured: {', '.join(sorted(known)) or 'none'})")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas <= 0:
                raise CalendarError(f"event {event.name}: replicas of {name!r} must be a positive whole number, "
                                    f"got {replicas!r}")
    if first_occurrence(event) is None:
        raise CalendarError(f"event {event.name}: the recurrence {event.recurrence!r} yields no occurrence")
    return replace(event, title=event.title or event.name, demand=dict(event.demand),
                   uid=event.uid or f"{uuid.uuid4()}@burst")
