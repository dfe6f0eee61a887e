"""Poll: one describe per tier for every launching host that has an instance, at most
every `Provider.poll_seconds`; the whole answer moves its hosts in one
transaction: `launching -> running` with the address, or `launch_failed` for an
instance that died, stayed missing past the grace, or missed its deadline."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from burst.lifecycle import HostState as S
from burst.provider import InstanceState, ProviderError
from burst.reconciler.context import BurstPass, Ctx, Outcome, provider_error
from burst.store import Change, HostRow

#: seconds a launched instance may be missing from describe (EC2 is eventually
#: consistent right after RunInstances) before the host is failed
UNSEEN_GRACE_SECONDS = 30.0


def poll(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    by_tier: dict[str, list[HostRow]] = defaultdict(list)
    for h in hosts:
        by_tier[h.tier].append(h)
    now = ctx.clock.monotonic()
    for tier, group in by_tier.items():
        if now - ctx.last_poll.get((bp.id, tier), 0.0) < ctx.providers.get(tier).poll_seconds:
            continue
        if ctx.submit(bp.id, [("describe", tier)], lambda token, t=tier, g=group: _describe(ctx, bp, t, g),
                      f"describe {tier}"):
            ctx.last_poll[(bp.id, tier)] = now


def _describe(ctx: Ctx, bp: BurstPass, tier: str, hosts: list[HostRow]) -> None:
    try:
        seen = {i.id: i for i in ctx.providers.get(tier).describe([h.instance_id for h in hosts])}
    except ProviderError as exc:
        ctx.report(Outcome(notes=[provider_error(bp.id, tier, "describe", exc)]))
        return
    now = ctx.clock.now()
    changes = []
    for h in hosts:  # each change holds only if the host is still launching when applied
        inst = seen.get(h.instance_id)
        if inst is not None and inst.state is InstanceState.RUNNING and inst.address:
            changes.append(Change(h.id, bp.id, S.LAUNCHING, S.RUNNING,
                                  fields={"address": inst.address, "phase_deadline": None}))
        elif inst is not None and inst.state in (InstanceState.TERMINATED, InstanceState.STOPPING):
            changes.append(Change(h.id, bp.id, S.LAUNCHING, S.LAUNCH_FAILED,
                                  error=f"instance {h.instance_id} is {inst.state.value} while launching"))
        elif inst is None and now - h.updated_at > timedelta(seconds=UNSEEN_GRACE_SECONDS):
            changes.append(Change(h.id, bp.id, S.LAUNCHING, S.LAUNCH_FAILED,
                                  error=f"instance {h.instance_id} not found for {UNSEEN_GRACE_SECONDS:.0f}s"))
        elif h.phase_deadline and now > h.phase_deadline:
            changes.append(Change(h.id, bp.id, S.LAUNCHING, S.LAUNCH_FAILED,
                                  error=f"instance {h.instance_id} not running before its deadline"))
    ctx.report(Outcome(changes=changes))
