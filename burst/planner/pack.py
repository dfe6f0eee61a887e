"""Replicas onto hosts of one type: patterns, runs of identical hosts, the greedy.

A pattern is what one host carries, ((service index, replicas), ...); a run is
(hosts, pattern). Hosts are filled by the dot-product rule of vector bin packing:
the next service is the one whose (cpu, memory), as fractions of the host, points
most along the host's room left, so a cpu-heavy replica is followed by memory-heavy
ones and both dimensions fill together. A pattern is repeated while every service in
it has that many left, so thousands of hosts take a few dozen patterns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from burst.planner.lp import EPS

if TYPE_CHECKING:
    from burst.planner import Offering, ServiceShape

Pattern = tuple[tuple[int, int], ...]
Run = tuple[int, Pattern]


def fill(o: Offering, left: Mapping[int, int], shapes: Sequence[ServiceShape], k: Mapping[int, int]) -> Pattern:
    """One host of `o` filled from `left`; `k[i]`: at most that many of service i.

    The host aims at the shape of all that is left (in host units, the larger
    dimension scaled to 1): where memory is what binds, every host fills its memory
    and takes its share of the cpu-heavy replicas, rather than the first hosts
    taking the memory-heavy ones and the last ones the cpu-heavy ones."""
    cpu, mem = o.cpu, o.memory_gib
    room_c, room_m = cpu, mem
    # (service, its cpu and memory as fractions of the host, how many more it may put)
    cand = []
    want_c = want_m = 0.0
    for i, n in left.items():
        if n > 0:
            s = shapes[i]
            want_c += n * s.cpu / cpu
            want_m += n * s.memory_gib / mem
            if k.get(i, 0) > 0 and s.cpu <= room_c + EPS and s.memory_gib <= room_m + EPS:
                cand.append((i, s.cpu / cpu, s.memory_gib / mem, min(n, k[i])))
    scale = max(want_c, want_m, EPS)
    aim_c, aim_m = want_c / scale, want_m / scale
    room_u = room_v = 1.0  # the room, as fractions of the host
    took: dict[int, int] = {}
    while cand:
        a, b = aim_c - 1 + room_u, aim_m - 1 + room_v
        best, best_score = -1, -math.inf
        for j, (_, u, v, _more) in enumerate(cand):
            score = u * a + v * b
            if score > best_score + EPS:
                best, best_score = j, score
        i, u, v, more = cand[best]
        n = min(more, int(room_u / u + EPS) if u > 0 else more, int(room_v / v + EPS) if v > 0 else more)
        # as many as keep the room's shape on the side it is on (all, for a replica
        # shaped like the room); one at a time against the room's shape
        if u > v + EPS:
            n = min(n, max(1, int((a - b) / (u - v) + EPS))) if a > b else 1
        elif v > u + EPS:
            n = min(n, max(1, int((b - a) / (v - u) + EPS))) if b > a else 1
        took[i] = took.get(i, 0) + n
        room_u -= n * u
        room_v -= n * v
        cand[best] = (i, u, v, more - n)
        # room only shrinks: what no longer fits never will on this host
        cand = [c for c in cand if c[3] > 0 and c[1] <= room_u + EPS and c[2] <= room_v + EPS]
    return tuple(sorted(took.items()))


def pack(o: Offering, left: dict[int, int], shapes: Sequence[ServiceShape], k: Mapping[int, int],
         limit: int | None) -> list[Run]:
    """Hosts of `o` for `left` (at most `limit`); `left` is reduced by what they take."""
    runs: list[Run] = []
    hosts = 0
    while limit is None or hosts < limit:
        pattern = fill(o, left, shapes, k)
        if not pattern:
            break
        repeat = min(left[i] // n for i, n in pattern)
        if limit is not None:
            repeat = min(repeat, limit - hosts)
        runs.append((repeat, pattern))
        hosts += repeat
        for i, n in pattern:
            left[i] -= n * repeat
    return runs


def utilisation(o: Offering, pattern: Pattern, shapes: Sequence[ServiceShape]) -> float:
    """The fuller of the host's two dimensions, 0..1."""
    return max(sum(n * shapes[i].cpu for i, n in pattern) / o.cpu,
               sum(n * shapes[i].memory_gib for i, n in pattern) / o.memory_gib)


def greedy(left: dict[int, int], shapes: Sequence[ServiceShape], offerings: Sequence[Offering],
           ks: Sequence[Mapping[int, int]], stock: list[int | None], tier_left: int | None,
           value: Mapping[int, float]) -> dict[int, list[Run]]:
    """Host after host, the type whose filled host costs least per value it carries
    (`value[i]`: what a replica of i is worth, its share of the LP bound); `left`,
    `stock` are reduced. For the few replicas rounding leaves."""
    runs: dict[int, list[Run]] = {}
    while any(n > 0 for n in left.values()) and (tier_left is None or tier_left > 0):
        best = None
        for t, o in enumerate(offerings):
            if stock[t] is not None and stock[t] <= 0:
                continue
            pattern = fill(o, left, shapes, ks[t])
            if not pattern:
                continue
            worth = sum(n * value[i] for i, n in pattern)
            key = (o.price_per_hour / worth if worth > 0 else float("inf"), -worth)
            if best is None or key < best[0]:
                best = (key, t, pattern)
        if best is None:
            break
        _, t, pattern = best
        repeat = min(left[i] // n for i, n in pattern)
        for cap in (stock[t], tier_left):
            if cap is not None:
                repeat = min(repeat, cap)
        runs.setdefault(t, []).append((repeat, pattern))
        for i, n in pattern:
            left[i] -= n * repeat
        if stock[t] is not None:
            stock[t] -= repeat
        if tier_left is not None:
            tier_left -= repeat
    return runs


def split_zones(o: Offering, runs: Sequence[Run], zone_hosts: dict[str, int],
                balance: bool) -> list[tuple[str, list[Run]]]:
    """The runs of one offering cut into its zones: counts differ by at most one,
    the spare hosts going to the zones the tier has fewest in so far (`zone_hosts`,
    updated); without `balance`, all in the first zone."""
    total = sum(r for r, _ in runs)
    zones = o.zones if balance else o.zones[:1]
    base, spare = divmod(total, len(zones))
    favoured = set(sorted(zones, key=lambda z: (zone_hosts.get(z, 0), zones.index(z)))[:spare])
    out, queue, pos = [], list(runs), 0
    for z in zones:
        want = base + (z in favoured)
        zone_hosts[z] = zone_hosts.get(z, 0) + want
        mine: list[Run] = []
        while want > 0:
            repeat, pattern = queue[pos]
            take = min(repeat, want)
            mine.append((take, pattern))
            want -= take
            if take == repeat:
                pos += 1
            else:
                queue[pos] = (repeat - take, pattern)
        if mine:
            out.append((z, mine))
    return out
