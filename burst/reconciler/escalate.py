"""Escalate: a host still not running when its tier's whole expected time to ready
(the p95 of the tier's recorded launch-to-ready times over the last bursts, or the
tier's configured `ready_seconds` until there are enough of them) has passed, while the burst's deadline is still
ahead, is replaced on the next tier that can still be ready before the deadline.
The slow host is given back (superseded by its slot's newer attempt) and
`sla.at_risk` is journaled, once per host. Hosts already running are left to finish:
initialising them elsewhere would take as long again. A burst-level step of an
active burst that is not ready yet."""

from __future__ import annotations

from burst.calendar.leadtime import tier_ready_seconds
from burst.lifecycle import HostState as S
from burst.reconciler.context import BurstPass, Ctx
from burst.reconciler.slots import replacement
from burst.store import Note
from burst.timings import ready_seconds_history


def expected_ready(ctx: Ctx, tier: str) -> float:
    """The tier's expected seconds from launch to ready, read from history once per process."""
    if tier not in ctx.expected_ready:
        ctx.expected_ready[tier] = tier_ready_seconds(ctx.config.tier(tier).ready_seconds,
                                                      ready_seconds_history(ctx.store, tier))
    return ctx.expected_ready[tier]


def escalate(ctx: Ctx, bp: BurstPass) -> None:
    burst = bp.burst
    if burst.ready_at is not None or burst.halted:
        return
    now = ctx.clock.now()
    left = (burst.deadline_at - now).total_seconds()
    new_hosts, notes = [], []
    for h in bp.newest.values():
        if h.state not in (S.REQUESTED, S.LAUNCHING) or h.given_up:
            continue
        expected = expected_ready(ctx, h.tier)
        age = (now - h.created_at).total_seconds()
        if age <= expected:
            continue
        offering = ctx.offerings.next_offering(burst, h, next_tier=True)
        if offering is None or expected_ready(ctx, offering[0]) > left:
            continue  # no later tier can do better before the deadline: the host keeps going
        why = (f"{h.id} on {h.tier} is {h.state.value} after {age:.0f}s (the tier expects {expected:.0f}s); "
               f"escalated to {'/'.join(offering)}, {left:.0f}s before the deadline")
        new_hosts.append((replacement(ctx.config, h, offering), f"sla at risk: {why}"))
        notes.append(Note("sla.at_risk", why, burst_id=bp.id, host_id=h.id,
                          detail={"tier": h.tier, "to": offering[0], "age": round(age, 1), "expected": expected}))
    if new_hosts:
        ctx.store.apply(new_hosts=new_hosts, notes=notes)
