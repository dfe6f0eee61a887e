"""What the CLI and the daemon ask of burst: plan, up, down, one reconcile pass.

`BurstService` wires the config, the store, the providers, the initialiser and the
cluster together; the logic lives in `burst.planner` and `burst.reconciler`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime

from burst.clock import Clock, SystemClock
from burst.config import Config
from burst.errors import BurstError, InputError
from burst.lifecycle import FINAL, HostState
from burst.planner import Offering, Plan, ServiceShape, TierOffer, plan
from burst.provider.providers import ProviderSet
from burst.provision import Cluster, Initialiser
from burst.reconciler import Reconciler
from burst.store import Burst, Host, Store, newest_per_slot


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
                 initialiser: Initialiser | None = None, cluster: Cluster | None = None):
        self.config = config
        self.store = store or Store(config.store_url)
        self.clock = clock or SystemClock()
        self.providers = ProviderSet(config)
        self.initialiser = initialiser or make_initialiser(config)
        self.cluster = cluster or make_cluster(config)
        self.reconciler = Reconciler(config, self.store, self.providers, self.initialiser, self.cluster, self.clock)

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
                              available=stock.get(t.name)) for t in self.reconciler.tier_types(tier.name)]
            tiers.append(TierOffer(name=tier.name, provider=tier.provider, ready_seconds=tier.ready_seconds,
                                   offerings=tuple(types), max_hosts=tier.max_hosts))
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

    def up(self, event: str, demand: Mapping[str, int], deadline: datetime) -> Burst:
        """Start the event's burst, or resume the live one: never launches twice."""
        live = self.store.live_burst(event)
        if live is not None:
            if live.status == "draining":
                raise BurstError(f"event {event!r} is being scaled in (burst {live.id}); wait for `burst down`")
            asked = self.check_demand(demand)
            if asked != json.loads(live.demand_json):
                raise BurstError(f"event {event!r} already has burst {live.id} for {json.loads(live.demand_json)}; "
                                 f"`burst down {event}` before asking for {asked}")
            self.store.journal("burst.resumed", f"burst {live.id} resumed", burst_id=live.id)
            return live
        the_plan = self.plan(event, demand, deadline)
        if the_plan.unplaced:
            raise BurstError(f"no tier can take {the_plan.unplaced} before the deadline "
                             f"(skipped: {dict(the_plan.skipped) or 'none'})")
        burst_id = f"{re.sub(r'[^a-z0-9]+', '-', event.lower()).strip('-')[:40]}-{uuid.uuid4().hex[:6]}"
        burst = Burst(id=burst_id, event=event, cluster=self.config.cluster.name,
                      demand_json=json.dumps(self.check_demand(demand), sort_keys=True),
                      plan_json=json.dumps(the_plan.to_dict()), deadline_at=deadline, created_at=self.clock.now())
        hosts, slot = [], 0
        for group in the_plan.groups:
            for _ in range(group.count):
                hosts.append(Host(id=f"{burst_id}-s{slot:04d}-a0", burst_id=burst_id, slot=slot, tier=group.tier,
                                  provider=group.provider, zone=group.zone, instance_type=group.instance_type))
                slot += 1
        return self.store.create_burst(burst, hosts)

    def down(self, event: str) -> Burst:
        live = self.store.live_burst(event)
        if live is None:
            raise BurstError(f"event {event!r} has no live burst")
        if live.status == "draining":
            return live
        return self.store.update_burst(live.id, f"burst down requested for {event}", status="draining",
                                       down_requested_at=self.clock.now())

    def reconcile_once(self) -> None:
        self.reconciler.pass_once()

    def retire_hosts(self, instance_ids: list[str], provider: str, reason: str) -> list[Host]:
        """Give these hosts back early (an owner recalls them): each live one gets a
        replacement on the next tier first, and is drained and returned once the
        replacement is ready. Returns the hosts retired."""
        wanted = set(instance_ids)
        retired = []
        for burst in self.store.bursts(("active",)):
            hosts = self.store.hosts(burst.id)
            newest = newest_per_slot(hosts)
            for h in hosts:
                if h.provider != provider or h.instance_id not in wanted or newest[h.slot].id != h.id:
                    continue
                if HostState(h.state) in FINAL:
                    continue
                offering = self.reconciler.next_offering(burst, h, next_tier=True)
                if offering is None:
                    self.store.journal("host.retire", f"{reason}: no tier left to replace {h.id}; it is returned "
                                       "and the burst runs short", burst_id=burst.id, host_id=h.id)
                    offering = (h.tier, h.zone, h.instance_type)  # placeholder attempt, given up below
                    replacement = self.reconciler.add_replacement(burst, h, offering, reason)
                    self.store.transition(replacement, HostState.CANCELLED,
                                          error=f"{reason}: no tier left to replace it; slot given up")
                else:
                    self.reconciler.add_replacement(burst, h, offering, reason)
                self.store.journal("host.retire", f"{reason}: {h.id} ({h.instance_id}) is returned once its "
                                   "replacement is ready", burst_id=burst.id, host_id=h.id)
                retired.append(h)
        return retired

    # -- reading -------------------------------------------------------------------

    def is_done(self, burst_id: str) -> bool:
        """Down: every host returned. Up: ready, or nothing left to try (every slot
        given up and its last host returned)."""
        burst = self.store.get_burst(burst_id)
        if burst.status != "active":
            return burst.status == "down"
        if burst.ready_at is not None:
            return True
        newest = newest_per_slot(self.store.hosts(burst_id))
        given_up = all((h.error or "").endswith("slot given up") and HostState(h.state) in FINAL
                       for h in newest.values())  # and its last host returned
        return bool(newest) and given_up and not self.reconciler.busy_for(burst)

    def live_hosts(self, burst_id: str) -> list[Host]:
        return [h for h in self.store.hosts(burst_id) if HostState(h.state) not in FINAL]
