"""The planner: pure, no I/O.

demand (services x replicas x reservation) minus the room already free in the
cluster -> hosts per tier, zone and instance type. Tiers are tried in order (the
shared pool, then the clouds); a tier that cannot be ready before the deadline is
skipped; within a tier the instance type with the lowest cost per placed replica
wins. Replicas are packed onto hosts greedily, largest service first; identical
hosts are counted, not simulated one by one, so a plan of thousands of replicas
stays fast.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from burst.plan import Plan, PlanGroup
from burst.provision import NodeCapacity

__all__ = ["Offering", "Plan", "PlanGroup", "ServiceShape", "TierOffer", "absorb", "plan"]


@dataclass(frozen=True)
class ServiceShape:
    name: str
    cpu: float
    memory_gib: float
    #: at most this many replicas on one host (1 for a service publishing a host-mode
    #: port: two of its tasks cannot share a node); None: as many as fit
    max_per_host: int | None = None


@dataclass(frozen=True)
class Offering:
    """One instance type of one tier. `available` None means as many as wanted."""

    tier: str
    provider: str
    instance_type: str
    cpu: float
    memory_gib: float
    price_per_hour: float
    zones: tuple[str, ...]
    available: int | None = None


@dataclass(frozen=True)
class TierOffer:
    name: str
    provider: str
    ready_seconds: float
    offerings: tuple[Offering, ...]
    max_hosts: int | None = None


def _fill_one(cpu: float, mem: float, remaining: dict[str, int],
              shapes: Sequence[ServiceShape]) -> dict[str, int]:
    """Replicas one host of (cpu, mem) takes, largest service first."""
    took: dict[str, int] = {}
    for s in shapes:
        want = remaining.get(s.name, 0)
        if want <= 0:
            continue
        k = min(want, int(cpu / s.cpu + 1e-9), int(mem / s.memory_gib + 1e-9), s.max_per_host or want)
        if k > 0:
            took[s.name] = k
            cpu -= k * s.cpu
            mem -= k * s.memory_gib
    return took


def _pack(cpu: float, mem: float, remaining: dict[str, int], shapes: Sequence[ServiceShape],
          limit: int | None) -> tuple[int, dict[str, int]]:
    """Hosts of one shape needed for `remaining` (at most `limit`), and what they take."""
    left = dict(remaining)
    hosts, placed = 0, {}
    while any(v > 0 for v in left.values()) and (limit is None or hosts < limit):
        pattern = _fill_one(cpu, mem, left, shapes)
        if not pattern:
            break
        # the same pattern repeats while every service in it still has that many left
        repeat = min(left[name] // k for name, k in pattern.items())
        if limit is not None:
            repeat = min(repeat, limit - hosts)
        repeat = max(repeat, 1)
        for name, k in pattern.items():
            n = min(k * repeat, left[name])
            left[name] -= n
            placed[name] = placed.get(name, 0) + n
        hosts += repeat
    return hosts, placed


def absorb(remaining: dict[str, int], shapes: Sequence[ServiceShape],
           free: Sequence[NodeCapacity]) -> dict[str, int]:
    """Replicas that fit in the room existing nodes have free; `remaining` is reduced."""
    absorbed: dict[str, int] = {}
    for node in free:
        for name, k in _fill_one(node.cpu, node.memory_gib, remaining, shapes).items():
            remaining[name] -= k
            absorbed[name] = absorbed.get(name, 0) + k
    return absorbed


def plan(demand: Mapping[str, int], services: Sequence[ServiceShape], tiers: Sequence[TierOffer],
         *, seconds_to_deadline: float, free: Sequence[NodeCapacity] = (),
         absorbable: Collection[str] | None = None) -> Plan:
    """The hosts to add for `demand`; see the module docstring. Only the services in
    `absorbable` (all when None) may use the `free` room of existing nodes."""
    shapes = sorted((s for s in services if demand.get(s.name, 0) > 0),
                    key=lambda s: (s.cpu, s.memory_gib), reverse=True)
    remaining = {s.name: int(demand[s.name]) for s in shapes}
    absorbed = absorb(remaining, [s for s in shapes if absorbable is None or s.name in absorbable], free)
    groups: list[PlanGroup] = []
    skipped: list[tuple[str, str]] = []
    for tier in tiers:
        if not any(v > 0 for v in remaining.values()):
            break
        if tier.ready_seconds > seconds_to_deadline:
            skipped.append((tier.name, f"ready in {tier.ready_seconds:.0f}s, deadline in {seconds_to_deadline:.0f}s"))
            continue
        tier_left = tier.max_hosts
        stock = {o.instance_type: o.available for o in tier.offerings}
        while any(v > 0 for v in remaining.values()) and (tier_left is None or tier_left > 0):
            best = None
            for o in tier.offerings:
                limit = _min_limit(stock[o.instance_type], tier_left)
                if limit == 0:
                    continue
                hosts, placed = _pack(o.cpu, o.memory_gib, remaining, shapes, limit)
                n = sum(placed.values())
                if n == 0:
                    continue
                # cheapest per placed replica; then the most placed; then the fewest hosts
                key = (hosts * o.price_per_hour / n, -n, hosts)
                if best is None or key < best[0]:
                    best = (key, o, hosts, placed)
            if best is None:
                break
            _, o, hosts, placed = best
            groups.append(PlanGroup(tier=tier.name, provider=tier.provider, zone=o.zones[0],
                                    instance_type=o.instance_type, count=hosts, price_per_hour=o.price_per_hour,
                                    ready_seconds=tier.ready_seconds, replicas=placed))
            for name, n in placed.items():
                remaining[name] -= n
            if stock[o.instance_type] is not None:
                stock[o.instance_type] -= hosts
            if tier_left is not None:
                tier_left -= hosts
    unplaced = {k: v for k, v in remaining.items() if v > 0}
    return Plan(groups=tuple(groups), absorbed={k: v for k, v in absorbed.items() if v > 0},
                unplaced=unplaced, skipped=tuple(skipped))


def _min_limit(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


# -- the size guard -----------------------------------------------------------------

@dataclass(frozen=True)
class SizeLimits:
    """How big a plan may be before `burst up` asks the operator to confirm: hosts per
    burst, and per tier (`tiers` overrides `hosts_per_tier` for the tiers it names)."""

    hosts_per_burst: int
    hosts_per_tier: int
    tiers: Mapping[str, int] = field(default_factory=dict)

    def for_tier(self, tier: str) -> int:
        return self.tiers.get(tier, self.hosts_per_tier)


def size_breaches(plan: Plan, limits: SizeLimits) -> list[str]:
    """Each limit the plan is above, said in words; empty when it is within them all."""
    out = []
    if plan.hosts > limits.hosts_per_burst:
        out.append(f"{plan.hosts} hosts in all, limit {limits.hosts_per_burst} per burst")
    per_tier: dict[str, int] = {}
    for g in plan.groups:
        per_tier[g.tier] = per_tier.get(g.tier, 0) + g.count
    for tier, n in per_tier.items():
        if n > limits.for_tier(tier):
            out.append(f"{n} hosts from tier {tier}, limit {limits.for_tier(tier)}")
    return out
