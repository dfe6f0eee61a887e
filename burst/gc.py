"""Leak detection and collection: cloud instances burst owns that no live host holds.

A leak is an instance a tier's provider lists as this cluster's (tagged
`burst:cluster=<cluster>`, not terminated) that the store does not hold for a live
host: either no host ever recorded it, or the host that did is finished
(terminated / released / cancelled) while the instance lives on. Such instances cost
money until somebody notices them; `burst gc` terminates them, the daemon reports them.

Safety, in order of importance:
- only what `provider.list()` returns is ever looked at, and it returns only owned
  instances; `provider.terminate` refuses anything else again (`NotOwnedError`);
- of those, only instances tagged with this store's identity (`burst:store`) can be
  leaks: another store that shares the cluster name (staging beside production)
  launched the others. An instance without the tag (launched before stores had an
  identity) is never collected; terminate it by hand once you know whose it is;
- the clouds are read before the store: burst journals a launch (host `launching`,
  with its request id) before the cloud call, so any instance a listing shows was
  already announced in the store that is read after it. An instance whose launch is
  journaled but whose reply was never recorded (a crash between the call and the
  reply) is not a leak: the next `burst up` or `burst down` claims it by its request id;
- an instance already shutting down for a host the store has finished is not a leak;
- `collect` finds the leaks again just before terminating and acts only on the ones
  that are still leaks, and it journals its intent before each cloud call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from burst.config import Config
from burst.errors import BurstError
from burst.lifecycle import FINAL, HostState
from burst.provider import TAG_BATCH, TAG_BURST, TAG_STORE, InstanceState, ProviderError
from burst.provider.providers import ProviderSet
from burst.store import Host, Store

UNKNOWN = "unknown to the store"


class GcError(BurstError):
    """A tier could not be listed: without its listing nothing can be called a leak."""


@dataclass(frozen=True)
class Leak:
    tier: str
    provider: str
    instance_id: str
    zone: str
    instance_type: str
    state: str
    why: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.provider, self.instance_id

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:  # the daemon journals leaks as strings
        return f"{self.tier}/{self.instance_id} ({self.zone}, {self.instance_type}): {self.why}"


@dataclass
class GcResult:
    terminated: list[Leak] = field(default_factory=list)
    #: leaks that were no longer leaks when looked at again (claimed or gone meanwhile)
    skipped: list[Leak] = field(default_factory=list)
    #: (leak, error) for each instance a provider refused or failed to terminate
    failed: list[tuple[Leak, str]] = field(default_factory=list)


def find_leaks(config: Config, store: Store, providers: ProviderSet | None = None) -> list[Leak]:
    """Every owned, non-terminated instance of every tier that no live host holds."""
    own = providers is None
    providers = providers or ProviderSet(config)
    try:
        listed = []
        for tier in config.tiers:  # the clouds first, then the store (see the module docstring)
            provider = providers.get(tier.name)
            try:
                listed += [(tier.name, inst) for inst in provider.list()]
            except ProviderError as exc:
                raise GcError(f"tier {tier.name}: cannot list its instances ({exc}); nothing was changed") from exc
        mine = [(tier, inst) for tier, inst in listed if inst.tags.get(TAG_STORE) == store.identity]
        return _leaks(mine, store.hosts())
    finally:
        if own:
            providers.close()


def _leaks(listed: Iterable, hosts: Sequence[Host]) -> list[Leak]:
    live = [h for h in hosts if HostState(h.state) not in FINAL]
    held = {(h.provider, h.instance_id) for h in live if h.instance_id}
    finished = {(h.provider, h.instance_id): h for h in hosts if h.instance_id and HostState(h.state) in FINAL}
    # launches journaled whose reply was never recorded: their instances are claimed
    # by request id (the batch tag) on the next pass. For a provider that does not tag
    # the batch, the burst id stands in (coarser, but it fails closed).
    unresolved = [h for h in live if h.state == HostState.LAUNCHING.value and not h.instance_id]
    pending_batches = {h.launch_request_id for h in unresolved if h.launch_request_id}
    pending_bursts = {h.burst_id for h in unresolved}
    leaks: dict[tuple[str, str], Leak] = {}
    for tier, inst in listed:
        key = (inst.provider, inst.id)
        if key in held or key in leaks:
            continue
        batch = inst.tags.get(TAG_BATCH)
        if batch in pending_batches or (batch is None and inst.tags.get(TAG_BURST) in pending_bursts):
            continue
        host = finished.get(key)
        if host is not None and inst.state is InstanceState.STOPPING:
            continue  # terminated by burst, still on its way out
        why = UNKNOWN if host is None else f"host {host.id} is {host.state} in the store"
        leaks[key] = Leak(tier=tier, provider=inst.provider, instance_id=inst.id, zone=inst.zone,
                          instance_type=inst.instance_type, state=inst.state.value, why=why, tags=dict(inst.tags))
    return sorted(leaks.values(), key=lambda x: (x.tier, x.zone, x.instance_id))


def collect(config: Config, store: Store, leaks: Sequence[Leak], request_id: str,
            providers: ProviderSet | None = None) -> GcResult:
    """Terminate these leaks, per tier, in batches the provider accepts.

    They are found again first: only those still leaks are touched (a `burst up`
    may have claimed one since the operator's listing). Each batch journals
    `gc.intent` before its cloud call and `gc.terminated` (or `gc.failed`) after."""
    own = providers is None
    providers = providers or ProviderSet(config)
    result = GcResult()
    try:
        still = {x.key for x in find_leaks(config, store, providers)}
        by_tier: dict[str, list[Leak]] = {}
        for leak in leaks:
            if leak.key in still:
                by_tier.setdefault(leak.tier, []).append(leak)
            else:
                result.skipped.append(leak)
        for tier, group in by_tier.items():
            provider = providers.get(tier)
            size = max(1, provider.max_batch)
            for n, start in enumerate(range(0, len(group), size)):
                batch = group[start:start + size]
                ids = [x.instance_id for x in batch]
                batch_id = f"{request_id}-{tier}-{n}"
                store.journal("gc.intent", f"gc: terminate {len(ids)} leaked instance(s) on {tier}",
                              detail={"request_id": batch_id, "tier": tier, "ids": ids,
                                      "why": {x.instance_id: x.why for x in batch}})
                try:
                    provider.terminate(ids, request_id=batch_id)
                except ProviderError as exc:  # NotOwnedError included: fail closed, say so
                    store.journal("gc.failed", f"gc on {tier}: {type(exc).__name__}: {exc}",
                                  detail={"request_id": batch_id, "tier": tier, "ids": ids,
                                          "code": exc.code or type(exc).__name__})
                    result.failed += [(x, f"{type(exc).__name__}: {exc}") for x in batch]
                    continue
                store.journal("gc.terminated", f"gc: terminated {len(ids)} leaked instance(s) on {tier}",
                              detail={"request_id": batch_id, "tier": tier, "ids": ids})
                result.terminated += batch
        return result
    finally:
        if own:
            providers.close()
