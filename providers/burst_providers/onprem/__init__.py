"""The `onprem` provider: hosts leased from the shared on-prem pool.

A pool host is already up: `launch` leases free lent hosts (see burst.pool.leases
for how they are chosen and how a claim stays atomic) and returns them RUNNING with
their inventory address; `terminate` closes the leases, handing each host back to
the pool (or to its owner, when it was recalled). Instance ids are the hosts'
inventory names.

Options ([tiers.options]):
  store           the pool ledger's database URL, when the pool is shared by
                  clusters with stores of their own (default: the cluster's store)
  price_per_hour  the internal price of a pool host (default 0)
The core adds `instance_types`: the tier's configured types, which may name shapes
(cpu, memory) for launch; the pool otherwise offers `pool.<cpu>c<memory>g` shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from burst.pool import leases as pool_leases
from burst.pool.leases import Leased, Shape, parse_shape
from burst.provider import (
    Instance,
    InstanceState,
    InstanceType,
    InsufficientCapacityError,
    LaunchRequest,
    Provider,
    ProviderConfigError,
    ProviderContext,
)
from burst.store import Store
from burst_providers.onprem.errors import PROVIDER, mapped_errors


class OnPremProvider(Provider):
    name: ClassVar[str] = PROVIDER
    #: terminate hands a host back to the pool (or its owner): it ends `released`
    returns_to_owner: ClassVar[bool] = True

    def __init__(self, context: ProviderContext, options: Mapping[str, Any]):
        super().__init__(context, options)
        url = self.options.get("store") or context.store_url
        if not url:
            raise ProviderConfigError("onprem: no store URL: the pool ledger lives in a store", provider=PROVIDER)
        self.price_per_hour = float(self.options.get("price_per_hour", 0.0))
        with mapped_errors():
            self.store = Store(url)

    def close(self) -> None:
        self.store.close()

    # -- offerings ---------------------------------------------------------------

    def instance_types(self) -> Sequence[InstanceType]:
        """What the pool can lend now, with true `available` counts.

        With instance types configured for the tier, each free host is counted under
        the largest configured type it fits (in that type's zones), so the counts
        never add up to more hosts than are free, and a launch (which takes the
        smallest fitting hosts first) finds them. Without, the free hosts are
        offered grouped by their own size as pool.<cpu>c<memory>g."""
        with mapped_errors():
            if not self._configured:
                return [InstanceType(name=f.shape.name, cpu=f.shape.cpu, memory_gib=f.shape.memory_gib,
                                     price_per_hour=self.price_per_hour, zones=f.zones, available=f.available)
                        for f in pool_leases.free_shapes(self.store)]
            sizes = pool_leases.free_host_sizes(self.store)
        counts = {t.name: 0 for t in self._configured}
        largest_first = sorted(self._configured, key=lambda t: (t.cpu, t.memory_gib), reverse=True)
        for cpu, memory, zone in sizes:
            fits = next((t for t in largest_first if cpu >= t.cpu and memory >= t.memory_gib
                         and (not t.zones or zone in t.zones)), None)
            if fits is not None:
                counts[fits.name] += 1
        return [InstanceType(name=t.name, cpu=t.cpu, memory_gib=t.memory_gib, price_per_hour=t.price_per_hour,
                             zones=t.zones, available=counts[t.name]) for t in self._configured]

    @property
    def _configured(self) -> list[InstanceType]:
        out = []
        for t in self.options.get("instance_types") or ():
            get = t.get if isinstance(t, Mapping) else (lambda k, c=t: getattr(c, k, None))
            out.append(InstanceType(name=str(get("name")), cpu=float(get("cpu")),
                                    memory_gib=float(get("memory_gib")),
                                    price_per_hour=float(get("price_per_hour") or self.price_per_hour),
                                    zones=tuple(get("zones") or ())))
        return out

    def _shape(self, instance_type: str) -> Shape:
        for t in self._configured:
            if t.name == instance_type:
                return Shape(t.cpu, t.memory_gib)
        shape = parse_shape(instance_type)
        if shape is None:
            raise ProviderConfigError(f"onprem: unknown instance type {instance_type!r} "
                                      "(pool shapes are named pool.<cpu>c<memory>g)", provider=PROVIDER)
        return shape

    # -- launch and terminate ----------------------------------------------------

    def launch(self, req: LaunchRequest) -> list[Instance]:
        if not 1 <= req.count <= self.max_batch:  # a caller's bug, as with every provider
            raise ValueError(f"onprem: launch count {req.count} outside 1..{self.max_batch}")
        shape = self._shape(req.instance_type)
        with mapped_errors():
            leased, complete = pool_leases.claim(
                self.store, cluster=self.cluster, request_id=req.request_id, count=req.count, shape=shape,
                zone=req.zone or None, instance_type=req.instance_type, tags=self.owner_tags(req.tags))
        instances = [self._instance(x) for x in leased]
        if not complete:
            raise InsufficientCapacityError(
                f"onprem: {len(instances)} of {req.count} pool hosts of {req.instance_type} free",
                created=instances, provider=PROVIDER)
        return instances

    def terminate(self, ids: Sequence[str], *, request_id: str) -> None:
        with mapped_errors():
            pool_leases.release(self.store, cluster=self.cluster, names=list(ids), request_id=request_id)

    # -- reading -------------------------------------------------------------------

    def describe(self, ids: Sequence[str]) -> list[Instance]:
        """A host leased now is RUNNING (with its holder's tags, whoever holds it); a
        host this cluster leased before is TERMINATED (handed back); a host this
        cluster never leased, or unknown, is left out."""
        with mapped_errors():
            found = pool_leases.last_leases(self.store, cluster=self.cluster, names=list(ids))
        return [self._instance(x) for x in found]

    def list(self) -> list[Instance]:
        with mapped_errors():
            held = pool_leases.open_leases(self.store, cluster=self.cluster)
        return [self._instance(x) for x in held]

    def host_vars(self, instance_id: str, address: str) -> dict[str, Any]:
        """The inventory variables of a pool host (ansible_user, ansible_port...), for
        the provisioning steps."""
        import json

        from burst.pool.tables import PoolHost

        with mapped_errors(), self.store.session() as s:
            host = s.get(PoolHost, instance_id)
            if host is None:
                return {}
            return {**json.loads(host.vars_json), "ansible_host": host.address, "ansible_port": host.port}

    def _instance(self, x: Leased) -> Instance:
        tags = x.tags
        if x.host.recalled_at is not None and x.lease.released_at is None:
            # the owner wants it back: whoever holds it should retire it
            tags["burst:pool-recalled"] = x.host.recalled_at.isoformat()
        return Instance(
            id=x.host.name,
            provider=PROVIDER,
            zone=x.lease.zone,
            instance_type=x.lease.instance_type,
            state=InstanceState.RUNNING if x.lease.released_at is None else InstanceState.TERMINATED,
            address=x.host.address,
            tags=tags,
            created_at=x.lease.leased_at,
        )
