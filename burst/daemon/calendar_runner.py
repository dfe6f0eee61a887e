"""Carries out the calendar's decisions: claims each action under its unique key,
then calls the service, then records how it went.

Claim first, act second: a daemon that dies between the two leaves the action
`started`, and the next leader resumes it (`service.up` resumes the occurrence's live
burst instead of launching again; `service.down` of a draining burst is a no-op).
An action already `done` is never performed again, whoever leads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from burst.calendar.leadtime import auto_lead_seconds
from burst.calendar.model import CalendarEvent
from burst.calendar.repo import CalendarRepo
from burst.calendar.schedule import Decision, decide
from burst.config import Config, DaemonConfig
from burst.errors import BurstError

log = logging.getLogger(__name__)

#: an action that keeps failing with an unexpected error is given up after this many tries
MAX_ATTEMPTS = 5
#: how long an automatic lead time is reused before it is computed again
LEAD_REFRESH_SECONDS = 60.0


def ready_history(store) -> Callable[[str], list[float]]:
    """Per tier launch-to-ready seconds of past bursts (burst.timings)."""
    from burst.timings import ready_seconds_history

    return lambda tier: ready_seconds_history(store, tier)


class CalendarRunner:
    def __init__(self, config: Config, settings: DaemonConfig, repo: CalendarRepo, service: Any,
                 *, identity: str, notify: Callable[[str, str, dict], None] | None = None):
        self.config = config
        self.settings = settings
        self.repo = repo
        self.service = service
        self.identity = identity
        self.notify = notify or (lambda key, kind, payload: None)
        self._leads: dict[str, tuple[float, float]] = {}  # event -> (computed at monotonic, seconds)
        self._histories: dict[str, list[float]] = {}
        #: unreadable calendar rows already journaled by this daemon: (event, why)
        self._reported: set[tuple[str, str]] = set()

    # -- lead time ---------------------------------------------------------------

    def lead_seconds(self, event: CalendarEvent) -> float:
        if event.lead_seconds is not None:
            return event.lead_seconds
        cached = self._leads.get(event.name)
        if cached and time.monotonic() - cached[0] < LEAD_REFRESH_SECONDS:
            return cached[1]
        seconds = self.compute_lead_seconds(event)
        self._leads[event.name] = (time.monotonic(), seconds)
        return seconds

    def compute_lead_seconds(self, event: CalendarEvent, now: datetime | None = None) -> float:
        """p95 time-to-ready of the tiers the plan would use (all tiers if it cannot
        plan now), plus the margin."""
        tiers = [t.name for t in self.config.tiers]
        try:
            if self.service is None:
                raise LookupError("no service to plan with")
            now = now or self.service.clock.now()
            plan = self.service.plan(event.name, dict(event.demand), now + timedelta(days=1))
            used = [g.tier for g in plan.groups]
            if used:
                tiers = sorted(set(used))
        except Exception as exc:  # planning is only a hint here; the configured tiers are a safe fallback
            log.info("lead time of %s: planning failed (%s); using every tier", event.name, exc)
        history = ready_history(self.repo.store)
        return auto_lead_seconds(tiers, {t.name: t.ready_seconds for t in self.config.tiers}, history,
                                 self.settings.lead_margin_seconds)

    # -- one pass ----------------------------------------------------------------

    def run_once(self, now: datetime) -> list[Decision]:
        events, unreadable = self.repo.list_checked()
        for bad in unreadable:
            self._poisoned(bad.name, bad.why, bad.message)
        actions = self.repo.actions(statuses=("started", "done", "failed", "missed"))
        decisions = decide(events, actions, now, lead_seconds=self.lead_seconds,
                           late_after=timedelta(seconds=self.settings.late_after_seconds),
                           lookback=timedelta(hours=self.settings.missed_lookback_hours),
                           on_error=lambda event, exc: self._poisoned(
                               event.name, f"{type(exc).__name__}: {exc}",
                               f"calendar event {event.name!r}: its occurrences cannot be computed "
                               f"({type(exc).__name__}: {exc}); it is skipped: remove it with "
                               f"`burst calendar remove {event.name}` and add it again"))
        for d in decisions:
            try:
                self._carry_out(d, now)
            except Exception:  # one occurrence's trouble must not stop the others
                log.exception("calendar action %s of %s failed", d.action, d.occurrence_key)
        return decisions

    def _poisoned(self, name: str, why: str, message: str) -> None:
        """Journal a calendar row the daemon skips, once per row and reason; the other
        events go on."""
        if (name, why) in self._reported:
            return
        self._reported.add((name, why))
        log.error("%s", message)
        self.repo.store.journal("calendar.unreadable", message, detail={"event": name, "error": why})

    def _carry_out(self, d: Decision, now: datetime) -> None:
        if d.action == "missed":
            self.repo.claim(d.event, d.occurrence_key, "up", due_at=d.due_at, ends_at=d.occurrence.end,
                            status="missed", outcome="missed", daemon=self.identity,
                            message=f"{d.occurrence_key} missed: it ended at {d.occurrence.end.isoformat()} "
                                    "while no daemon was leading")
            return
        if d.action == "frozen":
            self.repo.claim(d.event, d.occurrence_key, "frozen", due_at=d.due_at, status="done", outcome="frozen",
                            daemon=self.identity,
                            message=f"{d.occurrence_key} ended inside a freeze window: scale-in waits for its end")
            return
        if d.action == "up":
            self._up(d, now)
        elif d.action == "down":
            self._down(d)

    def _up(self, d: Decision, now: datetime) -> None:
        occ = d.occurrence
        if d.resume:
            action = self.repo.action(d.event, d.occurrence_key, "up")
            if action is None or action.status != "started" or action.attempts >= MAX_ATTEMPTS:
                if action is not None and action.status == "started":
                    self.repo.finish(action, status="failed", message=f"{d.occurrence_key}: gave up after "
                                     f"{action.attempts} attempts", error=action.error)
                return
        else:
            action = self.repo.claim(d.event, d.occurrence_key, "up", due_at=d.due_at, ends_at=occ.end,
                                     status="started", outcome=d.outcome, daemon=self.identity,
                                     message=f"{d.occurrence_key}: scale-out {d.outcome.replace('_', ' ')}, "
                                             f"due {d.due_at.isoformat(timespec='seconds')}")
            if action is None:
                return  # another daemon (or this one, earlier) took it
            self.notify(f"event.starting:{d.occurrence_key}", "event.starting", {
                "event": d.event, "occurrence": d.occurrence_key, "starts_at": occ.start.isoformat(),
                "ends_at": occ.end.isoformat(), "demand": dict(occ.demand), "outcome": d.outcome,
                "message": f"{d.occurrence_key}: scaling out for {dict(occ.demand)} "
                           f"({d.outcome.replace('_', ' ')})"})
        # the occurrence's start, unless not even the fastest tier can be ready by then (a
        # late start, or a lead time shorter than that): then the SLA from now, as a
        # `burst up` typed now would get; capacity late beats no capacity
        fastest = min(t.ready_seconds for t in self.config.tiers)
        deadline = occ.start
        if (occ.start - now).total_seconds() < fastest:
            deadline = now + timedelta(seconds=self.config.cluster.sla_seconds)
        try:
            burst = self.service.up(d.occurrence_key, dict(occ.demand), deadline)
        except BurstError as exc:
            self.repo.finish(action, status="failed", message=f"{d.occurrence_key}: scale-out refused: {exc}",
                             error=str(exc))
            self.notify(f"burst.failed:{d.occurrence_key}", "burst.failed", {
                "event": d.event, "occurrence": d.occurrence_key, "error": str(exc),
                "message": f"{d.occurrence_key}: scale-out refused: {exc}"})
            return
        except Exception as exc:  # unexpected (store down...): left started, tried again next pass
            self.repo.retry_later(action, f"{type(exc).__name__}: {exc}")
            raise
        self.repo.finish(action, status="done", burst_id=burst.id,
                         message=f"{d.occurrence_key}: burst {burst.id} started for {dict(occ.demand)}, "
                                 f"deadline {deadline.isoformat(timespec='seconds')}")

    def _down(self, d: Decision) -> None:
        if d.resume:
            action = self.repo.action(d.event, d.occurrence_key, "down")
            if action is None or action.status != "started" or action.attempts >= MAX_ATTEMPTS:
                if action is not None and action.status == "started":
                    self.repo.finish(action, status="failed", message=f"{d.occurrence_key}: gave up after "
                                     f"{action.attempts} attempts", error=action.error)
                return
        else:
            action = self.repo.claim(d.event, d.occurrence_key, "down", due_at=d.due_at, status="started",
                                     outcome=d.outcome, daemon=self.identity,
                                     message=f"{d.occurrence_key}: scale-in {d.outcome.replace('_', ' ')}")
            if action is None:
                return
        try:
            burst = self.service.down(d.occurrence_key)
        except BurstError as exc:
            # nothing live: it was scaled in by hand, or its scale-out was refused
            self.repo.finish(action, status="done", outcome="nothing_live",
                             message=f"{d.occurrence_key}: nothing to scale in ({exc})")
            return
        except Exception as exc:
            self.repo.retry_later(action, f"{type(exc).__name__}: {exc}")
            raise
        self.repo.finish(action, status="done", burst_id=burst.id,
                         message=f"{d.occurrence_key}: burst {burst.id} scaling in")
