"""Every rule a calendar event must keep, checked before anything is stored.

It needs both the event model and the recurrence, so it lives here: `model` imports
neither, `recurrence` imports `model`, and this module imports both (no cycle).

Besides the shape of the event (name, IANA timezone, exactly one of end or duration,
demand of configured services), the cadence is bounded: occurrences of one event
start at least `MIN_GAP` apart, and at most `MAX_OVERLAP` of them run at once
(`FREQ=SECONDLY` with a one-hour duration would be 3,600 overlapping bursts).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

from burst.calendar.model import (MAX_LEAD, MAX_LENGTH, NAME, YEARS, CalendarError, CalendarEvent, zone)
from burst.calendar.recurrence import check_recurrence, first_occurrence, occurrences

#: occurrences of one event start at least this far apart
MIN_GAP = timedelta(minutes=15)
#: at most this many occurrences of one event run at the same time
MAX_OVERLAP = 4
#: the cadence is checked over this many occurrences (or two years, whichever is less)
CADENCE_SAMPLE = 500
#: replicas one event may ask of one service
MAX_REPLICAS = 1_000_000
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000


def validate(event: CalendarEvent, *, services: Iterable[str] | None = None, cadence: bool = True) -> CalendarEvent:
    """Check every rule; return the event (title defaulted) or raise `CalendarError`.

    `services` are the configured service names; None skips that check (pure tests).
    `cadence=False` skips the bounded walk over the occurrences (for rows read back
    from the store, which were checked when they were added)."""
    if not isinstance(event.name, str) or not NAME.fullmatch(event.name):
        raise CalendarError(f"event name {event.name!r}: use 1-63 lowercase letters, digits and '-', "
                            "starting with a letter or digit")
    where = f"event {event.name}"
    try:
        zone(event.timezone)
    except CalendarError as exc:
        raise CalendarError(f"{where}: {exc}") from None
    if event.start is None:
        raise CalendarError(f"{where}: a start is required")
    if event.start.tzinfo is not None or (event.end is not None and event.end.tzinfo is not None):
        raise CalendarError(f"{where}: start and end are wall-clock times in the event's timezone")
    for label, t in (("start", event.start), ("end", event.end)):
        if t is not None and not YEARS[0] <= t.year <= YEARS[1]:
            raise CalendarError(f"{where}: the {label} {t.isoformat()} is not within the years {YEARS[0]}-{YEARS[1]}")
    if (event.end is None) == (event.duration is None):
        raise CalendarError(f"{where}: give exactly one of end or duration "
                            f"({'both' if event.end is not None else 'neither'} given)")
    if event.end is not None and event.end <= event.start:
        raise CalendarError(f"{where}: end {event.end.isoformat()} is not after start {event.start.isoformat()}")
    if event.length <= timedelta(0):
        raise CalendarError(f"{where}: duration must be positive")
    if event.length > MAX_LENGTH:
        raise CalendarError(f"{where}: one occurrence lasts at most {MAX_LENGTH.days} days")
    if event.rrule and event.cron:
        raise CalendarError(f"{where}: give at most one recurrence (an RRULE or a cron expression)")
    if event.lead_seconds is not None:
        lead = event.lead_seconds
        if not isinstance(lead, int | float) or isinstance(lead, bool) or not math.isfinite(lead) or lead < 0:
            raise CalendarError(f"{where}: lead time must not be negative (and finite), got {lead!r}")
        if lead > MAX_LEAD.total_seconds():
            raise CalendarError(f"{where}: lead time is at most {MAX_LEAD.days} days")
    _check_text(where, event)
    _check_demand(where, event, services)
    check_recurrence(event)
    if first_occurrence(event) is None:
        raise CalendarError(f"{where}: the recurrence {event.recurrence!r} yields no occurrence")
    if cadence and (event.rrule or event.cron):
        _check_cadence(where, event)
    return replace(event, title=event.title or event.name, demand=dict(event.demand),
                   uid=event.uid or f"{uuid.uuid4()}@burst")


def _check_text(where: str, event: CalendarEvent) -> None:
    if len(event.title) > MAX_TITLE or any(c in event.title for c in "\r\n\t\x00"):
        raise CalendarError(f"{where}: a title is one line of at most {MAX_TITLE} characters")
    if len(event.description) > MAX_DESCRIPTION or "\x00" in event.description:
        raise CalendarError(f"{where}: a description is at most {MAX_DESCRIPTION} characters of text")


def _check_demand(where: str, event: CalendarEvent, services: Iterable[str] | None) -> None:
    if event.freeze:
        if event.demand:
            raise CalendarError(f"{where}: a freeze window asks for no capacity (drop the demand)")
        return
    if not event.demand:
        raise CalendarError(f"{where}: demand is required (e.g. web=10)")
    known = set(services) if services is not None else None
    for name, replicas in event.demand.items():
        if known is not None and name not in known:
            raise CalendarError(f"{where}: unknown service {name!r} "
                                f"(configured: {', '.join(sorted(known)) or 'none'})")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 < replicas <= MAX_REPLICAS:
            raise CalendarError(f"{where}: replicas of {name!r} must be a positive whole number of at most "
                                f"{MAX_REPLICAS}, got {replicas!r}")


def _check_cadence(where: str, event: CalendarEvent) -> None:
    """Starts at least MIN_GAP apart, at most MAX_OVERLAP live at once, over the first
    CADENCE_SAMPLE occurrences (or two years)."""
    first = first_occurrence(event)
    assert first is not None
    starts = [o.start for o in occurrences(event, until=first.start + timedelta(days=731), limit=CADENCE_SAMPLE)]
    length = event.length
    for a, b in zip(starts, starts[1:]):
        if b - a < MIN_GAP:
            raise CalendarError(f"{where}: the recurrence {event.recurrence!r} starts occurrences {b - a} apart; "
                                f"at least {int(MIN_GAP.total_seconds() // 60)} minutes apart, please")
    lo = 0
    for hi, start in enumerate(starts):
        while starts[lo] + length <= start:
            lo += 1
        if hi - lo + 1 > MAX_OVERLAP:
            raise CalendarError(f"{where}: with a length of {length} its occurrences overlap {hi - lo + 1} at a "
                                f"time; at most {MAX_OVERLAP} may run at once (shorten it, or recur less often)")
