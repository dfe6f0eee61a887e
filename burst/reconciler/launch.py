"""Launch: `requested -> launching`, journaled with the batch's request id before the
cloud call, then the call; and the crash path: a host found `launching` with no
instance is asked for again with the same request id (ClientToken on both clouds),
which the provider answers with the instances the first call made.

Errors, by class: no stock marks the offering exhausted (the slot's replacement
walks on to the next zone, type or tier at once); a used-up quota exhausts the
whole tier; refused credentials or a wrong configuration halt the burst (nothing is
launched anywhere else: the operator must look); throttling and transient errors
leave the hosts launching, asked again after a pause, with the same request id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from hashlib import sha1

from burst.lifecycle import HostState as S
from burst.provider import (
    TAG_BATCH,
    TAG_BURST,
    TAG_EVENT,
    TAG_STORE,
    Instance,
    InsufficientCapacityError,
    LaunchRequest,
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    QuotaExceededError,
)
from burst.reconciler.context import BurstPass, Ctx, Outcome, provider_error
from burst.reconciler.poll import poll
from burst.store import Change, HostRow, Note

#: seconds before a launch that hit a throttling or transient error is asked again
RETRY_SECONDS = 2.0


def launch(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    """Requested hosts: journal each batch's intent, then call, one call per batch."""
    groups: dict[tuple[str, str, str], list[HostRow]] = defaultdict(list)
    for h in hosts:
        groups[(h.tier, h.zone, h.instance_type)].append(h)
    exhausted = ctx.offerings.exhausted(bp.id)
    changes: list[Change] = []
    batches: list[tuple[str, list[HostRow]]] = []
    for offering, group in groups.items():
        if offering in exhausted:  # known to have no stock: fail at once, the replacement moves on
            for h in group:
                changes += [Change(h.id, bp.id, S.REQUESTED, S.LAUNCHING),
                            Change(h.id, bp.id, S.LAUNCHING, S.LAUNCH_FAILED,
                                   error=f"no stock of {offering[2]} in {offering[1]}")]
            continue
        size = ctx.providers.get(offering[0]).max_batch
        for i in range(0, len(group), size):
            batch = group[i:i + size]
            request_id = "b-" + sha1(" ".join(sorted(h.id for h in batch)).encode()).hexdigest()[:24]
            batches.append((request_id, batch))
            changes += [Change(h.id, bp.id, S.REQUESTED, S.LAUNCHING,
                               fields={"launch_request_id": request_id, "phase_deadline": ctx.deadline()},
                               detail={"request_id": request_id, "count": len(batch)}) for h in batch]
    applied = ctx.store.apply(changes)
    for request_id, batch in batches:
        members = [h for h in batch if h.id in applied]
        if members:
            _submit_call(ctx, bp, members, request_id)


def follow(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    """Launching hosts: those whose call was never answered are asked again; those with
    an instance are polled until it runs."""
    unanswered: dict[str, list[HostRow]] = defaultdict(list)
    for h in hosts:
        if not h.instance_id:
            unanswered[h.launch_request_id].append(h)
    now = ctx.clock.monotonic()
    for request_id, members in unanswered.items():
        if ctx.retry_at.get((bp.id, request_id), 0) <= now:
            _submit_call(ctx, bp, members, request_id)
    polled = [h for h in hosts if h.instance_id]
    if polled:
        poll(ctx, bp, polled)


def _submit_call(ctx: Ctx, bp: BurstPass, members: list[HostRow], request_id: str) -> None:
    ctx.submit(bp.id, [h.id for h in members], lambda token: _call(ctx, bp, members, request_id),
               f"launch {request_id}")


def _call(ctx: Ctx, bp: BurstPass, members: list[HostRow], request_id: str) -> None:
    first = members[0]
    tier = first.tier
    provider = ctx.providers.get(tier)
    req = LaunchRequest(request_id=request_id, count=len(members), instance_type=first.instance_type,
                        zone=first.zone, tags={TAG_BURST: bp.id, TAG_EVENT: bp.burst.event,
                                                          TAG_STORE: ctx.store.identity})
    offering = (tier, first.zone, first.instance_type)
    notes: list[Note] = []
    halted = None
    try:
        with ctx.tier_slots[tier]:
            instances, error = provider.launch(req), None
    except InsufficientCapacityError as exc:
        instances, error = list(exc.created), exc
        notes += ctx.offerings.mark_exhausted(bp.id, [offering], str(exc))
    except QuotaExceededError as exc:  # no zone or type of this tier helps
        instances, error = [], exc
        notes += ctx.offerings.mark_exhausted(bp.id, ctx.offerings.of_tier(tier), f"quota: {exc}")
    except (ProviderAuthError, ProviderConfigError) as exc:  # fatal: nothing elsewhere helps either
        instances, error = [], exc
        halted = f"tier {tier}: {type(exc).__name__}: {exc}"
        notes += ctx.offerings.mark_exhausted(bp.id, ctx.offerings.of_tier(tier), halted)
    except ProviderError as exc:
        if exc.retryable:  # still launching: asked again, with the same request id, after a pause
            ctx.retry_at[(bp.id, request_id)] = ctx.clock.monotonic() + RETRY_SECONDS
            ctx.report(Outcome(notes=[provider_error(bp.id, tier, "launch", exc)]))
            return
        instances, error = [], exc
        notes += ctx.offerings.mark_exhausted(bp.id, [offering], str(exc))
    changes = assign(bp.id, members, instances)
    if error is not None:
        notes.append(provider_error(bp.id, tier, "launch", error))
        assigned = {c.host_id for c in changes}
        changes += [Change(h.id, bp.id, S.LAUNCHING, S.LAUNCH_FAILED, error=f"{type(error).__name__}: {error}")
                    for h in members if h.id not in assigned]
    ctx.report(Outcome(changes=changes, notes=notes,
                       burst_update=(bp.id, f"burst halted: {halted}", {"halted": halted}) if halted else None))


def assign(burst_id: str, members: Sequence[HostRow], instances: Sequence[Instance]) -> list[Change]:
    """Give each host of the batch without an instance one of `instances`,
    deterministically, skipping the instances hosts already hold (a relaunch returns
    the same instances)."""
    held = {h.instance_id for h in members if h.instance_id}
    free = sorted((i for i in instances if i.id not in held), key=lambda i: i.id)
    changes = []
    for host in sorted(members, key=lambda h: h.id):
        if host.instance_id or not free:
            continue
        inst = free.pop(0)
        changes.append(Change(host.id, burst_id, S.LAUNCHING, fields={"instance_id": inst.id},
                              message=f"instance {inst.id} in {inst.zone}"))
    return changes


def resolve_unanswered(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    """Giving back hosts whose launch was never answered: find what each request made
    by its batch tag; it is terminated, or nothing is if the request made nothing."""
    by_request: dict[str, list[HostRow]] = defaultdict(list)
    for h in hosts:
        by_request[h.launch_request_id].append(h)
    for request_id, members in by_request.items():
        ctx.submit(bp.id, [h.id for h in members], lambda token, m=members, r=request_id: _resolve(ctx, bp, m, r),
                   f"resolve {request_id}")


def _resolve(ctx: Ctx, bp: BurstPass, members: list[HostRow], request_id: str) -> None:
    tier = members[0].tier
    try:
        made = [i for i in ctx.providers.get(tier).list() if i.tags.get(TAG_BATCH) == request_id]
    except ProviderError as exc:  # left launching: a later pass (or `burst down`) asks again
        ctx.report(Outcome(notes=[provider_error(bp.id, tier, "list", exc)]))
        return
    changes = assign(bp.id, members, made)
    changes += [Change(h.id, bp.id, S.LAUNCHING, S.TERMINATING) for h in members]
    ctx.report(Outcome(changes=changes))

