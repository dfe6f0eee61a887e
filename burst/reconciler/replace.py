"""Replace: a failed host's slot gets its next attempt on the next offering that still
has stock, in the same transaction that starts giving the failed host back, so a
crash can never leave a slot with neither. A slot is given up instead when
`giveup.why_give_up` says so. The pool-recall path (`recall`) lives here too."""

from __future__ import annotations

from burst.lifecycle import FINAL
from burst.lifecycle import HostState as S
from burst.reconciler.context import BurstPass, Ctx
from burst.reconciler.giveback import return_state
from burst.reconciler.giveup import why_give_up
from burst.reconciler.slots import replacement
from burst.store import Burst, Change, HostRow, Note


def replace(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    newest = bp.newest
    changes: list[Change] = []
    new_hosts = []
    for h in hosts:
        if newest[h.slot].id == h.id and not h.given_up:
            offering = None if bp.burst.halted else ctx.offerings.next_offering(bp.burst, h)
            why = why_give_up(bp, h, offering)
            if why:
                changes.append(Change(h.id, bp.id, h.state, fields={"given_up": True},
                                      message=f"slot {h.slot} given up: {why}"))
            else:
                new_hosts.append((replacement(ctx.config, h, offering),
                                  f"replaces {h.id} ({h.state.value}: {h.error}) on {'/'.join(offering)}"))
        changes.append(Change(h.id, bp.id, h.state, return_state(h)))
    ctx.store.apply(changes, new_hosts=new_hosts)


def superseded(bp: BurstPass) -> set[str]:
    """Hosts whose slot has a newer attempt (a recalled host's replacement): they are
    given back, a ready one only once the newer attempt is ready (or done with), so
    the service's capacity is never short while it moves."""
    newest = bp.newest
    out = set()
    for h in bp.rows:
        latest = newest[h.slot]
        if latest.id == h.id or h.state in FINAL:
            continue
        if h.state is S.READY and latest.state is not S.READY and latest.state not in FINAL:
            continue
        out.add(h.id)
    return out


def recall(ctx: Ctx, burst: Burst, host: HostRow, reason: str) -> None:
    """An owner takes `host` back early: its slot gets a replacement on the next tier,
    and the host is given back once that is ready. With no tier left the slot is
    given up at once (the burst runs short) and the host is given back now."""
    offering = ctx.offerings.next_offering(burst, host, next_tier=True)
    if offering is None:
        new = replacement(ctx.config, host, (host.tier, host.zone, host.instance_type), given_up=True)
        new.state = S.CANCELLED
        why = f"{reason}: no tier left to replace {host.id}; slot {host.slot} given up, the burst runs short"
    else:
        new = replacement(ctx.config, host, offering)
        why = f"{reason}: replaces {host.id} ({host.instance_id}) on {'/'.join(offering)}"
    ctx.store.apply(new_hosts=[(new, why)],
                    notes=[Note("host.retire", f"{reason}: {host.id} ({host.instance_id}) is given back "
                                + ("now" if offering is None else "once its replacement is ready"),
                                burst_id=burst.id, host_id=host.id)])

