"""Terminate: `terminating -> terminated` (a cloud instance) or `released` (a pool host
handed back), in batches of the provider's limit, the ids journaled before the call.
The provider refuses any instance not tagged as this cluster's (fail closed: the
host goes `terminate_failed` and an operator must look); a failed terminate is
tried again after a pause, since terminate is idempotent."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from hashlib import sha1

from burst.lifecycle import HostState as S
from burst.provider import ProviderError
from burst.reconciler.context import BurstPass, Ctx, Outcome, provider_error
from burst.store import Change, HostRow, Note

#: seconds before a failed terminate is tried again
RETRY_SECONDS = 5.0


def terminate(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    by_tier: dict[str, list[HostRow]] = defaultdict(list)
    for h in hosts:
        by_tier[h.tier].append(h)
    intents: list[Note] = []
    calls = []
    for tier, group in by_tier.items():
        nothing = [h for h in group if not h.instance_id]  # no instance was ever made for these
        if nothing:
            ctx.store.apply([Change(h.id, bp.id, S.TERMINATING, S.TERMINATED) for h in nothing])
        owned = [h for h in group if h.instance_id]
        size = ctx.providers.get(tier).max_batch
        for i in range(0, len(owned), size):
            batch = owned[i:i + size]
            ids = [h.instance_id for h in batch]
            request_id = "t-" + sha1(" ".join(sorted(ids)).encode()).hexdigest()[:24]
            intents.append(Note("terminate.intent", f"terminate {len(ids)} on {tier}", burst_id=bp.id,
                                detail={"request_id": request_id, "ids": ids}))
            calls.append((tier, batch, request_id))
    if intents:
        ctx.store.apply(notes=intents)
    for tier, batch, request_id in calls:
        ctx.submit(bp.id, [h.id for h in batch], lambda token, t=tier, b=batch, r=request_id: _call(ctx, bp, t, b, r),
                   f"terminate {len(batch)} on {tier}")


def _call(ctx: Ctx, bp: BurstPass, tier: str, hosts: list[HostRow], request_id: str) -> None:
    provider = ctx.providers.get(tier)
    try:
        with ctx.tier_slots[tier]:
            provider.terminate([h.instance_id for h in hosts], request_id=request_id)
    except ProviderError as exc:
        ctx.report(Outcome(notes=[provider_error(bp.id, tier, "terminate", exc)],
                           changes=[Change(h.id, bp.id, S.TERMINATING, S.TERMINATE_FAILED,
                                           error=f"{type(exc).__name__}: {exc}") for h in hosts]))
        return
    final = S.RELEASED if provider.returns_to_owner else S.TERMINATED
    ctx.report(Outcome(changes=[Change(h.id, bp.id, S.TERMINATING, final) for h in hosts]))


def retry(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    """`terminate_failed -> terminating` once the pause has passed."""
    due = ctx.clock.now() - timedelta(seconds=RETRY_SECONDS)
    ctx.store.apply([Change(h.id, bp.id, S.TERMINATE_FAILED, S.TERMINATING) for h in hosts if h.updated_at <= due])
