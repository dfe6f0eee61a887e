"""The lab provider: hosts of the local lab (burst.lab) as instances.

`launch` creates one lab host per instance (namespace, veth, its own sshd, dockerd and
hostname) and returns at once with the instances PENDING; an instance is RUNNING once
its boot delay has passed and its dockerd and sshd answer (a host with the broken-sshd
knob is RUNNING without sshd, as a cloud VM whose boot hung after the hypervisor
reported it running). The instance id is the lab host's name, the address its lab IP.

Options (all optional):
  lab                  the lab's name (default "burstlab")
  lab_dir              the lab's directory (default /var/lib/burst-lab/<lab>)
  boot_delay_seconds   seconds before a new host's sshd and dockerd start (default 0)
  sshd_broken_hosts    the first N hosts this lab ever launches never start sshd (default 0)
  puppet_broken_hosts  the next N hosts get a variable their Puppet run refuses (default 0)
  max_hosts            launched hosts the lab may hold at once (default 64)
  (the lab state's "zone_capacity" {zone: n}, which drills and the contract suite
  write into the lab's state file, caps the hosts one zone holds)
  instance_types       like the fake provider's; default one type sized as this machine
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ClassVar

from burst.lab import DEFAULT_NAME, Lab, LabNotUpError
from burst.provider import (
    TAG_BATCH,
    Instance,
    InstanceNotFoundError,
    InstanceState,
    InstanceType,
    InsufficientCapacityError,
    LaunchRequest,
    NotOwnedError,
    Provider,
    ProviderConfigError,
    ProviderContext,
)
from burst_providers.lab.errors import map_lab_errors

ROLE = "launched"
ZONE = "lab"


class LabProvider(Provider):
    name: ClassVar[str] = "lab"
    max_batch: ClassVar[int] = 100

    def __init__(self, context: ProviderContext, options: Mapping[str, Any]):
        super().__init__(context, options)
        try:
            self.boot_delay = float(options.get("boot_delay_seconds", 0.0))
            self.sshd_broken_hosts = int(options.get("sshd_broken_hosts", 0))
            self.puppet_broken_hosts = int(options.get("puppet_broken_hosts", 0))
            self.max_hosts = int(options.get("max_hosts", 64))
        except (TypeError, ValueError):
            raise ProviderConfigError(
                "lab: boot_delay_seconds, sshd_broken_hosts, puppet_broken_hosts and max_hosts must be numbers",
                provider=self.name
            ) from None
        with map_lab_errors():
            self.lab = Lab(options.get("lab", DEFAULT_NAME), options.get("lab_dir"))
        self._types = [
            InstanceType(name=t["name"], cpu=t["cpu"], memory_gib=t["memory_gib"],
                         price_per_hour=t.get("price_per_hour", 0.0), zones=tuple(t.get("zones", (ZONE,))))
            for t in options.get("instance_types", [])
        ] or [InstanceType(name="lab.host", cpu=float(os.cpu_count() or 1), memory_gib=_memory_gib(),
                           price_per_hour=0.0, zones=(ZONE,))]  # fmt: skip

    def instance_types(self) -> Sequence[InstanceType]:
        return list(self._types)

    def launch(self, req: LaunchRequest) -> list[Instance]:
        if not 1 <= req.count <= self.max_batch:
            raise ValueError(f"lab: launch count {req.count} outside 1..{self.max_batch}")
        itype = next((t for t in self._types if t.name == req.instance_type), None)
        if itype is None:
            raise ProviderConfigError(f"lab: unknown instance type {req.instance_type!r}", provider=self.name)
        if req.zone not in itype.zones:
            raise ProviderConfigError(f"lab: {req.instance_type} is not offered in zone {req.zone!r}", provider=self.name)
        with map_lab_errors():
            if not self.lab.is_up():
                raise LabNotUpError(f"lab {self.lab.name!r} is not up: run `burst lab up --name {self.lab.name}`")
            st = self.lab.state.read()
            known = st["requests"].get(req.request_id)
            count = req.count
            if known is None:  # capacity is checked for new requests only
                count = min(req.count, self._room(st, req.zone))
            if count == 0:
                raise InsufficientCapacityError(
                    f"lab: no room for {req.instance_type} in zone {req.zone}", code="LabFull", provider=self.name
                )
            tags = {**self.owner_tags(req.tags), TAG_BATCH: req.request_id,
                    "lab:instance-type": req.instance_type, "lab:zone": req.zone}  # fmt: skip
            names = self.lab.add_hosts(
                req.request_id, count, boot_delay=self.boot_delay, tags=tags,
                broken_sshd_budget=self.sshd_broken_hosts, broken_puppet_budget=self.puppet_broken_hosts,
            )  # fmt: skip
            instances = self.describe(names)
        if known is None and count < req.count:
            raise InsufficientCapacityError(
                f"lab: only {count} of {req.count} hosts had room in zone {req.zone}",
                created=instances, code="LabFull", provider=self.name,
            )
        return instances

    def describe(self, ids: Sequence[str]) -> list[Instance]:
        with map_lab_errors():
            hosts = self.lab.state.read()["hosts"] if self.lab.state.exists() else {}
            return [self._instance(hosts[i]) for i in ids if i in hosts and hosts[i]["role"] == ROLE]

    def list(self) -> list[Instance]:
        with map_lab_errors():
            hosts = self.lab.state.read()["hosts"] if self.lab.state.exists() else {}
            return [self._instance(r) for r in hosts.values() if r["role"] == ROLE and self._owns(r)]

    def terminate(self, ids: Sequence[str], *, request_id: str) -> None:
        with map_lab_errors():
            hosts = self.lab.state.read()["hosts"] if self.lab.state.exists() else {}
            known = [hosts[i] for i in ids if i in hosts]
            foreign = [r["name"] for r in known if r["role"] != ROLE or not self._owns(r)]
            if foreign:
                raise NotOwnedError(
                    f"lab: refusing to terminate {', '.join(foreign)}: not tagged as cluster {self.cluster}'s",
                    provider=self.name,
                )
            if known:
                with ThreadPoolExecutor(max_workers=min(8, len(known))) as pool:
                    list(pool.map(self.lab.remove_host, [r["name"] for r in known]))

    def host_vars(self, instance_id: str, address: str) -> dict[str, Any]:
        with map_lab_errors():
            if self.lab.host_record(instance_id) is None:
                raise InstanceNotFoundError(f"lab: no instance {instance_id}", provider=self.name)
            return dict(self.lab.host(instance_id).vars)

    def _room(self, st: Mapping[str, Any], zone: str) -> int:
        """How many more hosts fit: `max_hosts` over the whole lab, and a zone's own
        capacity if the lab state sets one (`zone_capacity`, a stock-out drill knob)."""
        launched = [r for r in st["hosts"].values() if r["role"] == ROLE]
        room = self.max_hosts - len(launched)
        capacity = st.get("zone_capacity", {}).get(zone)
        if capacity is not None:
            room = min(room, capacity - sum(1 for r in launched if r["tags"].get("lab:zone") == zone))
        return max(0, room)

    def _owns(self, rec: Mapping[str, Any]) -> bool:
        return rec["tags"].get("burst:cluster") == self.cluster

    def _instance(self, rec: Mapping[str, Any]) -> Instance:
        state = InstanceState.RUNNING if self.lab.host_ready(rec["name"]) else InstanceState.PENDING
        return Instance(
            id=rec["name"], provider=self.name, zone=rec["tags"].get("lab:zone", ZONE),
            instance_type=rec["tags"].get("lab:instance-type", self._types[0].name), state=state,
            address=rec["address"], tags=dict(rec["tags"]),
            created_at=datetime.fromtimestamp(rec["created_at"], UTC),
        )  # fmt: skip


def _memory_gib() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return 1.0


__all__ = ["LabProvider"]
