"""Occurrences of an event: once, by an RFC 5545 RRULE (python-dateutil) or by a
5-field cron expression (croniter).

Rules run on wall-clock time in the event's timezone, so "every Friday at 20:00
Asia/Shanghai" stays at 20:00 local; each occurrence is returned in aware UTC.
A cron event's `start` is the earliest time an occurrence may begin.

An RRULE is read strictly (RFC 5545 section 3.3.10) before python-dateutil sees it:
every part KEY=VALUE, each key known and given once, FREQ required and no finer than
MINUTELY, INTERVAL and COUNT positive, every BY* value in its range. dateutil
accepts a negative INTERVAL and fails only when occurrences are computed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from croniter import croniter
from dateutil.rrule import rrule, rrulestr

from burst.calendar.model import CalendarError, CalendarEvent, Occurrence


FREQUENCIES = ("MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_DAY = r"(?:MO|TU|WE|TH|FR|SA|SU)"
_INT_LIST = {  # key: (smallest, largest, may be negative)
    "BYSECOND": (0, 60, False), "BYMINUTE": (0, 59, False), "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True), "BYYEARDAY": (1, 366, True), "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False), "BYSETPOS": (1, 366, True),
}
MAX_COUNT = 10_000
MAX_INTERVAL = 1000


def normalise_rrule(text: str) -> str:
    """`RRULE:FREQ=WEEKLY;BYDAY=FR` or `freq=weekly;byday=fr` -> `FREQ=WEEKLY;BYDAY=FR`.
    Empty parts (`;;`) are kept, so that `check_rrule` refuses them."""
    text = text.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:"):]
    return ";".join(part.strip().upper() for part in text.split(";"))


def check_rrule(text: str) -> dict[str, str]:
    """The parts of a normalised RRULE, or `ValueError` saying which part is wrong."""
    parts: dict[str, str] = {}
    if not text:
        raise ValueError("it is empty (e.g. FREQ=WEEKLY;BYDAY=FR)")
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"part {part!r} is not KEY=VALUE")
        if key in parts:
            raise ValueError(f"{key} is given twice")
        parts[key] = value
        if key == "FREQ":
            if value == "SECONDLY":
                raise ValueError("FREQ=SECONDLY is not allowed: an event recurs at most every minute")
            if value not in FREQUENCIES:
                raise ValueError(f"FREQ={value} is not one of {', '.join(FREQUENCIES)}")
        elif key in ("INTERVAL", "COUNT"):
            top = MAX_INTERVAL if key == "INTERVAL" else MAX_COUNT
            if not re.fullmatch(r"\d{1,6}", value) or not 1 <= int(value) <= top:
                raise ValueError(f"{key}={value}: must be a whole number 1-{top}")
        elif key == "UNTIL":
            if not re.fullmatch(r"\d{8}(T\d{6}Z?)?", value):
                raise ValueError(f"UNTIL={value}: expected a date (20270101) or a time (20270101T000000Z)")
        elif key == "WKST":
            if not re.fullmatch(_DAY, value):
                raise ValueError(f"WKST={value}: expected a day (MO..SU)")
        elif key == "BYDAY":
            for day in value.split(","):
                m = re.fullmatch(rf"([+-]?)(\d{{1,2}})?({_DAY})", day)
                if not m or (m.group(2) and not 1 <= int(m.group(2)) <= 53) or (m.group(1) and not m.group(2)):
                    raise ValueError(f"BYDAY value {day!r}: expected e.g. FR, 1MO or -1SU")
        elif key in _INT_LIST:
            low, high, signed = _INT_LIST[key]
            for item in value.split(","):
                if not re.fullmatch(r"[+-]?\d{1,3}", item) or (item[0] in "+-" and not signed) \
                        or not low <= abs(int(item)) <= high:
                    raise ValueError(f"{key} value {item!r}: expected {'+/-' if signed else ''}{low}-{high}")
        else:
            raise ValueError(f"{key} is not an RRULE part burst knows")
    if "FREQ" not in parts:
        raise ValueError("FREQ is required")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("give at most one of COUNT and UNTIL")
    return parts


def _rule(event: CalendarEvent) -> rrule:
    start = event.start.replace(tzinfo=event.tz)
    text = normalise_rrule(event.rrule or "")
    try:
        check_rrule(text)
        rule = rrulestr(f"RRULE:{text}", dtstart=start)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
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


def _starts(event: CalendarEvent, not_before_utc: datetime | None) -> Iterator[datetime]:
    """Local-aware start times of the event, in order, none before `not_before_utc`
    (nor before the event's own start; None: from the event's start)."""
    tz = event.tz
    first = event.start.replace(tzinfo=tz)
    # no `datetime.min.astimezone(...)`: west of UTC that is before year 1 (OverflowError)
    floor = first if not_before_utc is None or not_before_utc <= first else not_before_utc.astimezone(tz)
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
    # an occurrence that began up to `length` ago is still running at `after`
    floor = None if after is None else after - length
    found = 0
    for local_start in _starts(event, floor):
        start = local_start.astimezone(UTC)
        if until is not None and start >= until:
            return
        try:
            end = start + length
        except OverflowError:  # past year 9999: nothing after this
            return
        if after is not None and end <= after:
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
