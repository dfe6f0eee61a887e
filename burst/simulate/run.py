"""One simulated burst, up and down: the real service, planner, reconciler and store
on the simulated parts and virtual time; then the floor and the report.

The floor is what a perfect orchestrator would take on the same draws: every host
that ended up ready is launched on the tier it ended up on at the earliest moment
the buckets allow, seen running the instant it boots, initialised, joined and
pulled at once (pulls from the data centre still queue on the one line). It knows
the future (which tier will have stock), so burst can only meet it, never beat it.
"""

from __future__ import annotations

import math
import resource
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from burst.config import Config, InstanceTypeConfig
from burst.errors import InputError
from burst.lifecycle import HostState
from burst.reconciler.driver import Driver
from burst.reconciler.slots import newest_per_slot
from burst.service import BurstService
from burst.simulate.clock import CountingExecutor, VirtualClock
from burst.simulate.parts import SimCluster, SimInitialiser, SimProviders
from burst.simulate.profile import Profile
from burst.store import Store
from burst.timings import sla_report

#: virtual seconds between two passes at least (burst's own passes come as reports
#: arrive; coalescing them keeps a thousand-host simulation fast, at this much latency
#: per phase at most, which the ratio to the floor includes)
PASS_SPACING = 0.5
#: the components of a host's chain, in order
CHAIN = ("launch", "boot", "initialise", "join", "image pull")


@dataclass
class SimResult:
    hosts: int
    replicas: dict[str, int]
    tiers: dict[str, int]
    seconds: float | None  # burst up to the extra tasks running (virtual), None if never
    floor: float
    ratio: float | None
    sla_seconds: float
    sla_met: bool
    bottleneck: str
    critical_chain: dict[str, float]
    down_seconds: float | None
    hosts_failed: int
    #: hosts escalated to a later tier because they fell behind (`sla.at_risk`)
    escalated: int
    api_calls: dict[str, dict[str, int]]
    throttled: int
    phases: dict[str, dict]
    #: (seconds since up, hosts ready, hosts with their extra tasks running)
    timeline: list[tuple[float, int, int]] = field(default_factory=list)
    #: how long the simulation let the burst run (virtual seconds)
    limit_seconds: float = 0.0
    real_seconds: float = 0.0
    cpu_seconds: float = 0.0
    profile: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def sized_for(config: Config, demand: Mapping[str, int], hosts: int) -> Config:
    """The config with one instance type per tier sized so `hosts` hosts hold the demand."""
    per_host = {s: math.ceil(n / hosts) for s, n in demand.items()}
    cpu = sum(per_host[s] * config.service(s).cpu for s in per_host)
    mem = sum(per_host[s] * config.service(s).memory_gib for s in per_host)
    tiers = []
    for tier in config.tiers:
        if not tier.instance_types:
            raise InputError(f"--hosts: tier {tier.name} names no instance types to size")
        cheapest = min(t.price_per_hour / t.cpu for t in tier.instance_types)
        zones = list(dict.fromkeys(z for t in tier.instance_types for z in t.zones))
        itype = InstanceTypeConfig(name=f"sim.{cpu:g}c{mem:g}g", cpu=cpu, memory_gib=mem,
                                   price_per_hour=round(cheapest * cpu, 4), zones=zones)
        tiers.append(tier.model_copy(update={"instance_types": [itype]}))
    return config.model_copy(update={"tiers": tiers})


def simulate(config: Config, demand: Mapping[str, int], profile: Profile, *, hosts: int | None = None,
             deadline_seconds: float | None = None) -> SimResult:
    if hosts is not None:
        config = sized_for(config, demand, hosts)
    # steps wait on virtual time, not on each other: no tier limit on calls in flight
    config = config.model_copy(update={"tiers": [t.model_copy(update={"concurrency": 1000}) for t in config.tiers]})
    sla = config.cluster.sla_seconds
    real0, cpu0 = time.perf_counter(), _cpu()
    clock = VirtualClock(datetime(2027, 1, 1, tzinfo=UTC))
    providers = SimProviders(config, profile, clock)
    initialiser, cluster = SimInitialiser(clock, profile), SimCluster(clock, profile)
    with tempfile.TemporaryDirectory(prefix="burst-simulate-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'simulate.db'}", now=clock.now)
        executor = CountingExecutor(clock)
        svc = BurstService(config, store=store, clock=clock, initialiser=initialiser, cluster=cluster,
                           providers=providers, executor=executor)
        # passes at least PASS_SPACING apart: each applies every report that came meanwhile
        svc.driver = Driver(svc.reconciler, store, clock, tick=1.0, spacing=PASS_SPACING)
        try:
            with clock.busy():
                burst = svc.up("simulate", demand, clock.now() + timedelta(seconds=deadline_seconds or sla),
                               burst_id="simulate",  # the same ids every run: the same draws
                               oversize_ok=True)  # a simulation launches nothing: no size guard
                # long enough to see how late a burst that misses its SLA would be
                limit = max(4 * sla, (deadline_seconds or sla) + 3 * config.cluster.phase_timeout_seconds)
                for _ in svc.drive(burst, seconds=limit):
                    pass
                up_done = store.get_burst(burst.id)
                down_start = clock.monotonic()
                for last in svc.drive(svc.down("simulate"), seconds=3600):
                    pass
                down_seconds = clock.monotonic() - down_start if last.done else None
                rows = store.host_rows(burst.id)
                report = sla_report(store, up_done, sla)
                timeline = _timeline(store, up_done, cluster)
                escalated = sum(1 for e in store.journal_entries(burst_id=burst.id) if e.kind == "sla.at_risk")
        finally:
            svc.reconciler.ctx.pool.shutdown(wait=True, cancel_futures=True)
            store.close()
    seconds = (up_done.ready_at - up_done.created_at).total_seconds() if up_done.ready_at else None
    floor, chain = _floor(rows, providers, initialiser, cluster, profile, config)
    tiers: dict[str, int] = {}
    for h in newest_per_slot(rows).values():
        tiers[h.tier] = tiers.get(h.tier, 0) + 1
    return SimResult(
        hosts=len(newest_per_slot(rows)), replicas=dict(demand), tiers=tiers, seconds=seconds, floor=floor,
        ratio=round(seconds / floor, 4) if seconds and floor else None, sla_seconds=sla,
        sla_met=seconds is not None and seconds <= sla, bottleneck=max(chain, key=chain.get) if chain else "",
        critical_chain=chain, down_seconds=down_seconds, hosts_failed=sum(1 for h in rows if h.error),
        escalated=escalated,
        api_calls={t: dict(r.calls) for t, r in providers.records.items()},
        throttled=sum(r.throttled for r in providers.records.values()), phases=report["phases"], timeline=timeline,
        limit_seconds=limit, real_seconds=round(time.perf_counter() - real0, 2), cpu_seconds=round(_cpu() - cpu0, 2),
        profile=profile.model_dump(mode="json"))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _earliest_calls(calls, profile) -> dict[int, float]:
    """Call index -> the earliest moment a perfect orchestrator could ask it, given the
    request bucket (calls) and the resource bucket (instances)."""
    out, n_calls, n_instances = {}, 0, 0
    for i, call in enumerate(calls):
        n_calls += 1
        n_instances += len(call.instances)
        out[i] = max(0.0, (n_calls - profile.launch_bucket.capacity) / profile.launch_bucket.per_second,
                     (n_instances - profile.instance_bucket.capacity) / profile.instance_bucket.per_second)
    return out


def _floor(rows, providers: SimProviders, initialiser: SimInitialiser, cluster: SimCluster, profile: Profile,
           config: Config) -> tuple[float, dict[str, float]]:
    ready = [h for h in newest_per_slot(rows).values() if h.instance_id and not h.given_up]
    launched_by: dict[str, tuple[float, float]] = {}  # instance -> (earliest ask, latency)
    for tier in config.tiers:
        record = providers.records[tier.name]
        mine = {h.instance_id for h in ready if h.tier == tier.name}
        calls = sorted((c for c in record.launches if mine & set(c.instances)), key=lambda c: c.asked_at)
        for i, at in _earliest_calls(calls, profile.for_tier(tier.name)).items():
            for iid in calls[i].instances:
                launched_by[iid] = (at, calls[i].latency)
    chains = []
    for h in ready:
        at, latency = launched_by.get(h.instance_id, (0.0, 0.0))
        boot = providers.records[h.tier].boot.get(h.instance_id, 0.0)
        init = initialiser.took.get(("initialise", h.id), 0.0)
        join = cluster.took.get(("join", h.id), 0.0)
        chains.append((at + latency + boot + init + join, h.id, {"launch": at + latency, "boot": boot,
                                                                 "initialise": init, "join": join}))
    if not chains:
        return 0.0, {}
    on_line, at_host = cluster.pull_seconds()
    line_free, worst = 0.0, (0.0, {})
    for joined, _, parts in sorted(chains):
        if profile.image.registry == "datacentre":
            begin = max(joined, line_free)
            line_free = begin + on_line
            end = max(line_free, joined + at_host)
        else:
            end = joined + at_host
        if end >= worst[0]:
            worst = (end, {**parts, "image pull": end - joined})
    return round(worst[0], 3), {k: round(v, 3) for k, v in worst[1].items()}


def _timeline(store: Store, burst, cluster: SimCluster) -> list[tuple[float, int, int]]:
    """Hosts ready (from the journal) and hosts whose extra tasks run (their image
    pulled: the swarm starts them as nodes join), each time either changes, until the
    burst was ready."""
    changes = [(round((e.at - burst.created_at).total_seconds(), 2), +1 if e.to_state == HostState.READY.value
                else -1, 0)
               for e in store.journal_entries(burst_id=burst.id) if e.kind == "host.transition"
               and HostState.READY.value in (e.to_state, e.from_state)]
    changes += [(round(end, 2), 0, 1) for _, _, end in cluster.pull_log]
    end = (burst.ready_at - burst.created_at).total_seconds() if burst.ready_at else None
    ready = running = 0
    out: list[tuple[float, int, int]] = []
    for t, d_ready, d_running in sorted(changes):
        if end is not None and t > end:
            break
        ready, running = ready + d_ready, running + d_running
        if out and out[-1][0] == t:
            out[-1] = (t, ready, running)
        else:
            out.append((t, ready, running))
    return out
