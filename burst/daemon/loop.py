"""`burst daemon`: the calendar, the reconcile loop, leak detection, notifications,
/metrics and /healthz, under a leader lock.

Every daemon serves /metrics and /healthz; only the leader acts. Each tick the
leader runs the calendar (claiming each action once), one reconcile pass, the
notification pass and, every `leak_check_seconds`, leak detection. A standby tries
the lock every tick, so it takes over within a tick or two of the leader's death.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import or_, select

from burst.lifecycle import LIVE, BurstStatus
from burst.calendar.repo import CalendarRepo
from burst.clock import Clock, SystemClock
from burst.config import Config
from burst.daemon.calendar_runner import CalendarRunner
from burst.config import DaemonConfig
from burst.daemon.leader import LeaderLock, leader_lock_for
from burst.daemon.metrics import HealthServer, StoreCollector, make_registry
from burst.daemon.webhook import Notifier
from burst.gc import find_leaks
from burst.store import Burst, JournalEntry, Store

log = logging.getLogger(__name__)

#: notifications only for what happened this recently (a daemon starting on an old
#: store does not announce the past)
NOTIFY_WINDOW = timedelta(minutes=10)


class Daemon:
    def __init__(self, config: Config, settings: DaemonConfig, *, store: Store | None = None,
                 service: Any = None, clock: Clock | None = None, lock: LeaderLock | None = None,
                 identity: str | None = None):
        self.config = config
        self.settings = settings
        self.clock = clock or SystemClock()
        self.store = store or Store(config.store_url)
        if service is None:
            from burst.service import BurstService

            service = BurstService(config, self.store, clock=self.clock)
        self.service = service
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}"
        self.lock = lock or leader_lock_for(config.store_url, config.cluster.name, settings.leader_lock_file)
        self.repo = CalendarRepo(self.store)
        self.notifier = Notifier(str(settings.webhook_url) if settings.webhook_url else None,
                                 timeout_seconds=settings.webhook_timeout_seconds,
                                 on_result=self.repo.notification_done)
        self.calendar = CalendarRunner(config, settings, self.repo, self.service, identity=self.identity,
                                       notify=self._notify)
        self.leader = False
        self.ticks = 0
        self.last_loop = time.monotonic()
        self._next_leak_check = 0.0
        self._last_leaks: int | None = None
        self.http: HealthServer | None = None
        self.collector = StoreCollector(self.store, clock_now=self.clock.now, is_leader=lambda: self.leader)

    # -- serving -------------------------------------------------------------------

    def health(self) -> tuple[bool, dict]:
        age = time.monotonic() - self.last_loop
        ok = age < max(10 * self.settings.tick_seconds, 15.0)
        return ok, {"ok": ok, "daemon": self.identity, "leader": self.leader, "ticks": self.ticks,
                    "last_loop_age_seconds": round(age, 3), "cluster": self.config.cluster.name}

    def start_http(self) -> int | None:
        if not self.settings.metrics_port:
            return None
        self.http = HealthServer(self.settings.metrics_address, self.settings.metrics_port,
                                 make_registry(self.collector), self.health).start()
        log.info("metrics and healthz on http://%s:%d", self.settings.metrics_address, self.http.port)
        return self.http.port

    # -- the loop ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.notifier.start()
        self.start_http()
        self.store.journal("daemon.started", f"daemon {self.identity} started", detail={"daemon": self.identity})
        try:
            while not stop.is_set():
                started = time.monotonic()
                self.step()
                self.last_loop = time.monotonic()
                stop.wait(max(0.0, self.settings.tick_seconds - (self.last_loop - started)))
        finally:
            self.close()

    def step(self) -> None:
        """Hold or try for the lead; as leader run one tick. Never raises."""
        try:
            if self.leader and not self.lock.still_held():
                self.leader = False
                log.error("daemon %s lost the leader lock: standing by", self.identity)
            if not self.leader and self.lock.try_acquire():
                self.leader = True
                log.info("daemon %s is the leader", self.identity)
                self.store.journal("daemon.leader", f"daemon {self.identity} became the leader",
                                   detail={"daemon": self.identity})
            if self.leader:
                self.tick()
        except Exception:  # the store may be briefly unreachable: the next tick tries again
            log.exception("daemon tick failed")

    def tick(self, now: datetime | None = None) -> None:
        now = now or self.clock.now()
        self.ticks += 1
        for name, part in (("calendar", lambda: self.calendar.run_once(now)),
                           ("reconcile", self.service.reconcile_once),
                           ("notifications", lambda: self.notify_pass(now)),
                           ("leaks", self.leak_pass)):
            try:
                part()
            except Exception:  # one part failing must not stop the others
                log.exception("daemon %s pass failed", name)

    # -- leak detection ------------------------------------------------------------

    def leak_pass(self) -> None:
        if time.monotonic() < self._next_leak_check:
            return
        self._next_leak_check = time.monotonic() + self.settings.leak_check_seconds
        leaks = find_leaks(self.config, self.store, self.service.providers)
        if leaks and len(leaks) != self._last_leaks:
            self.store.journal("daemon.leaks", f"{len(leaks)} leaked instance(s) found",
                               detail={"count": len(leaks), "leaks": [str(x) for x in leaks[:20]]})
        self._last_leaks = len(leaks)

    # -- notifications -------------------------------------------------------------

    def _notify(self, key: str, kind: str, payload: dict) -> None:
        if not self.notifier.enabled:
            return
        if self.repo.claim_notification(key, kind, payload.get("burst_id")):
            self.notifier.notify(key, kind, {"cluster": self.config.cluster.name,
                                             "at": self.clock.now().isoformat(), **payload})

    def _escalated(self, burst_id: str) -> bool:
        """Has the reconciler moved a host of this burst to a later tier (it fell behind)?"""
        with self.store.reading() as s:
            return s.exec(select(JournalEntry.id).where(JournalEntry.burst_id == burst_id,
                                                        JournalEntry.kind == "sla.at_risk").limit(1)).first() is not None

    def notify_pass(self, now: datetime) -> None:
        """SLA at risk, burst ready, complete (capacity returned) and failed: each once."""
        if not self.notifier.enabled:
            return
        recent = now - NOTIFY_WINDOW
        with self.store.session() as s:
            bursts = list(s.exec(select(Burst).where(or_(Burst.status.in_(LIVE),
                                                          Burst.created_at >= now - timedelta(days=1)))))
        for b in bursts:
            base = {"burst_id": b.id, "event": b.event, "status": b.status,
                    "deadline": b.deadline_at.isoformat(), "ready_at": b.ready_at.isoformat() if b.ready_at else None}
            risk = (b.deadline_at - b.created_at) * self.settings.sla_risk_fraction
            late = b.deadline_at - risk <= now <= b.deadline_at + risk
            if b.status is BurstStatus.ACTIVE and b.ready_at is None and (late or self._escalated(b.id)):
                counts = self.store.state_counts(b.id)
                self._notify(f"sla.at_risk:{b.id}", "sla.at_risk", {
                    **base, "hosts": counts,
                    "message": f"burst {b.id} ({b.event}) is not ready {max(0, int((b.deadline_at - now).total_seconds()))}"
                               f" s before its deadline: {counts}"})
            if b.ready_at is not None and b.ready_at >= recent:
                self._notify(f"burst.ready:{b.id}", "burst.ready", {
                    **base, "message": f"burst {b.id} ({b.event}) is ready"})
            if b.status is BurstStatus.DOWN and b.down_at is not None and b.down_at >= recent:
                self._notify(f"burst.complete:{b.id}", "burst.complete", {
                    **base, "message": f"burst {b.id} ({b.event}) is complete: its capacity is returned"})
            if b.halted:
                self._notify(f"burst.failed:{b.id}", "burst.failed", {
                    **base, "message": f"burst {b.id} ({b.event}) halted: {b.halted}"})

    def close(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        self.notifier.stop()
        if self.leader:
            self.leader = False
        self.lock.release()
        close = getattr(self.service, "close", None)
        if close is not None:
            close()
