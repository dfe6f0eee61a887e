"""Which offerings (tier, zone, instance type) a burst may still launch on.

An offering that answered "no stock" (or whose tier's quota is used up) is marked
exhausted for the rest of the burst, journaled so a resumed burst knows it too.
A replacement walks from the failed host's offering to the next zone, the next
instance type of the tier that is at least as big, then the next tier."""

from __future__ import annotations

import json
import threading

from burst.clock import Clock
from burst.config import Config
from burst.provider import InstanceType
from burst.provider.providers import ProviderSet
from burst.store import Burst, HostRow, Note, Store

Offering = tuple[str, str, str]  # tier, zone, instance type


class Offerings:
    def __init__(self, config: Config, store: Store, providers: ProviderSet, clock: Clock):
        self.config, self.store, self.providers, self.clock = config, store, providers, clock
        self._exhausted: dict[str, set[Offering]] = {}
        self._lock = threading.Lock()

    def tier_types(self, tier_name: str) -> list[InstanceType]:
        """The tier's configured instance types, or, when it names none (the pool),
        the shapes its provider offers now."""
        tier = self.config.tier(tier_name)
        if tier.instance_types:
            return [t.to_type() for t in tier.instance_types]
        return list(self.providers.get(tier_name).instance_types())

    def exhausted(self, burst_id: str) -> set[Offering]:
        with self._lock:
            if burst_id not in self._exhausted:
                found = set()
                for e in self.store.journal_entries(burst_id=burst_id):
                    if e.kind == "offering.exhausted":
                        d = json.loads(e.detail_json)
                        found.add((d["tier"], d["zone"], d["type"]))
                self._exhausted[burst_id] = found
            return self._exhausted[burst_id]

    def mark_exhausted(self, burst_id: str, offerings: list[Offering], why: str) -> list[Note]:
        """Mark these exhausted now; the notes that journal it (for the caller's outcome)."""
        known = self.exhausted(burst_id)
        notes = []
        with self._lock:
            for tier, zone, itype in offerings:
                if (tier, zone, itype) not in known:
                    known.add((tier, zone, itype))
                    notes.append(Note("offering.exhausted", f"{tier}/{zone}/{itype}: {why}", burst_id=burst_id,
                                      detail={"tier": tier, "zone": zone, "type": itype}))
        return notes

    def of_tier(self, tier: str) -> list[Offering]:
        return [(tier, zone, t.name) for t in self.tier_types(tier) for zone in t.zones]

    def next_offering(self, burst: Burst, failed: HostRow, *, next_tier: bool = False) -> Offering | None:
        """The same offering unless it ran out of stock; then the next zone, the next
        instance type of the tier that is at least as big, then the next tier.
        `next_tier` starts at the tier after the host's (a recalled pool host).
        Tiers that can still be ready before the burst's deadline come first; the
        others only when none of those has stock (late capacity beats none)."""
        exhausted = self.exhausted(burst.id)
        old = next((t for t in self.tier_types(failed.tier) if t.name == failed.instance_type), None)
        tiers = self.config.tiers
        start = [t.name for t in tiers].index(failed.tier) + (1 if next_tier else 0)
        left = (burst.deadline_at - self.clock.now()).total_seconds()
        candidates = sorted(tiers[start:], key=lambda t: t.ready_seconds > left)  # stable: config order kept
        for tier in candidates:
            types = sorted(self.tier_types(tier.name), key=lambda t: (t.name != failed.instance_type,
                                                                       t.price_per_hour))
            for itype in types:
                if old is None:  # a shape the tier no longer offers: any will do
                    old = itype
                if itype.cpu < old.cpu - 1e-9 or itype.memory_gib < old.memory_gib - 1e-9:
                    continue
                for zone in sorted(itype.zones, key=lambda z: z != failed.zone):
                    if (tier.name, zone, itype.name) not in exhausted:
                        return tier.name, zone, itype.name
        return None
