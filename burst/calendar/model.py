"""A calendar event: validated strictly, stored as wall-clock time in its timezone.

Times are kept as the operator wrote them (a local wall-clock start in an IANA
timezone), so a weekly 20:00 event stays at 20:00 across a DST change; occurrences
are turned into aware UTC datetimes only when they are computed.

Every rule an operator can break is a one-line `CalendarError`, raised before
anything is stored (the rules themselves are in `burst.calendar.validate`, which
needs the recurrence; this module needs neither).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from burst import durations
from burst.errors import BurstError, InputError
from burst.names import CALENDAR_EVENT
from burst.text import shorten

NAME = CALENDAR_EVENT.pattern


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


#: one occurrence lasts at most this long; a lead time is at most MAX_LEAD
MAX_LENGTH = timedelta(days=366)
MAX_LEAD = timedelta(days=7)
#: an event starts within these years (a start near year 9999 leaves no room for its
#: end, nor for the arithmetic on it)
YEARS = (1970, 2999)


def parse_duration(text: str, *, flag: str = "duration", maximum: timedelta = MAX_LENGTH,
                   allow_zero: bool = False) -> timedelta:
    """The one duration grammar of burst (burst.durations): `90m`, `2h`, `1h30m`,
    `45s`, `1d`, `+5m`, or ISO 8601 such as `PT2H`; a `CalendarError` otherwise."""
    try:
        return durations.parse_duration(text, flag=flag, maximum=maximum, allow_zero=allow_zero)
    except InputError as exc:
        raise CalendarError(str(exc)) from None


def parse_local_time(text: str, timezone: str, *, now: datetime | None = None) -> datetime:
    """A naive wall-clock time in `timezone` from ISO 8601 (`2025-01-28T20:00`), or
    relative to now (`+2m`, `+1h30m`). An ISO time with an offset is converted."""
    text = text.strip()
    tz = zone(timezone)
    if text.startswith("+"):
        now = now or datetime.now(UTC)
        local = (now + parse_duration(text, flag="time")).astimezone(tz)
        return local.replace(tzinfo=None, microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CalendarError(f"time {shorten(text)!r} is not ISO 8601 (e.g. 2025-01-28T20:00) nor relative "
                            "(e.g. +2m)") from None
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise CalendarError(f"time {text!r}: the year must be {YEARS[0]}-{YEARS[1]}")
    if value.tzinfo is not None:
        value = value.astimezone(tz).replace(tzinfo=None)
    return value


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name` (Asia/Shanghai, America/New_York, UTC); anything else,
    a POSIX TZ string or a file path included, is a `CalendarError`."""
    if not isinstance(name, str) or name not in _iana_names():
        raise CalendarError(f"unknown timezone {name!r} (use an IANA name such as Asia/Shanghai or UTC)")
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
            if not re.fullmatch(r"\d{1,9}", count.strip()):
                raise CalendarError(f"demand {part!r}: replicas must be a whole number of at most 9 digits")
            replicas = int(count)
            if name in demand:
                raise CalendarError(f"demand names service {name!r} twice")
            demand[name] = replicas
    return demand


def format_demand(demand: Mapping[str, int]) -> str:
    return ",".join(f"{name}={n}" for name, n in sorted(demand.items()))
