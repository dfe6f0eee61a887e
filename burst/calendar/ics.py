"""iCalendar (.ics, RFC 5545) import and export, with the `icalendar` package.

A VEVENT maps to a calendar event as follows:

    SUMMARY               title (the name is X-BURST-NAME, else the title made a slug)
    DTSTART;TZID=...      start and timezone (a UTC `Z` time: UTC; a floating time:
                          the importer's default timezone; a DATE: midnight)
    DTEND | DURATION      end or duration (exactly one)
    RRULE                 recurrence (one rule; EXDATE and RDATE are refused rather
                          than silently dropped)
    X-BURST-CRON          a 5-field cron recurrence (RFC 5545 cannot say cron)
    X-BURST-DEMAND        web=10,api=4; a team calendar entry may instead carry a
                          line `burst: web=10 api=4` in its DESCRIPTION
    X-BURST-LEAD-SECONDS  a fixed lead time
    X-BURST-FREEZE        TRUE for a freeze window (or CATEGORIES containing FREEZE)
    UID, DESCRIPTION      kept as they are

Export writes the same properties back, with a VTIMEZONE for each timezone used, so
an imported file exports back to the same events.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from burst.calendar.model import MAX_LENGTH, YEARS, CalendarError, CalendarEvent, format_demand, parse_demand, zone
from burst.calendar.recurrence import normalise_rrule
from burst.calendar.validate import validate
from burst.text import shorten

PRODID = "-//burst//pre-scaling calendar//EN"
_DESCRIPTION_DEMAND = re.compile(r"^\s*(?:burst|demand)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:63].strip("-") or "event"


def parse_ics(data: bytes | str, *, services: Iterable[str] | None = None, default_timezone: str = "UTC",
              default_demand: Mapping[str, int] | None = None) -> list[CalendarEvent]:
    """Every VEVENT of `data` as a validated event; the first problem raises
    `CalendarError` naming the event, and nothing is returned."""
    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError and friends for any malformed input
        raise CalendarError(f"not an iCalendar file: {_first_line(exc)}") from None
    services = list(services) if services is not None else None
    events: list[CalendarEvent] = []
    names: set[str] = set()
    for vevent in cal.walk("VEVENT"):
        event = _event_from_vevent(vevent, default_timezone, default_demand)
        if event.name in names:
            if vevent.get("X-BURST-NAME"):
                raise CalendarError(f"the file names event {event.name!r} twice")
            n = 2
            while f"{event.name}-{n}" in names:
                n += 1
            event = CalendarEvent(**{**event.__dict__, "name": f"{event.name[:60]}-{n}"})
        names.add(event.name)
        events.append(validate(event, services=services))
    if not events:
        raise CalendarError("the file holds no event (no VEVENT)")
    return events


def _text(vevent, key: str) -> str:
    value = vevent.get(key)
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "to_ical") and not isinstance(value, str):
        raw = value.to_ical()
        return raw.decode() if isinstance(raw, bytes) else str(raw)
    return str(value)


def _value(vevent, key: str, where: str):
    """The parsed value (`.dt`) of a date, time or duration property; a broken one
    (icalendar keeps it and raises on access) is a `CalendarError` naming it."""
    prop = vevent.get(key)
    if prop is None:
        return None
    try:
        value = prop.dt
    except Exception as exc:  # noqa: BLE001  icalendar's BrokenCalendarProperty and friends
        raise CalendarError(f"{where}: {key} {_raw(prop)!r} is malformed ({_first_line(exc)})") from None
    if isinstance(value, date) and not YEARS[0] <= value.year <= YEARS[1]:
        raise CalendarError(f"{where}: {key} {value.isoformat()} is not within the years {YEARS[0]}-{YEARS[1]}")
    tzid = getattr(prop, "params", {}).get("TZID")
    if tzid is not None and isinstance(value, datetime):
        try:
            zone(str(tzid))
        except CalendarError:
            raise CalendarError(f"{where}: {key};TZID={tzid} is not an IANA timezone (use e.g. Asia/Shanghai; "
                                "burst does not guess what a custom VTIMEZONE means)") from None
    return value


def _raw(prop) -> str:
    try:
        raw = prop.to_ical()
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    except Exception:  # noqa: BLE001
        text = str(prop)
    return shorten(text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _local(value, default_timezone: str) -> tuple[datetime, str]:
    """A DTSTART/DTEND value as (naive wall-clock time, IANA timezone)."""
    if isinstance(value, datetime):
        tz = value.tzinfo
        if tz is None:
            return value, default_timezone
        if tz is UTC or getattr(tz, "key", None) in ("UTC", "Etc/UTC") or str(tz) == "UTC":
            return value.replace(tzinfo=None), "UTC"
        key = getattr(tz, "key", None)
        if not key:
            raise CalendarError(f"timezone {tz} is not an IANA timezone (use e.g. Asia/Shanghai)")
        return value.replace(tzinfo=None), key
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day), default_timezone
    raise CalendarError(f"cannot read the time {value!r}")


def _event_from_vevent(vevent, default_timezone: str, default_demand: Mapping[str, int] | None) -> CalendarEvent:
    title = _text(vevent, "SUMMARY").strip()
    name = _text(vevent, "X-BURST-NAME").strip() or slug(title or _text(vevent, "UID"))
    where = f"event {name!r}"
    for unsupported in ("EXDATE", "RDATE", "EXRULE"):
        if vevent.get(unsupported) is not None:
            raise CalendarError(f"{where}: {unsupported} is not supported; split the event or remove the exception")
    for key, problem in getattr(vevent, "errors", ()) or ():
        raise CalendarError(f"{where}: {key} is malformed ({str(problem).splitlines()[0] if problem else '?'})")
    start_value = _value(vevent, "DTSTART", where)
    if start_value is None:
        raise CalendarError(f"{where}: DTSTART is missing")
    start, tz = _local(start_value, default_timezone)
    end = duration = None
    end_value = _value(vevent, "DTEND", where)
    if end_value is not None:
        if isinstance(end_value, datetime) and end_value.tzinfo is not None:
            end = end_value.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
        else:
            end, _ = _local(end_value, tz)
    duration = _value(vevent, "DURATION", where)
    if duration is not None and not isinstance(duration, timedelta):
        raise CalendarError(f"{where}: DURATION must be a duration such as PT2H")
    if duration is not None and not timedelta(0) < duration <= MAX_LENGTH:
        raise CalendarError(f"{where}: DURATION {_raw(vevent.get('DURATION'))} must be above zero and at most "
                            f"{MAX_LENGTH.days} days")
    if end is None and duration is None and not isinstance(start_value, datetime):
        duration = timedelta(days=1)  # RFC 5545: an all-day event without DTEND lasts the day
    rrules = vevent.get("RRULE")
    if isinstance(rrules, list):
        raise CalendarError(f"{where}: more than one RRULE is not supported")
    rrule = None
    if rrules is not None:
        rrule = normalise_rrule(rrules.to_ical().decode())
        if not rrule:  # icalendar reads `RRULE:;;;==` as an empty rule: not a one-off event
            raise CalendarError(f"{where}: the RRULE is empty or malformed (e.g. RRULE:FREQ=WEEKLY;BYDAY=FR)")
    categories = " ".join(_text(vevent, "CATEGORIES").upper().split(","))
    freeze = _text(vevent, "X-BURST-FREEZE").strip().upper() == "TRUE" or "FREEZE" in categories.split()
    description = _text(vevent, "DESCRIPTION")
    demand_text = _text(vevent, "X-BURST-DEMAND").strip()
    if not demand_text:
        m = _DESCRIPTION_DEMAND.search(description)
        demand_text = m.group(1) if m else ""
    demand = parse_demand([demand_text]) if demand_text else dict(default_demand or {}) if not freeze else {}
    lead_text = _text(vevent, "X-BURST-LEAD-SECONDS").strip()
    try:
        lead = float(lead_text) if lead_text else None
    except ValueError:
        raise CalendarError(f"{where}: X-BURST-LEAD-SECONDS {lead_text!r} is not a number") from None
    return CalendarEvent(name=name, start=start, timezone=tz, end=end, duration=duration, demand=demand,
                         lead_seconds=lead, rrule=rrule, cron=_text(vevent, "X-BURST-CRON").strip() or None,
                         freeze=freeze, title=title or name, description=description,
                         uid=_text(vevent, "UID").strip() or str(uuid.uuid4()))


def to_ics(events: Iterable[CalendarEvent], *, stamp: datetime | None = None) -> bytes:
    """The events as one VCALENDAR. `stamp` is every DTSTAMP (default: the epoch, so
    exporting the same events twice gives the same bytes)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    for event in events:
        v = icalendar.Event()
        v.add("uid", event.uid or f"{event.name}@burst")
        v.add("dtstamp", stamp or datetime(1970, 1, 1, tzinfo=UTC))
        v.add("summary", event.title or event.name)
        v.add("x-burst-name", event.name)
        tz = ZoneInfo(event.timezone)
        v.add("dtstart", event.start.replace(tzinfo=UTC if event.timezone == "UTC" else tz))
        if event.end is not None:
            v.add("dtend", event.end.replace(tzinfo=UTC if event.timezone == "UTC" else tz))
        else:
            v.add("duration", event.duration)
        if event.rrule:
            v.add("rrule", icalendar.vRecur.from_ical(event.rrule))
        if event.cron:
            v.add("x-burst-cron", event.cron)
        if event.demand:
            v.add("x-burst-demand", format_demand(event.demand))
        if event.lead_seconds is not None:
            v.add("x-burst-lead-seconds", f"{event.lead_seconds:g}")
        if event.freeze:
            v.add("x-burst-freeze", "TRUE")
        if event.description:
            v.add("description", event.description)
        cal.add_component(v)
    cal.add_missing_timezones()
    return cal.to_ical()
