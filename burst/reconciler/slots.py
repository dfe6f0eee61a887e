"""Slots and their hosts: the one place host ids are made.

A slot is one planned host. A failed host's replacement (or a recalled pool host's)
takes the same slot with the next attempt number, so a slot never holds two live
hosts for long and "exactly the planned hosts" is checkable."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from burst.config import Config
from burst.plan import Plan
from burst.store import Host, HostRow

H = TypeVar("H", Host, HostRow)


def host_id(burst_id: str, slot: int, attempt: int) -> str:
    return f"{burst_id}-s{slot:04d}-a{attempt}"


def planned_hosts(burst_id: str, plan: Plan) -> list[Host]:
    """Attempt 0 of every slot of the plan."""
    hosts, slot = [], 0
    for group in plan.groups:
        for _ in range(group.count):
            hosts.append(Host(id=host_id(burst_id, slot, 0), burst_id=burst_id, slot=slot, tier=group.tier,
                              provider=group.provider, zone=group.zone, instance_type=group.instance_type))
            slot += 1
    return hosts


def replacement(config: Config, old: HostRow | Host, offering: tuple[str, str, str], *,
                given_up: bool = False) -> Host:
    """The next attempt of `old`'s slot, on `offering` (tier, zone, type)."""
    tier, zone, itype = offering
    return Host(id=host_id(old.burst_id, old.slot, old.attempt + 1), burst_id=old.burst_id, slot=old.slot,
                attempt=old.attempt + 1, tier=tier, provider=config.tier(tier).provider, zone=zone,
                instance_type=itype, given_up=given_up)


def newest_per_slot(hosts: Iterable[H]) -> dict[int, H]:
    """The newest attempt of every slot: the host that stands for it now."""
    newest: dict[int, H] = {}
    for h in hosts:
        if h.slot not in newest or h.attempt > newest[h.slot].attempt:
            newest[h.slot] = h
    return newest
