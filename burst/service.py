"""What the CLI and the daemon ask of burst: plan, up, down, drive, recall.

`BurstService` wires the config, the store, the providers, the initialiser and the
cluster together; the logic lives in `burst.planner` and `burst.reconciler`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor
from datetime import datetime

from burst.clock import Clock, SystemClock
from burst.config import Config
from burst.errors import BurstError, InputError
from burst.lifecycle import FINAL, BurstStatus
from burst.plan import demand_to_json
from burst.planner import Offering, Plan, ServiceShape, SizeLimits, TierOffer, plan, size_breaches
from burst.provider import ProviderError
from burst.provider.providers import ProviderSet
from burst.provision import Cluster, Initialiser
from burst.reconciler import Reconciler
from burst.reconciler.driver import Driver, Progress
from burst.reconciler.slots import newest_per_slot, planned_hosts
from burst.store import Burst, HostRow, LiveBurstExists, Store


#: seconds each tier's reachability check may take at the start of `burst up` / `burst down`
CHECK_SECONDS = 5.0


def make_initialiser(config: Config) -> Initialiser:
    if config.initialise.kind == "ansible":
        from burst.provision.ansible import AnsibleInitialiser

        return AnsibleInitialiser(config.initialise.options)
    from burst.provision.recording import RecordingInitialiser

    return RecordingInitialiser(config.initialise.options)


def make_cluster(config: Config) -> Cluster:
    if config.swarm.kind == "swarm":
        from burst.provision.swarm import SwarmCluster

        return SwarmCluster.from_options(config.swarm.options)
    from burst.provision.recording import RecordingCluster

    return RecordingCluster(config.swarm.options)


class BurstService:
    def __init__(self, config: Config, store: Store | None = None, clock: Clock | None = None,
                 initialiser: Initialiser | None = None, cluster: Cluster | None = None,
                 providers: ProviderSet | None = None, executor: Executor | None = None):
        self.config = config
        self.store = store or Store(config.store_url)
        self.clock = clock or SystemClock()
        self.providers = providers or ProviderSet(config)
        self.initialiser = initialiser or make_initialiser(config)
        self.cluster = cluster or make_cluster(config)
        self.reconciler = Reconciler(config, self.store, self.providers, self.initialiser, self.cluster, self.clock,
                                     executor)
        self.driver = Driver(self.reconciler, self.store, self.clock)

    def close(self) -> None:
        self.reconciler.close()
        self.providers.close()
        self.store.close()

    # -- intent ----------------------------------------------------------------

    def check_demand(self, demand: Mapping[str, int]) -> dict[str, int]:
        if not demand:
            raise InputError("no replicas asked for: give --replicas SERVICE=N")
        for name, n in demand.items():
            self.config.service(name)
            if n < 0:
                raise InputError(f"--replicas {name}={n}: a replica count cannot be negative")
        wanted = {k: int(v) for k, v in demand.items() if v > 0}
        if not wanted:
            raise InputError("every replica count is 0: nothing to add")
        return wanted

    def offerings(self) -> list[TierOffer]:
        """The tiers as the planner sees them: a provider that knows its stock (the
        pool) tells how many of each type it has."""
        tiers = []
        for tier in self.config.tiers:
            stock = {t.name: t.available for t in self.providers.get(tier.name).instance_types()}
            types = [Offering(tier=tier.name, provider=tier.provider, instance_type=t.name, cpu=t.cpu,
                              memory_gib=t.memory_gib, price_per_hour=t.price_per_hour, zones=tuple(t.zones),
                              available=stock.get(t.name)) for t in self.reconciler.offerings.tier_types(tier.name)]
            tiers.append(TierOffer(name=tier.name, provider=tier.provider, ready_seconds=tier.ready_seconds,
                                   offerings=tuple(types), max_hosts=tier.max_hosts,
                                   balance_zones=tier.balance_zones))
        return tiers

    def plan(self, event: str, demand: Mapping[str, int], deadline: datetime) -> Plan:
        demand = self.check_demand(demand)
        seconds = (deadline - self.clock.now()).total_seconds()
        if seconds <= 0:
            raise InputError(f"deadline {deadline.isoformat(timespec='seconds')} is in the past")
        shapes = [ServiceShape(s.name, s.cpu, s.memory_gib, s.max_per_host) for s in self.config.services]
        # only services that may grow in place can use the room nodes already have
        in_place = {s.name for s in self.config.services if s.grow_in_place}
        free = self.cluster.free_capacity() if in_place else []
        return plan(demand, shapes, self.offerings(), seconds_to_deadline=seconds, free=free,
                    absorbable=in_place)

    def up(self, event: str, demand: Mapping[str, int], deadline: datetime, *, burst_id: str | None = None,
           oversize_ok: bool = False) -> Burst:
        """Start the event's burst, or resume the live one: never launches twice. Of two
        `burst up` racing on one event, one creates the burst and the other resumes it.
        A new burst above the config's [limits] is refused unless `oversize_ok` (the
        operator confirmed on a terminal); the daemon never passes it. `burst_id` names a
        new burst (the simulator's runs repeat); else it is made up."""
        asked = self.check_demand(demand)
        live = self.store.live_burst(event)
        if live is not None:
            return self._resume(live, asked)
        the_plan = self.plan(event, asked, deadline)
        if the_plan.unplaced:
            raise BurstError(f"no tier can take {the_plan.unplaced} before the deadline "
                             f"(skipped: {dict(the_plan.skipped) or 'none'})")
        breaches = size_breaches(the_plan, SizeLimits.of(self.config.limits))
        if breaches and not oversize_ok:
            raise BurstError(f"the plan for {event!r} is above the size limits ({'; '.join(breaches)}): raise "
                             "[limits] in the config, or confirm with `burst up --yes` on a terminal")
        self.check_tiers({g.tier for g in the_plan.groups}, "nothing was launched")
        burst_id = burst_id or f"{re.sub(r'[^a-z0-9]+', '-', event.lower()).strip('-')[:40]}-{uuid.uuid4().hex[:6]}"
        burst = Burst(id=burst_id, event=event, cluster=self.config.cluster.name, demand_json=demand_to_json(asked),
                      plan_json=the_plan.to_json(), deadline_at=deadline, created_at=self.clock.now())
        try:
            return self.store.create_burst(burst, planned_hosts(burst_id, the_plan))
        except LiveBurstExists as exc:  # another `burst up` of the event won the race
            if exc.burst is None:
                raise
            return self._resume(exc.burst, asked)

    def check_tiers(self, tiers: set[str], unchanged: str) -> None:
        """Every tier's provider reaches its API with its credentials, each within
        `CHECK_SECONDS`, in the config's order; else one error naming the tier and why."""
        for tier in [t.name for t in self.config.tiers if t.name in tiers]:
            try:
                self.providers.get(tier).check(time.monotonic() + CHECK_SECONDS)
            except ProviderError as exc:
                raise BurstError(f"tier {tier}: {type(exc).__name__}: {exc}; {unchanged}") from None

    def _resume(self, live: Burst, asked: Mapping[str, int]) -> Burst:
        if live.status is BurstStatus.DRAINING:
            raise BurstError(f"event {live.event!r} is being scaled in (burst {live.id}); wait for `burst down`")
        if dict(asked) != live.demand:
            raise BurstError(f"event {live.event!r} already has burst {live.id} for {_replicas(live.demand)}; "
                             f"`burst down {live.event}` before asking for {_replicas(asked)}")
        self.check_tiers({h.tier for h in self.live_hosts(live.id)}, "the burst is as it was")
        self.store.journal("burst.resumed", f"burst {live.id} resumed", burst_id=live.id)
        return live

    def down(self, event: str) -> Burst:
        """Ask for the event's burst to be scaled in. Idempotent: a burst already down
        is returned as it is (the caller says so), one draining is left to go on."""
        live = self.store.live_burst(event)
        if live is None:
            latest = self.store.latest_burst(event)
            if latest is None:
                raise BurstError(f"event {event!r} has no burst")
            return latest
        self.check_tiers({h.tier for h in self.live_hosts(live.id)}, "nothing was changed: `burst down` again "
                         "once it answers")
        if live.status is BurstStatus.DRAINING:
            return live
        return self.store.update_burst(live.id, f"burst down requested for {event}", expect=BurstStatus.ACTIVE,
                                       status=BurstStatus.DRAINING, down_requested_at=self.clock.now())

    def drive(self, burst: Burst, *, seconds: float) -> Iterator[Progress]:
        """Run passes for this burst until it is done (up: ready or given up; down: every
        host returned) or `seconds` pass; progress after every pass."""
        direction = "up" if burst.status is BurstStatus.ACTIVE else "down"
        return self.driver.drive(burst.id, seconds=seconds, direction=direction)

    def reconcile_once(self) -> None:
        self.reconciler.pass_once()

    def retire_hosts(self, instance_ids: list[str], provider: str, reason: str) -> list[HostRow]:
        """Give these hosts back early (an owner recalls them): each live one gets a
        replacement on the next tier first, and is drained and returned once the
        replacement is ready. Returns the hosts retired."""
        wanted = set(instance_ids)
        retired = []
        for burst in self.store.bursts((BurstStatus.ACTIVE,)):
            rows = self.store.host_rows(burst.id)
            newest = newest_per_slot(rows)
            for h in rows:
                if (h.provider == provider and h.instance_id in wanted and newest[h.slot].id == h.id
                        and h.state not in FINAL):
                    self.reconciler.recall(burst, h, reason)
                    retired.append(h)
        return retired

    # -- reading -------------------------------------------------------------------

    def is_done(self, burst_id: str) -> bool:
        """Down: every host returned. Up: ready, or nothing left to try."""
        return self.driver.progress(burst_id).done

    def live_hosts(self, burst_id: str) -> list[HostRow]:
        return [h for h in self.store.host_rows(burst_id) if h.state not in FINAL]


def _replicas(demand: Mapping[str, int]) -> str:
    return ", ".join(f"{s}={n}" for s, n in sorted(demand.items()))
