"""The calendar in the store: events (added all-or-nothing), the daemon's actions
(claimed once by a unique key) and its notifications (claimed once by key)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from burst.calendar.model import CalendarError, CalendarEvent
from burst.calendar.tables import CalendarAction, CalendarEventRow, NotificationSent
from burst.calendar.validate import validate
from burst.store import Store
from burst.store.models import utcnow


def _to_row(event: CalendarEvent) -> CalendarEventRow:
    return CalendarEventRow(
        name=event.name, title=event.title or event.name, start_local=event.start.isoformat(),
        end_local=event.end.isoformat() if event.end is not None else None,
        duration_seconds=event.duration.total_seconds() if event.duration is not None else None,
        timezone=event.timezone, demand_json=json.dumps(dict(event.demand), sort_keys=True),
        lead_seconds=event.lead_seconds, rrule=event.rrule, cron=event.cron, freeze=event.freeze,
        description=event.description, uid=event.uid)


def _from_row(row: CalendarEventRow) -> CalendarEvent:
    return CalendarEvent(
        name=row.name, title=row.title, start=datetime.fromisoformat(row.start_local), timezone=row.timezone,
        end=datetime.fromisoformat(row.end_local) if row.end_local else None,
        duration=timedelta(seconds=row.duration_seconds) if row.duration_seconds is not None else None,
        demand=json.loads(row.demand_json), lead_seconds=row.lead_seconds, rrule=row.rrule, cron=row.cron,
        freeze=row.freeze, description=row.description, uid=row.uid, created_at=row.created_at)


@dataclass(frozen=True)
class UnreadableEvent:
    """A stored row that no longer makes an event (written by an older version, or by
    hand): it is reported, skipped, and never breaks reading the others."""

    name: str
    why: str

    @property
    def message(self) -> str:
        return (f"calendar event {self.name!r} in the store is unreadable ({self.why}); it is skipped: "
                f"remove it with `burst calendar remove {self.name}` and add it again")


def _read(row: CalendarEventRow) -> CalendarEvent:
    """The row as a checked event, or `CalendarError` saying what is wrong with it."""
    try:
        event = _from_row(row)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise CalendarError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    try:
        return validate(event, cadence=False)
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise CalendarError(f"{type(exc).__name__}: {exc}") from None


class CalendarRepo:
    def __init__(self, store: Store):
        self.store = store

    # -- events ------------------------------------------------------------------

    def add(self, events: Sequence[CalendarEvent], *, replace: bool = False) -> list[CalendarEvent]:
        """Store validated events in one transaction: all or none. An existing name is
        an error unless `replace`."""
        with self.store.session() as s:
            for event in events:
                existing = s.get(CalendarEventRow, event.name)
                if existing is not None:
                    if not replace:
                        raise CalendarError(f"event {event.name!r} already exists (remove it first, or --replace)")
                    s.delete(existing)
                    s.flush()
                row = _to_row(event)
                s.add(row)
                self.store.journal("calendar.added", f"calendar event {event.name} "
                                   f"{'replaced' if existing is not None else 'added'}",
                                   detail={"event": event.name, "start": row.start_local, "timezone": event.timezone,
                                           "demand": dict(event.demand), "rrule": event.rrule, "cron": event.cron,
                                           "freeze": event.freeze}, session=s)
        return [self.get(e.name) for e in events]

    def get(self, name: str) -> CalendarEvent:
        with self.store.session() as s:
            row = s.get(CalendarEventRow, name)
            if row is None:
                raise CalendarError(f"no calendar event {name!r} (see `burst calendar list`)")
            try:
                return _read(row)
            except CalendarError as exc:
                raise CalendarError(UnreadableEvent(name, str(exc)).message) from None

    def list_checked(self) -> tuple[list[CalendarEvent], list[UnreadableEvent]]:
        """Every readable event, and every row that is not one."""
        events: list[CalendarEvent] = []
        unreadable: list[UnreadableEvent] = []
        with self.store.session() as s:
            for row in s.exec(select(CalendarEventRow).order_by(CalendarEventRow.name)):
                try:
                    events.append(_read(row))
                except CalendarError as exc:
                    unreadable.append(UnreadableEvent(row.name, str(exc)))
        return events, unreadable

    def list(self) -> list[CalendarEvent]:
        """Every readable event (`list_checked` also says which rows are not)."""
        return self.list_checked()[0]

    def remove(self, name: str) -> str:
        """Forget the event (an unreadable row too: it is not parsed). Bursts it already
        started are not touched: they end at their occurrence's end as recorded, or by
        `burst down`."""
        with self.store.session() as s:
            row = s.get(CalendarEventRow, name)
            if row is None:
                raise CalendarError(f"no calendar event {name!r} (see `burst calendar list`)")
            s.delete(row)
            self.store.journal("calendar.removed", f"calendar event {name} removed", detail={"event": name},
                               session=s)
            return name

    # -- actions -----------------------------------------------------------------

    def claim(self, event: str, occurrence: str, action: str, *, due_at: datetime, status: str,
              outcome: str, daemon: str, message: str, ends_at: datetime | None = None,
              burst_id: str | None = None, error: str | None = None) -> CalendarAction | None:
        """Insert the action under its unique key, journaled in the same transaction.
        None when it was already claimed (by this daemon earlier, or by another)."""
        now = utcnow()
        row = CalendarAction(event=event, occurrence=occurrence, action=action, status=status, outcome=outcome,
                             due_at=due_at, ends_at=ends_at, claimed_at=now, daemon=daemon, burst_id=burst_id, error=error,
                             done_at=now if status != "started" else None)
        try:
            with self.store.session() as s:
                s.add(row)
                s.flush()
                self.store.journal(f"calendar.{action}", message, burst_id=burst_id,
                                   detail={"event": event, "occurrence": occurrence, "action": action,
                                           "status": status, "outcome": outcome, "due_at": due_at.isoformat(),
                                           "daemon": daemon}, session=s)
        except IntegrityError:
            return None
        return row

    def finish(self, action: CalendarAction, *, status: str, message: str, outcome: str | None = None,
               burst_id: str | None = None, error: str | None = None) -> CalendarAction:
        with self.store.session() as s:
            row = s.get(CalendarAction, action.id)
            row.status = status
            row.done_at = utcnow()
            row.attempts += 1
            if outcome is not None:
                row.outcome = outcome
            if burst_id is not None:
                row.burst_id = burst_id
            row.error = error
            s.add(row)
            self.store.journal(f"calendar.{row.action}.{status}", message, burst_id=row.burst_id,
                               detail={"event": row.event, "occurrence": row.occurrence, "action": row.action,
                                       "outcome": row.outcome, **({"error": error} if error else {})}, session=s)
            return row

    def retry_later(self, action: CalendarAction, error: str) -> CalendarAction:
        """An unexpected failure: count the attempt, keep it `started` for the next pass."""
        with self.store.session() as s:
            row = s.get(CalendarAction, action.id)
            row.attempts += 1
            row.error = error
            s.add(row)
            return row

    def action(self, event: str, occurrence: str, action: str) -> CalendarAction | None:
        with self.store.session() as s:
            return s.exec(select(CalendarAction).where(CalendarAction.event == event,
                                                       CalendarAction.occurrence == occurrence,
                                                       CalendarAction.action == action)).first()

    def actions(self, event: str | None = None, *, statuses: Sequence[str] | None = None) -> list[CalendarAction]:
        with self.store.session() as s:
            q = select(CalendarAction).order_by(CalendarAction.id)
            if event is not None:
                q = q.where(CalendarAction.event == event)
            if statuses is not None:
                q = q.where(CalendarAction.status.in_(tuple(statuses)))
            return list(s.exec(q))

    # -- notifications -----------------------------------------------------------

    def claim_notification(self, key: str, kind: str, burst_id: str | None) -> bool:
        try:
            with self.store.session() as s:
                s.add(NotificationSent(key=key, kind=kind, burst_id=burst_id))
                s.flush()
        except IntegrityError:
            return False
        return True

    def notification_done(self, key: str, status: str, error: str | None = None) -> None:
        with self.store.session() as s:
            row = s.get(NotificationSent, key)
            if row is not None:
                row.status = status
                row.error = error
                s.add(row)

    def notified(self, key: str) -> bool:
        with self.store.session() as s:
            return s.get(NotificationSent, key) is not None
