"""`/metrics` (Prometheus text format) and `/healthz`, served on the daemon's address.

Every figure is read from the store at scrape time, so a standby daemon serves the
same numbers as the leader. Phase durations and provider errors are folded in from
the journal incrementally (each scrape reads only the entries added since the last).
"""

from __future__ import annotations

import json
import logging
import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func
from sqlmodel import select

from burst.calendar.tables import CalendarAction
from burst.store import Store
from burst.store.models import Burst, Host, JournalEntry

log = logging.getLogger(__name__)

#: seconds; launch-to-ready is minutes, one phase seconds to minutes
BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 600.0, 1200.0)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip(BUCKETS, self.counts):
            running += n
            out.append((repr(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out


class JournalFollower:
    """Phase durations and provider errors from the journal, read incrementally.

    A phase is the time a host spent in a state: from the transition into it to the
    transition out of it, labelled by that state and the host's tier. `launch_to_ready`
    is the whole way from launching to ready."""

    def __init__(self, store: Store):
        self.store = store
        self.after_id = 0
        self.entered: dict[str, tuple[str, datetime]] = {}  # host -> (state, since)
        self.launched: dict[str, datetime] = {}
        self.tiers: dict[str, tuple[str, str]] = {}  # host -> (tier, provider)
        self.phases: dict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.lock = threading.Lock()

    def _tier(self, host_id: str) -> tuple[str, str]:
        if host_id not in self.tiers:
            with self.store.session() as s:
                host = s.get(Host, host_id)
            self.tiers[host_id] = (host.tier, host.provider) if host is not None else ("", "")
        return self.tiers[host_id]

    def poll(self) -> None:
        with self.lock:
            while True:
                with self.store.session() as s:
                    entries = list(s.exec(select(JournalEntry).where(JournalEntry.id > self.after_id)
                                          .order_by(JournalEntry.id).limit(5000)))
                if not entries:
                    return
                for e in entries:
                    self._fold(e)
                self.after_id = entries[-1].id

    def _fold(self, e: JournalEntry) -> None:
        if e.kind == "provider.error":
            detail = json.loads(e.detail_json or "{}")
            provider = detail.get("provider") or (self._tier(e.host_id)[1] if e.host_id else "")
            self.errors[(str(provider), str(detail.get("code", "unknown")))] += 1
            return
        if e.kind != "host.transition" or not e.host_id or not e.to_state:
            return
        tier = self._tier(e.host_id)[0]
        previous = self.entered.get(e.host_id)
        if previous is not None:
            self.phases[(previous[0], tier)].observe((e.at - previous[1]).total_seconds())
        self.entered[e.host_id] = (e.to_state, e.at)
        if e.to_state == "launching":
            self.launched[e.host_id] = e.at
        elif e.to_state == "ready" and e.host_id in self.launched:
            self.phases[("launch_to_ready", tier)].observe((e.at - self.launched.pop(e.host_id)).total_seconds())


class StoreCollector:
    """The metric families, computed from the store on each scrape."""

    def __init__(self, store: Store, *, clock_now: Callable[[], datetime], is_leader: Callable[[], bool]):
        self.store = store
        self.now = clock_now
        self.is_leader = is_leader
        self.journal = JournalFollower(store)

    def collect(self):
        hosts = GaugeMetricFamily("burst_hosts", "Hosts by lifecycle state, tier and provider",
                                  labels=["state", "tier", "provider"])
        bursts = GaugeMetricFamily("burst_bursts", "Bursts by status", labels=["status"])
        met = CounterMetricFamily("burst_sla_met", "Bursts ready by their deadline")
        missed = CounterMetricFamily("burst_sla_missed", "Bursts not ready by their deadline")
        actions = CounterMetricFamily("burst_calendar_actions", "Calendar actions by action, status and outcome",
                                      labels=["action", "status", "outcome"])
        now = self.now()
        met_n = missed_n = 0
        with self.store.session() as s:
            for state, tier, provider, n in s.exec(select(Host.state, Host.tier, Host.provider, func.count())
                                                   .group_by(Host.state, Host.tier, Host.provider)):
                hosts.add_metric([state, tier, provider], n)
            for status, n in s.exec(select(Burst.status, func.count()).group_by(Burst.status)):
                bursts.add_metric([status], n)
            for ready_at, deadline in s.exec(select(Burst.ready_at, Burst.deadline_at)):
                if ready_at is not None and ready_at <= deadline:
                    met_n += 1
                elif ready_at is not None or deadline < now:
                    missed_n += 1
            for action, status, outcome, n in s.exec(
                    select(CalendarAction.action, CalendarAction.status, CalendarAction.outcome, func.count())
                    .group_by(CalendarAction.action, CalendarAction.status, CalendarAction.outcome)):
                actions.add_metric([action, status, outcome], n)
        met.add_metric([], met_n)
        missed.add_metric([], missed_n)

        self.journal.poll()
        phases = HistogramMetricFamily("burst_phase_seconds", "Seconds a host spent in each lifecycle phase",
                                       labels=["phase", "tier"])
        errors = CounterMetricFamily("burst_provider_errors", "Provider errors by provider and code",
                                     labels=["provider", "code"])
        with self.journal.lock:
            for (phase, tier), h in sorted(self.journal.phases.items()):
                phases.add_metric([phase, tier], h.buckets(), h.total)
            for (provider, code), n in sorted(self.journal.errors.items()):
                errors.add_metric([provider, code], n)
        leader = GaugeMetricFamily("burst_daemon_leader", "1 when this daemon holds the leader lock")
        leader.add_metric([], 1 if self.is_leader() else 0)
        yield from (hosts, bursts, met, missed, actions, phases, errors, leader)


class HealthServer:
    """/metrics and /healthz on `address:port` (port 0: an ephemeral port, see `.port`)."""

    def __init__(self, address: str, port: int, registry: CollectorRegistry, health: Callable[[], tuple[bool, dict]]):
        registry_ = registry
        health_ = health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                try:
                    if self.path.split("?")[0] == "/metrics":
                        body, status, ctype = generate_latest(registry_), 200, CONTENT_TYPE_LATEST
                    elif self.path.split("?")[0] == "/healthz":
                        ok, detail = health_()
                        body, status, ctype = json.dumps(detail).encode(), 200 if ok else 503, "application/json"
                    else:
                        body, status, ctype = b"not found\n", 404, "text/plain"
                except Exception as exc:  # a store hiccup: say so, keep serving
                    log.warning("metrics: %s", exc)
                    body, status, ctype = f"error: {type(exc).__name__}\n".encode(), 500, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # scrapes every few seconds would flood the log
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="burst-metrics", daemon=True)

    def start(self) -> "HealthServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def make_registry(collector: StoreCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
