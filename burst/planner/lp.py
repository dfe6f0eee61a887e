"""The LP relaxation of one tier, solved by HiGHS through `scipy.optimize.linprog`.

Variables: y[s, t] replicas of service s on instance type t, x[t] hosts of type t
(both continuous). Rows:

    sum_t y[s, t]               <= left[s]        every service
    sum_s cpu[s] y[s, t]        <= cpu[t] x[t]    every type
    sum_s mem[s] y[s, t]        <= mem[t] x[t]    every type
    y[s, t]                     <= k[s, t] x[t]   where k (replicas of s one host of t
                                                  takes: its fit or max_per_host) is
                                                  tighter than the two rows above
    x[t] <= stock[t],  sum_t x[t] <= max_hosts

Objective: minimise sum_t price[t] x[t] - sum_s w[s] sum_t y[s, t], where every w[s]
is larger than any host's price: placing a replica always beats leaving it, so the
tier takes all it can (the largest replicas first when stock or max_hosts binds),
then at the least cost. Its cost part is the lower bound a plan of the tier is
measured against (with nothing binding, it is the bound of the aggregate
resources: 628.75/h on issue 10's mixed demand).

scipy is imported on the first solve, not with burst: it costs about 0.4 s.
(`highspy`, HiGHS's own binding, prints its banner on stdout when a solver is made,
which would corrupt `burst plan --json`; scipy's build of HiGHS is silent.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from burst.planner import Offering, ServiceShape

EPS = 1e-9


def per_host(s: ServiceShape, cpu: float, mem: float) -> int:
    """Replicas of `s` one host of (cpu, mem) takes, alone."""
    k = min(_fit(cpu, s.cpu), _fit(mem, s.memory_gib))
    return min(k, s.max_per_host) if s.max_per_host is not None else k


def _fit(room: float, size: float) -> int:
    return 10**9 if size <= 0 else int(room / size + EPS)


@dataclass(frozen=True)
class TierSolution:
    #: (service index, offering index) -> replicas (fractional)
    y: dict[tuple[int, int], float]
    #: offering index -> hosts (fractional)
    x: dict[int, float]
    cost: float


def solve_tier(left: Mapping[int, float], shapes: Sequence[ServiceShape], offerings: Sequence[Offering],
               stock: Sequence[int | None], max_hosts: int | None) -> TierSolution:
    """The LP above for the services `left` (index into `shapes` -> replicas)."""
    svc = [i for i, n in left.items() if n > EPS]
    usable = [t for t, cap in enumerate(stock) if cap is None or cap > 0]
    if not svc or not usable or (max_hosts is not None and max_hosts <= 0):
        return TierSolution({}, {}, 0.0)
    cpu_max = max(offerings[t].cpu for t in usable)
    mem_max = max(offerings[t].memory_gib for t in usable)
    size = {i: shapes[i].cpu / cpu_max + shapes[i].memory_gib / mem_max for i in svc}
    smallest = min((v for v in size.values() if v > 0), default=1.0)
    top_price = max(offerings[t].price_per_hour for t in usable)

    # rows, all "<=": the services, then cpu and memory per type, then the per-host
    # caps that bind, then max_hosts
    service_row = {i: r for r, i in enumerate(svc)}
    cpu_row = {t: len(svc) + 2 * n for n, t in enumerate(usable)}
    bound = [float(left[i]) for i in svc] + [0.0] * (2 * len(usable))
    rows, cols, vals = [], [], []
    cost: list[float] = []
    upper: list[float | None] = []
    pairs: list[tuple[int, int]] = []
    x_col = {t: n for n, t in enumerate(usable)}  # offset by len(pairs) below
    caps: list[tuple[int, int, int]] = []  # (row, type, k)

    def put(r: int, c: int, v: float) -> None:
        rows.append(r)
        cols.append(c)
        vals.append(v)

    for i in svc:
        s = shapes[i]
        for t in usable:
            o = offerings[t]
            k = per_host(s, o.cpu, o.memory_gib)
            if k == 0:
                continue
            c = len(pairs)
            put(service_row[i], c, 1.0)
            put(cpu_row[t], c, s.cpu)
            put(cpu_row[t] + 1, c, s.memory_gib)
            if k < min(o.cpu / s.cpu if s.cpu > 0 else math.inf,
                       o.memory_gib / s.memory_gib if s.memory_gib > 0 else math.inf) - EPS:
                put(len(bound), c, 1.0)
                caps.append((len(bound), t, k))
                bound.append(0.0)
            pairs.append((i, t))
            cost.append(-(top_price + 1.0) * max(size[i], smallest) / smallest)
            upper.append(float(left[i]))
    if not pairs:
        return TierSolution({}, {}, 0.0)
    for t in usable:
        o = offerings[t]
        c = len(pairs) + x_col[t]
        put(cpu_row[t], c, -o.cpu)
        put(cpu_row[t] + 1, c, -o.memory_gib)
        if max_hosts is not None:
            put(len(bound), c, 1.0)
        cost.append(o.price_per_hour)
        upper.append(None if stock[t] is None else float(stock[t]))
    for r, t, k in caps:
        put(r, len(pairs) + x_col[t], -float(k))
    if max_hosts is not None:
        bound.append(float(max_hosts))

    from scipy.optimize import linprog
    from scipy.sparse import csc_array

    a = csc_array((vals, (rows, cols)), shape=(len(bound), len(cost)))
    res = linprog(cost, A_ub=a, b_ub=bound, bounds=[(0.0, u) for u in upper], method="highs")
    if res.status != 0:  # cannot happen: all zeros is feasible and the objective is bounded
        raise RuntimeError(f"the planner's LP: {res.message}")
    y = {pair: float(v) for pair, v in zip(pairs, res.x) if v > EPS}
    x = {t: float(res.x[len(pairs) + n]) for n, t in enumerate(usable) if res.x[len(pairs) + n] > EPS}
    return TierSolution(y, x, sum(offerings[t].price_per_hour * v for t, v in x.items()))
