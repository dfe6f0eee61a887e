"""What the daemon should do now, as a pure function of the calendar, the clock and
the actions already recorded. No I/O: the daemon claims and performs what this
returns, and the unit tests check the rules directly.

The rules, per occurrence of an event that is not a freeze window:
- `up` from `start - lead`: "on_time" within `late_after` of that, "late" after it,
  as long as the occurrence still runs;
- `missed` when the occurrence ended and no `up` was ever recorded (only for
  occurrences that ended after the event was entered, and within the look-back);
- `down` at its end, for every occurrence with an `up` (even if the event was
  removed since), unless a freeze window runs: then `frozen` is recorded once and
  `down` waits for the freeze to end ("after_freeze");
- an action recorded as `started` but never finished (its daemon died) is resumed:
  the service calls are idempotent per occurrence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from burst.calendar.model import CalendarEvent, Occurrence
from burst.calendar.recurrence import occurrences


class ActionRecord(Protocol):
    event: str
    occurrence: str
    action: str
    status: str
    ends_at: datetime | None


@dataclass(frozen=True)
class Decision:
    action: str  # up | down | missed | frozen
    event: str
    occurrence_key: str
    due_at: datetime
    outcome: str  # on_time | late | missed | frozen | after_freeze
    occurrence: Occurrence | None = None  # known for up and missed
    resume: bool = False


def _decide_event(event: CalendarEvent, taken: dict, now: datetime, lead_seconds: Callable[[CalendarEvent], float],
                  late_after: timedelta, lookback: timedelta) -> list[Decision]:
    out: list[Decision] = []
    lead = timedelta(seconds=lead_seconds(event))
    since = now - lookback
    if event.created_at is not None:
        since = max(since, event.created_at)
    for occ in occurrences(event, after=since, until=now + lead + timedelta(microseconds=1)):
        launch_at = occ.start - lead
        up = taken.get((occ.key, "up"))
        if up is None:
            if now < launch_at:
                continue
            if now < occ.end:
                outcome = "late" if now > launch_at + late_after else "on_time"
                out.append(Decision("up", event.name, occ.key, launch_at, outcome, occ))
            else:
                out.append(Decision("missed", event.name, occ.key, launch_at, "missed", occ))
        elif up.status == "started" and now < occ.end:
            out.append(Decision("up", event.name, occ.key, launch_at, "resumed", occ, resume=True))
    return out


def live_freeze(events: Iterable[CalendarEvent], now: datetime) -> Occurrence | None:
    for event in events:
        if event.freeze:
            for occ in occurrences(event, after=now, until=now + timedelta(microseconds=1), limit=1):
                if occ.live_at(now):
                    return occ
    return None


def decide(events: Sequence[CalendarEvent], actions: Sequence[ActionRecord], now: datetime, *,
           lead_seconds: Callable[[CalendarEvent], float], late_after: timedelta,
           lookback: timedelta, on_error: Callable[[CalendarEvent, Exception], None] | None = None
           ) -> list[Decision]:
    """`on_error(event, exc)`, when given, is told of an event whose occurrences cannot
    be computed (a poisoned row), and the other events are decided as usual; without
    it the error propagates."""
    taken = {(a.occurrence, a.action): a for a in actions}
    out: list[Decision] = []
    for event in events:
        if event.freeze:
            continue
        try:
            out.extend(_decide_event(event, taken, now, lead_seconds, late_after, lookback))
        except Exception as exc:  # noqa: BLE001  one bad event must not hide the others' decisions
            if on_error is None:
                raise
            on_error(event, exc)

    freeze = None
    freeze_checked = False
    for a in actions:
        if a.action != "up" or a.status == "missed" or a.ends_at is None or now < a.ends_at:
            continue
        down = taken.get((a.occurrence, "down"))
        if down is not None:
            if down.status == "started":
                out.append(Decision("down", a.event, a.occurrence, a.ends_at, "resumed", resume=True))
            continue
        if not freeze_checked:
            freeze, freeze_checked = live_freeze(events, now), True
        if freeze is not None:
            if (a.occurrence, "frozen") not in taken:
                out.append(Decision("frozen", a.event, a.occurrence, a.ends_at, "frozen"))
            continue
        if (a.occurrence, "frozen") in taken:
            outcome = "after_freeze"
        else:
            outcome = "late" if now > a.ends_at + late_after else "on_time"
        out.append(Decision("down", a.event, a.occurrence, a.ends_at, outcome))
    return out
