"""The planner: pure, no I/O.

demand (services x replicas x reservation) minus the room already free in the
cluster -> hosts per tier, zone and instance type.

Tiers are tried in order (the shared pool, then the clouds): a later tier only takes
what the earlier ones cannot, and a tier that cannot be ready before the deadline is
skipped. Within a tier the instance types are mixed at the cost bound:

1. the tier's LP relaxation (`burst.planner.lp`, solved by HiGHS through scipy)
   says how many replicas of each service go on each type, respecting each type's
   stock (`Offering.available`), the tier's `max_hosts` and every service's
   `max_per_host`;
2. its answer is rounded to whole replicas and packed onto whole hosts of each type
   (`burst.planner.pack`: the dot-product rule, identical hosts counted as runs, so
   10,000 replicas take a few dozen patterns, not 10,000 hosts);
3. what rounding leaves, and the hosts the packing left less than full, are planned
   again host by host (the type that costs least per value carried), kept only if
   cheaper; the same greedy also plans the whole tier alone, and the cheaper of the
   two plans wins (on large, odd-shaped replicas the greedy often does);
4. each type's hosts are spread over its zones as an Auto Scaling group does (counts
   differ by at most one; `TierOffer.balance_zones=False`: all in the first zone).

Why an LP and a packing rather than an exact MILP: the replicas' placement is a
two-dimensional bin packing; an exact model (a variable per host pattern) is far too
big at 64 services, while the LP over (service, type) has a few hundred columns,
solves in about a millisecond, and its answer, packed, lands within a few percent
of its own bound (docs/performance.md, "The planner"). HiGHS is a well-kept,
exact LP solver; scipy's `linprog(method="highs")` is its stable, silent front end
with wheels for every platform.

`lp_bound` returns the cost of the relaxation, the floor a plan is measured against.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from burst.plan import Plan, PlanGroup
from burst.planner.lp import EPS, per_host, solve_tier
from burst.planner.pack import Run, greedy, pack, split_zones, utilisation
from burst.provision import NodeCapacity

__all__ = ["Offering", "Plan", "PlanGroup", "ServiceShape", "TierOffer", "absorb", "lp_bound", "plan"]


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
    #: spread each type's hosts over its zones (counts differ by at most one), as an
    #: Auto Scaling group does; False: every host in the type's first zone
    balance_zones: bool = True


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


def absorb(remaining: dict[str, int], shapes: Sequence[ServiceShape],
           free: Sequence[NodeCapacity]) -> dict[str, int]:
    """Replicas that fit in the room existing nodes have free; `remaining` is reduced."""
    absorbed: dict[str, int] = {}
    for node in free:
        for name, k in _fill_one(node.cpu, node.memory_gib, remaining, shapes).items():
            remaining[name] -= k
            absorbed[name] = absorbed.get(name, 0) + k
    return absorbed


def _start(demand: Mapping[str, int], services: Sequence[ServiceShape], free: Sequence[NodeCapacity],
           absorbable: Collection[str] | None) -> tuple[list[ServiceShape], dict[str, int], dict[str, int]]:
    """The shapes asked for (largest first), what is left of the demand once the free
    room has absorbed what it may, and what it absorbed."""
    shapes = sorted((s for s in services if demand.get(s.name, 0) > 0),
                    key=lambda s: (s.cpu, s.memory_gib), reverse=True)
    remaining = {s.name: int(demand[s.name]) for s in shapes}
    absorbed = absorb(remaining, [s for s in shapes if absorbable is None or s.name in absorbable], free)
    return shapes, remaining, absorbed


def _too_late(tier: TierOffer, seconds_to_deadline: float) -> str | None:
    if tier.ready_seconds > seconds_to_deadline:
        return f"ready in {tier.ready_seconds:.0f}s, deadline in {seconds_to_deadline:.0f}s"
    return None


def lp_bound(demand: Mapping[str, int], services: Sequence[ServiceShape], tiers: Sequence[TierOffer],
             *, seconds_to_deadline: float, free: Sequence[NodeCapacity] = (),
             absorbable: Collection[str] | None = None) -> float:
    """The cost per hour of the LP relaxation of `plan`'s problem, tier after tier:
    no plan of one tier costs less (fractional hosts, replicas split at will)."""
    shapes, remaining, _ = _start(demand, services, free, absorbable)
    left = {i: float(remaining[s.name]) for i, s in enumerate(shapes)}
    total = 0.0
    for tier in tiers:
        if _too_late(tier, seconds_to_deadline) or not any(v > EPS for v in left.values()):
            continue
        sol = solve_tier(left, shapes, tier.offerings, [o.available for o in tier.offerings], tier.max_hosts)
        for (i, _t), v in sol.y.items():
            left[i] -= v
        total += sol.cost
    return total


def plan(demand: Mapping[str, int], services: Sequence[ServiceShape], tiers: Sequence[TierOffer],
         *, seconds_to_deadline: float, free: Sequence[NodeCapacity] = (),
         absorbable: Collection[str] | None = None) -> Plan:
    """The hosts to add for `demand`; see the module docstring. Only the services in
    `absorbable` (all when None) may use the `free` room of existing nodes."""
    shapes, remaining, absorbed = _start(demand, services, free, absorbable)
    left = {i: remaining[s.name] for i, s in enumerate(shapes)}
    groups: list[PlanGroup] = []
    skipped: list[tuple[str, str]] = []
    for tier in tiers:
        if not any(v > 0 for v in left.values()):
            break
        why = _too_late(tier, seconds_to_deadline)
        if why:
            skipped.append((tier.name, why))
            continue
        groups.extend(_groups(tier, _plan_tier(tier, left, shapes), shapes))
    unplaced = {shapes[i].name: v for i, v in left.items() if v > 0}
    return Plan(groups=tuple(groups), absorbed={k: v for k, v in absorbed.items() if v > 0},
                unplaced=unplaced, skipped=tuple(skipped))


#: the LP is solved again for what a round's packing could not place (stock or
#: max_hosts reached with room still wanted) at most this many times
_ROUNDS = 3
#: a run of hosts fuller than this (in its fuller dimension) is left as packed
_FULL = 0.97


def _plan_tier(tier: TierOffer, left: dict[int, int], shapes: Sequence[ServiceShape]) -> dict[int, list[Run]]:
    """Runs of hosts per offering index of `tier`; `left` is reduced by what they take.

    Two plans are made, the LP's and the greedy's alone (cheaper on demands of large,
    odd-shaped replicas, where the LP's split of services over types misleads); the
    one that leaves less unplaced wins, then the cheaper."""
    offers = tier.offerings
    ks = [{i: per_host(s, o.cpu, o.memory_gib) for i, s in enumerate(shapes)} for o in offers]
    value = _worth(shapes, offers, ks)
    best = None
    for way in (_via_lp, _via_greedy):
        mine = dict(left)
        runs = way(tier, mine, shapes, ks, value)
        short = sum(n * (shapes[i].cpu + shapes[i].memory_gib) for i, n in mine.items())
        key = (short, _cost(runs, offers))
        if best is None or key < best[0]:
            best = (key, runs, mine)
    _, runs, mine = best
    left.update(mine)
    return runs


class _Budget:
    """What a tier still has: hosts per offering and in all."""

    def __init__(self, tier: TierOffer) -> None:
        self.stock = [o.available for o in tier.offerings]
        self.cap = tier.max_hosts

    def take(self, t: int, runs: list[Run], into: dict[int, list[Run]]) -> None:
        hosts = sum(r for r, _ in runs)
        if self.stock[t] is not None:
            self.stock[t] -= hosts
        if self.cap is not None:
            self.cap -= hosts
        if runs:
            into.setdefault(t, []).extend(runs)


def _via_lp(tier: TierOffer, left: dict[int, int], shapes: Sequence[ServiceShape], ks: list[dict[int, int]],
            value: Mapping[int, float]) -> dict[int, list[Run]]:
    """The LP says how many of each service go on each type; they are packed there;
    what that leaves goes to the greedy; then the loose hosts are repaired."""
    offers = tier.offerings
    budget = _Budget(tier)
    runs: dict[int, list[Run]] = {}
    for _ in range(_ROUNDS):
        wanted = {i: n for i, n in left.items() if n > 0}
        if not wanted or budget.cap == 0:
            break
        sol = solve_tier(wanted, shapes, offers, budget.stock, budget.cap)
        placed = 0
        for t, items in sorted(_round(sol.y, wanted).items(), key=lambda kv: -sol.x.get(kv[0], 0.0)):
            before = sum(items.values())
            new = pack(offers[t], items, shapes, ks[t], _min(budget.stock[t], budget.cap))
            for i, n in _carried(new).items():
                left[i] -= n
            placed += before - sum(items.values())
            budget.take(t, new, runs)
        if placed == 0:
            break
    for t, new in greedy(left, shapes, offers, ks, budget.stock, budget.cap, value).items():
        budget.take(t, new, runs)
    return _repair(runs, shapes, offers, ks, budget.stock, budget.cap, value)


def _via_greedy(tier: TierOffer, left: dict[int, int], shapes: Sequence[ServiceShape], ks: list[dict[int, int]],
                value: Mapping[int, float]) -> dict[int, list[Run]]:
    budget = _Budget(tier)
    runs: dict[int, list[Run]] = {}
    for t, new in greedy(left, shapes, tier.offerings, ks, budget.stock, budget.cap, value).items():
        budget.take(t, new, runs)
    return _repair(runs, shapes, tier.offerings, ks, budget.stock, budget.cap, value)


def _repair(runs: dict[int, list[Run]], shapes: Sequence[ServiceShape], offers: Sequence[Offering],
            ks: list[dict[int, int]], stock: list[int | None], cap: int | None,
            value: Mapping[int, float]) -> dict[int, list[Run]]:
    """The hosts left less than full, planned again host by host; kept if cheaper."""
    loose = {t: [r for r in rs if utilisation(offers[t], r[1], shapes) < _FULL] for t, rs in runs.items()}
    loose = {t: rs for t, rs in loose.items() if rs}
    if not loose:
        return runs
    items: dict[int, int] = {}
    for rs in loose.values():
        for i, n in _carried(rs).items():
            items[i] = items.get(i, 0) + n
    freed = {t: sum(r for r, _ in rs) for t, rs in loose.items()}
    stock = [None if s is None else s + freed.get(t, 0) for t, s in enumerate(stock)]
    cap = None if cap is None else cap + sum(freed.values())
    again = greedy(items, shapes, offers, ks, stock, cap, value)
    if any(n > 0 for n in items.values()) or _cost(again, offers) >= _cost(loose, offers) - EPS:
        return runs
    kept = {t: [r for r in rs if r not in loose.get(t, [])] for t, rs in runs.items()}
    for t, rs in again.items():
        kept.setdefault(t, []).extend(rs)
    return {t: rs for t, rs in kept.items() if rs}


def _round(y: Mapping[tuple[int, int], float], wanted: Mapping[int, int]) -> dict[int, dict[int, int]]:
    """The LP's replicas per (service, type) in whole numbers, per type; a service's
    total is its LP total rounded, its fractions going to the largest."""
    per_service: dict[int, list[tuple[int, float]]] = {}
    for (i, t), v in y.items():
        per_service.setdefault(i, []).append((t, v))
    out: dict[int, dict[int, int]] = {}
    for i, parts in per_service.items():
        total = min(wanted[i], int(sum(v for _, v in parts) + 0.5))
        whole = {t: int(v + EPS) for t, v in parts}
        spare = total - sum(whole.values())
        for t, _ in sorted(parts, key=lambda tv: -(tv[1] - int(tv[1] + EPS))):
            if spare <= 0:
                break
            whole[t] += 1
            spare -= 1
        for t, n in whole.items():
            if n > 0:
                out.setdefault(t, {})[i] = n
    return out


def _worth(shapes: Sequence[ServiceShape], offers: Sequence[Offering],
           ks: Sequence[Mapping[int, int]]) -> dict[int, float]:
    """What one replica of each service costs alone at the bound (the cheapest share
    of a host it can have), plus a hair of its size so a free tier still ranks."""
    out = {}
    for i, s in enumerate(shapes):
        shares = [o.price_per_hour * max(s.cpu / o.cpu, s.memory_gib / o.memory_gib, 1 / ks[t][i])
                  for t, o in enumerate(offers) if ks[t][i] > 0]
        out[i] = min(shares, default=0.0) + 1e-9 * (s.cpu + s.memory_gib)
    return out


def _carried(runs: Sequence[Run]) -> dict[int, int]:
    out: dict[int, int] = {}
    for repeat, pattern in runs:
        for i, n in pattern:
            out[i] = out.get(i, 0) + n * repeat
    return out


def _cost(runs: Mapping[int, Sequence[Run]], offers: Sequence[Offering]) -> float:
    return sum(offers[t].price_per_hour * r for t, rs in runs.items() for r, _ in rs)


def _groups(tier: TierOffer, runs: Mapping[int, list[Run]], shapes: Sequence[ServiceShape]) -> list[PlanGroup]:
    """One group per (type, zone) of the tier, in the tier's offering order."""
    out: dict[int, list[PlanGroup]] = {}
    zone_hosts: dict[str, int] = {}
    # the types with the fewest zones first, so the others' spare hosts go where
    # the tier has fewest
    for t in sorted(runs, key=lambda t: (len(tier.offerings[t].zones), t)):
        o = tier.offerings[t]
        merged: dict[tuple, int] = {}
        for repeat, pattern in runs[t]:
            merged[pattern] = merged.get(pattern, 0) + repeat
        ordered = sorted(((r, p) for p, r in merged.items()), key=lambda rp: -rp[0])
        for zone, zruns in split_zones(o, ordered, zone_hosts, tier.balance_zones):
            out.setdefault(t, []).append(PlanGroup(
                tier=tier.name, provider=tier.provider, zone=zone, instance_type=o.instance_type,
                count=sum(r for r, _ in zruns), price_per_hour=o.price_per_hour, ready_seconds=tier.ready_seconds,
                replicas={shapes[i].name: n for i, n in sorted(_carried(zruns).items())},
                per_host=tuple((r, {shapes[i].name: n for i, n in p}) for r, p in zruns)))
    return [g for t in sorted(out) for g in out[t]]


def _min(a: int | None, b: int | None) -> int | None:
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

    @classmethod
    def of(cls, limits) -> "SizeLimits":
        """From the config's `[limits]` table (anything with its three fields)."""
        return cls(hosts_per_burst=limits.hosts_per_burst, hosts_per_tier=limits.hosts_per_tier,
                   tiers=dict(limits.tiers))


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
