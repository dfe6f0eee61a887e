"""Benchmark: the planner's cost against its LP bound, and its time, new and old.

    python tests/bench/bench_planner.py [--runs 9] [--seeds 5]

Demands, all onto one tier of four types priced 0.20/0.38/0.90/1.70 for 4/8, 8/16,
16/64, 32/128 (cpu/GiB) in three zones (issue 10's):
  uniform   10,000 x 1 cpu/2 GiB
  mixed     4,000 x 0.5/1, 3,000 x 1/2, 2,000 x 2/8, 1,000 x 4/4
  random-S  10,000 replicas of S services of random shapes (cpu 0.25-8, 0.5-8 GiB
            per cpu), one line per seed
The last column is the new planner's cost over the Gilmore-Gomory (whole-pattern)
bound, a tighter floor than `lp_bound` where replicas are large against the hosts
(column generation: seconds per demand, not run for 256 services).
Per demand and planner: the median ms of --runs plans (after one warm-up: the first
plan of a process also imports scipy, about 0.4 s) and cost / `lp_bound`, beside the
references (<= 1.02x, <= 50 ms). "old" is the planner as it was before issue 10
(one type per step, every host in the first zone), kept below for the comparison.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Collection, Mapping, Sequence

from burst.plan import Plan, PlanGroup
from burst.planner import Offering, ServiceShape, TierOffer, _fill_one, absorb, lp_bound, plan
from burst.provision import NodeCapacity

TYPES = [("t4x8", 4, 8, 0.20), ("t8x16", 8, 16, 0.38), ("t16x64", 16, 64, 0.90), ("t32x128", 32, 128, 1.70)]
TIER = TierOffer("ali", "aliyun", 90, tuple(Offering("ali", "aliyun", n, c, m, p, ("z1", "z2", "z3"))
                                            for n, c, m, p in TYPES))


def uniform() -> tuple[dict[str, int], list[ServiceShape]]:
    return {"web": 10_000}, [ServiceShape("web", 1, 2)]


def mixed() -> tuple[dict[str, int], list[ServiceShape]]:
    shapes = [ServiceShape("a", 0.5, 1), ServiceShape("b", 1, 2), ServiceShape("c", 2, 8), ServiceShape("d", 4, 4)]
    return {"a": 4000, "b": 3000, "c": 2000, "d": 1000}, shapes


def random_shapes(services: int, seed: int) -> tuple[dict[str, int], list[ServiceShape]]:
    rng = random.Random(seed)
    shapes = [ServiceShape(f"s{i}", rng.choice([0.25, 0.5, 1, 2, 4, 8]), 0.0) for i in range(services)]
    shapes = [ServiceShape(s.name, s.cpu, s.cpu * rng.choice([0.5, 1, 2, 4, 8])) for s in shapes]
    cuts = sorted(rng.sample(range(1, 10_000), services - 1))
    counts = [b - a for a, b in zip([0, *cuts], [*cuts, 10_000])]
    return {s.name: n for s, n in zip(shapes, counts)}, shapes


def pattern_bound(demand: Mapping[str, int], shapes: Sequence[ServiceShape], max_rounds: int = 400) -> float:
    """The Gilmore-Gomory bound of TIER (no stock, no max_hosts): the LP over whole
    host patterns, by column generation (pricing: a small MILP per type). Tighter
    than `lp_bound`, which lets a replica's cpu and memory land on different hosts;
    no plan costs less. Slow (seconds): for this benchmark only."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp

    from burst.planner.lp import per_host

    svc = [s for s in shapes if demand.get(s.name, 0) > 0]
    d = np.array([demand[s.name] for s in svc], dtype=float)
    cpu = np.array([s.cpu for s in svc])
    mem = np.array([s.memory_gib for s in svc])
    cols, prices = [], []
    for o in TIER.offerings:
        for i, s in enumerate(svc):
            k = per_host(s, o.cpu, o.memory_gib)
            if k:
                col = np.zeros(len(svc))
                col[i] = k
                cols.append(col)
                prices.append(o.price_per_hour)
    for _ in range(max_rounds):
        res = linprog(prices, A_ub=-np.array(cols).T, b_ub=-d, bounds=(0, None), method="highs")
        duals = -res.ineqlin.marginals
        added = False
        for o in TIER.offerings:
            caps = np.array([min(per_host(s, o.cpu, o.memory_gib), demand[s.name]) for s in svc], dtype=float)
            best = milp(-duals, constraints=LinearConstraint(np.vstack([cpu, mem]), -np.inf, [o.cpu, o.memory_gib]),
                        integrality=np.ones(len(svc)), bounds=Bounds(0, caps))
            if best.x is not None and duals @ np.round(best.x) > o.price_per_hour * (1 + 1e-7):
                cols.append(np.round(best.x))
                prices.append(o.price_per_hour)
                added = True
        if not added:
            return float(res.fun)
    raise RuntimeError("column generation did not converge")


def measure(planner, demand, shapes, runs: int) -> tuple[float, Plan]:
    result = planner(demand, shapes, [TIER], seconds_to_deadline=300)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        planner(demand, shapes, [TIER], seconds_to_deadline=300)
        times.append((time.perf_counter() - t0) * 1000)
    placed = sum(n for g in result.groups for n in g.replicas.values())
    assert placed == sum(demand.values()) and not result.unplaced, (placed, result.unplaced)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--no-pattern-bound", action="store_true", help="skip the slow Gilmore-Gomory bound")
    args = ap.parse_args()
    cases = [("uniform", *uniform()), ("mixed", *mixed())]
    for services in (16, 64, 256):
        cases += [(f"random-{services} seed {seed}", *random_shapes(services, seed)) for seed in range(args.seeds)]
    print(f"{'demand':<22} {'bound/h':>9} | {'new/h':>9} {'x bound':>8} {'ms':>7} {'zones':>5} | "
          f"{'old/h':>9} {'x bound':>8} {'ms':>7} {'zones':>5} | new x pattern bound   "
          f"(refs: <= 1.02x, <= 50 ms)")
    for name, demand, shapes in cases:
        bound = lp_bound(demand, shapes, [TIER], seconds_to_deadline=300)
        row = f"{name:<22} {bound:>9.2f} |"
        new_cost = plan(demand, shapes, [TIER], seconds_to_deadline=300).cost_per_hour
        for planner in (plan, old_plan):
            ms, p = measure(planner, demand, shapes, args.runs)
            row += (f" {p.cost_per_hour:>9.2f} {p.cost_per_hour / bound:>7.3f}x {ms:>7.2f}"
                    f" {len({g.zone for g in p.groups}):>5} |")
        if not args.no_pattern_bound and len(shapes) <= 64:
            gg = pattern_bound(demand, shapes)
            row += f" {new_cost / gg:.3f}x of {gg:.2f}"
        print(row.rstrip(" |"))


# -- the planner before issue 10 (burst/planner/__init__.py at 3754ed4), for comparison --

def _old_pack(cpu: float, mem: float, remaining: dict[str, int], shapes: Sequence[ServiceShape],
              limit: int | None) -> tuple[int, dict[str, int]]:
    left = dict(remaining)
    hosts, placed = 0, {}
    while any(v > 0 for v in left.values()) and (limit is None or hosts < limit):
        pattern = _fill_one(cpu, mem, left, shapes)  # unchanged since: one host, largest service first
        if not pattern:
            break
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


def old_plan(demand: Mapping[str, int], services: Sequence[ServiceShape], tiers: Sequence[TierOffer],
             *, seconds_to_deadline: float, free: Sequence[NodeCapacity] = (),
             absorbable: Collection[str] | None = None) -> Plan:
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
            skipped.append((tier.name, "late"))
            continue
        tier_left = tier.max_hosts
        stock = {o.instance_type: o.available for o in tier.offerings}
        while any(v > 0 for v in remaining.values()) and (tier_left is None or tier_left > 0):
            best = None
            for o in tier.offerings:
                limit = _old_min(stock[o.instance_type], tier_left)
                if limit == 0:
                    continue
                hosts, placed = _old_pack(o.cpu, o.memory_gib, remaining, shapes, limit)
                n = sum(placed.values())
                if n == 0:
                    continue
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


def _old_min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


if __name__ == "__main__":
    main()
