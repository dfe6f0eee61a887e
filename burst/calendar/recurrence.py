"""Occurrences of an event: once, by an RFC 5545 RRULE (python-dateutil) or by a
5-field cron expression (croniter).

Rules run on wall-clock time in the event's timezone, so "every Friday at 20:00
Asia/Shanghai" stays at 20:00 local; each occurrence is returned in aware UTC.
A cron event's `start` is the earliest time an occurrence may begin.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from croniter import croniter
from dateutil.rrule import rrule, rrulestr

from burst.calendar.model import CalendarError, CalendarEvent, Occurrence


def normalise_rrule(text: str) -> str:
    """`RRULE:FREQ=WEEKLY;BYDAY=FR` or `freq=weekly;byday=fr` -> `FREQ=WEEKLY;BYDAY=FR`."""
    text = text.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:"):]
    return ";".join(part.strip().upper() for part in text.split(";") if part.strip())


def _rule(event: CalendarEvent) -> rrule:
    start = event.start.replace(tzinfo=event.tz)
    try:
        rule = rrulestr(f"RRULE:{normalise_rrule(event.rrule or '')}", dtstart=start)
    except (ValueError, TypeError, KeyError) as exc:
        raise CalendarError(f"event {event.name}: RRULE {event.rrule!r} is invalid: {exc}") from None
    if not isinstance(rule, rrule):
        raise CalendarError(f"event {event.name}: RRULE {event.rrule!r} is not a single rule")
    return rule


def _cron(event: CalendarEvent, after_local: datetime) -> croniter:
    expr = (event.cron or "").strip()
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise CalendarError(f"event {event.name}: cron {event.cron!r} is not a valid 5-field expression "
                            "(minute hour day-of-month month day-of-week)")
    return croniter(expr, after_local - timedelta(seconds=1))


def check_recurrence(event: CalendarEvent) -> None:
    """Raise `CalendarError` if the recurrence cannot be parsed."""
    if event.rrule:
        _rule(event)
    elif event.cron:
        _cron(event, event.start.replace(tzinfo=event.tz))


def _starts(event: CalendarEvent, not_before_utc: datetime) -> Iterator[datetime]:
    """Local-aware start times of the event, in order, none before `not_before_utc`
    (nor before the event's own start)."""
    tz = event.tz
    first = event.start.replace(tzinfo=tz)
    floor = max(first, not_before_utc.astimezone(tz))
    if event.rrule:
        yield from _rule(event).xafter(floor, inc=True)
    elif event.cron:
        it = _cron(event, floor)
        while True:
            try:
                nxt = it.get_next(datetime)
            except Exception:  # croniter: no further match within its search horizon
                return
            yield nxt.astimezone(tz)
    elif first >= floor:
        yield first


def occurrences(event: CalendarEvent, *, after: datetime | None = None, until: datetime | None = None,
                limit: int | None = None) -> Iterator[Occurrence]:
    """Occurrences still running at or after `after` (end > after; default: from the
    first), starting before `until`; at most `limit`. One of `until`/`limit` bounds
    an endless rule."""
    if until is None and limit is None and (event.rrule or event.cron):
        raise ValueError("occurrences of a recurring event need until= or limit=")
    length = event.length
    after = after if after is not None else datetime.min.replace(tzinfo=UTC)
    # an occurrence that began up to `length` ago is still running at `after`
    floor = after - length if after > datetime.min.replace(tzinfo=UTC) + length else after
    found = 0
    for local_start in _starts(event, floor):
        start = local_start.astimezone(UTC)
        if until is not None and start >= until:
            return
        end = start + length
        if end <= after:
            continue
        yield Occurrence(event=event.name, start=start, end=end, demand=dict(event.demand), freeze=event.freeze)
        found += 1
        if limit is not None and found >= limit:
            return


def first_occurrence(event: CalendarEvent) -> Occurrence | None:
    check_recurrence(event)
    return next(iter(occurrences(event, limit=1)), None)


def next_occurrences(event: CalendarEvent, now: datetime, count: int = 3) -> list[Occurrence]:
    """The occurrence running at `now`, if any, then the next ones: `count` in all."""
    return list(islice(occurrences(event, after=now, limit=count), count))
