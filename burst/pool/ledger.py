"""The owner's side of the pool: business units, their hosts, lending and recall.

Every operation is one store transaction: it checks everything first and raises a
one-line `PoolError` before any change, so a refused command leaves the ledger as
it was. Every change is journaled in the same transaction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from burst.errors import InputError
from burst.names import UNIT
from burst.pool.errors import FreezeWindowError, PoolError
from burst.pool.inventory import InventoryHost, read_inventory
from burst.pool.tables import PoolHost, PoolLease, PoolLending, PoolUnit
from burst.store import Store
from burst.store.models import utcnow

#: What `burst pool lend BU` lends when no share and no host is given.
DEFAULT_SHARE = 0.10


def parse_share(text: str) -> float:
    """'10%' or '10' -> 0.10. Above 100% or below 0% is an error."""
    value = text.strip().removesuffix("%").strip()
    try:
        percent = float(value)
    except ValueError:
        raise PoolError(f"share {text!r} is not a percentage (say 10%)") from None
    if not 0 <= percent <= 100 or math.isnan(percent):
        raise PoolError(f"share {text!r} must be between 0% and 100%")
    return percent / 100


def hosts_for_share(total: int, share: float) -> int:
    """How many of `total` hosts a share lends: rounded down, so a unit never lends
    more than it agreed to (a unit of 5 hosts lends none at 10%, one at 20%)."""
    # the small epsilon keeps 30% of 10 at 3, not 2.9999999
    return math.floor(total * share + 1e-9)


# -- import --------------------------------------------------------------------------

@dataclass
class ImportResult:
    unit: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def import_inventory(store: Store, unit: str, inventory: str | Path, *, at: datetime | None = None) -> ImportResult:
    """Make `unit`'s hosts what `inventory` lists: new hosts are added (not lent),
    known ones get their new size and address, hosts no longer listed are removed.

    Refused: a host (or address:port) that belongs to another unit, and removing a
    host that is lent (recall it first)."""
    try:
        UNIT.check(unit)
    except InputError as exc:
        raise PoolError(str(exc)) from None
    listed = read_inventory(inventory)
    if not listed:
        raise PoolError(f"{inventory}: the inventory lists no hosts")
    _check_addresses_unique(inventory, listed)
    at = at or utcnow()
    result = ImportResult(unit)
    with store.session() as s:
        names = [h.name for h in listed]
        for other in s.exec(select(PoolHost).where(PoolHost.name.in_(names), PoolHost.unit != unit)):
            line = next(h.line for h in listed if h.name == other.name)
            raise PoolError(f"{inventory}:{line}: host {other.name!r} already belongs to unit {other.unit!r}; "
                            "a host belongs to one unit")
        for h in listed:
            clash = s.exec(select(PoolHost).where(PoolHost.address == h.address, PoolHost.port == h.port,
                                                  PoolHost.name != h.name)).first()
            if clash is not None:
                raise PoolError(f"{inventory}:{h.line}: host {h.name!r} has the address {h.address}:{h.port} "
                                f"of host {clash.name!r} (unit {clash.unit!r})")
        existing = {h.name: h for h in s.exec(select(PoolHost).where(PoolHost.unit == unit))}
        for gone in sorted(set(existing) - set(names)):
            if existing[gone].lent or existing[gone].lease_id:
                raise PoolError(f"host {gone!r} of unit {unit!r} is lent and no longer in {inventory}: "
                                f"recall it first (burst pool recall {unit} {gone})")
        row = s.get(PoolUnit, unit)
        if row is None:
            s.add(PoolUnit(name=unit, inventory=str(inventory), imported_at=at))
        else:
            row.inventory, row.imported_at = str(inventory), at
            s.add(row)
        s.flush()
        for gone in sorted(set(existing) - set(names)):
            s.delete(existing[gone])
            result.removed.append(gone)
        for h in listed:
            row = existing.get(h.name)
            if row is None:
                s.add(PoolHost(name=h.name, unit=unit, address=h.address, port=h.port, cpu=h.cpu,
                               memory_gib=h.memory_gib, zone=h.zone, vars_json=json.dumps(h.vars, sort_keys=True)))
                result.added.append(h.name)
            else:
                before = (row.address, row.port, row.cpu, row.memory_gib, row.zone, row.vars_json)
                row.address, row.port, row.cpu, row.memory_gib, row.zone = h.address, h.port, h.cpu, h.memory_gib, h.zone
                row.vars_json = json.dumps(h.vars, sort_keys=True)
                if before != (row.address, row.port, row.cpu, row.memory_gib, row.zone, row.vars_json):
                    result.updated.append(h.name)
                s.add(row)
        store.journal("pool.imported", f"unit {unit}: {len(listed)} hosts from {inventory} "
                      f"(+{len(result.added)} ~{len(result.updated)} -{len(result.removed)})",
                      detail={"unit": unit, "inventory": str(inventory), "added": result.added,
                              "updated": result.updated, "removed": result.removed}, at=at, session=s)
    return result


def _check_addresses_unique(inventory: str | Path, listed: Sequence[InventoryHost]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for h in listed:
        other = seen.setdefault((h.address, h.port), h.name)
        if other != h.name:
            raise PoolError(f"{inventory}:{h.line}: hosts {other!r} and {h.name!r} have the same address "
                            f"{h.address}:{h.port}")


# -- lending -------------------------------------------------------------------------

def lend(store: Store, unit: str, *, share: float | None = None, hosts: Sequence[str] = (),
         at: datetime | None = None) -> list[str]:
    """Put hosts of `unit` into the pool: the named `hosts`, or enough hosts (by name
    order) that `share` of the unit's hosts are lent (default 10%, rounded down).
    Returns the hosts newly lent; a host already lent is left as it is. Lending less
    than is lent now takes nothing back: that is what recall does."""
    if share is not None and hosts:
        raise PoolError("give a share or a host list, not both")
    if share is not None and not 0 <= share <= 1:
        raise PoolError(f"share {share:.0%} must be between 0% and 100%")
    at = at or utcnow()
    with store.session() as s:
        row = _unit(s, unit)
        owned = {h.name: h for h in s.exec(select(PoolHost).where(PoolHost.unit == unit).order_by(PoolHost.name))}
        if hosts:
            _check_hosts_of_unit(unit, hosts, owned)
            chosen = [owned[n] for n in dict.fromkeys(hosts) if not owned[n].lent]
        else:
            share = DEFAULT_SHARE if share is None else share
            wanted = hosts_for_share(len(owned), share)
            lent_now = sum(1 for h in owned.values() if h.lent)
            # hosts a burst still holds after a recall come last: they are on their way back
            candidates = sorted((h for h in owned.values() if not h.lent), key=lambda h: (h.lease_id is not None, h.name))
            chosen = candidates[:max(0, wanted - lent_now)]
            row.share = share
            s.add(row)
        for h in chosen:
            h.lent, h.recalled_at = True, None
            s.add(h)
            s.add(PoolLending(host=h.name, unit=unit, lent_at=at))
        names = [h.name for h in chosen]
        total_lent = sum(1 for h in owned.values() if h.lent)
        store.journal("pool.lent", f"unit {unit} lends {len(names)} more hosts ({total_lent} of {len(owned)} lent)"
                      + (f": {', '.join(names)}" if names else ""),
                      detail={"unit": unit, "hosts": names, "share": share, "lent": total_lent, "of": len(owned)},
                      at=at, session=s)
    return names


# -- recall --------------------------------------------------------------------------

#: (store, at) -> the name of the event whose freeze window covers `at`, or None.
FreezeCheck = Callable[[Store, datetime], "str | None"]


def calendar_freeze_check(store: Store, at: datetime) -> str | None:
    """The calendar's freeze windows: the name of the freeze event running at `at`."""
    from burst.calendar.demand import frozen_at
    from burst.calendar.recurrence import occurrences
    from burst.calendar.repo import CalendarRepo

    for event in CalendarRepo(store).list():
        if event.freeze:
            running = frozen_at(occurrences(event, after=at, until=at + timedelta(microseconds=1)), at)
            if running is not None:
                return running.event
    return None


@dataclass
class RecallResult:
    unit: str
    #: back with the owner now (lent, not leased)
    returned: list[str] = field(default_factory=list)
    #: still held by a burst: cluster -> hosts; their bursts must retire them
    leased: dict[str, list[str]] = field(default_factory=dict)
    #: already recalled or never lent but named with nothing to do
    already: list[str] = field(default_factory=list)


def recall(store: Store, unit: str, hosts: Sequence[str] = (), *, force: bool = False,
           freeze_check: FreezeCheck = calendar_freeze_check, at: datetime | None = None) -> RecallResult:
    """Take lent hosts of `unit` back (all its lent hosts when `hosts` is empty).

    A host not leased is back at once. A leased host is marked recalled: it gets no
    new lease, and its lease is closed when the burst holding it releases it (after
    replacing and draining it: `BurstService.retire_hosts`). Refused during an
    event's freeze window unless `force`, and for a host that was never lent."""
    at = at or utcnow()
    frozen = None if force else freeze_check(store, at)
    if frozen:
        raise FreezeWindowError(f"recall refused: event {frozen!r} is in its freeze window "
                                "(use --force to recall anyway)")
    result = RecallResult(unit)
    with store.session() as s:
        _unit(s, unit)
        owned = {h.name: h for h in s.exec(_for_update(s, select(PoolHost).where(PoolHost.unit == unit)
                                                        .order_by(PoolHost.name)))}
        if hosts:
            _check_hosts_of_unit(unit, hosts, owned)
            named = [owned[n] for n in dict.fromkeys(hosts)]
            for h in named:
                if not h.lent and not _ever_lent(s, h.name):
                    raise PoolError(f"host {h.name!r} of unit {unit!r} was never lent: nothing to recall")
        else:
            named = [h for h in owned.values() if h.lent]
        for h in named:
            if not h.lent:
                result.already.append(h.name)
                continue
            h.lent = False
            lending = s.exec(select(PoolLending).where(PoolLending.host == h.name,
                                                       PoolLending.returned_at.is_(None))).first()
            if lending is not None:
                lending.returned_at, lending.ended_by = at, "recall"
                s.add(lending)
            if h.lease_id is None:
                result.returned.append(h.name)
            else:
                h.recalled_at = at
                lease = s.get(PoolLease, h.lease_id)
                result.leased.setdefault(lease.cluster if lease else "?", []).append(h.name)
            s.add(h)
        leased = sorted(n for names in result.leased.values() for n in names)
        store.journal("pool.recalled",
                      f"unit {unit} recalls {len(result.returned) + len(leased)} hosts: "
                      f"{len(result.returned)} back now, {len(leased)} to be retired by their bursts"
                      + (" (forced)" if force else ""),
                      detail={"unit": unit, "returned": result.returned, "leased": result.leased,
                              "already": result.already, "force": force}, at=at, session=s)
    return result


def _ever_lent(s: Session, host: str) -> bool:
    return s.exec(select(PoolLending.id).where(PoolLending.host == host).limit(1)).first() is not None


# -- reading -------------------------------------------------------------------------

@dataclass(frozen=True)
class HostView:
    name: str
    unit: str
    address: str
    port: int
    cpu: float
    memory_gib: float
    zone: str
    #: owned (not in the pool), lent (free in the pool), leased, recalling (leased, recalled)
    status: str
    cluster: str | None = None
    event: str | None = None
    leased_at: datetime | None = None

    def as_dict(self) -> dict:
        return {**self.__dict__, "leased_at": self.leased_at.isoformat() if self.leased_at else None}


def host_views(store: Store, unit: str | None = None) -> list[HostView]:
    with store.session() as s:
        if unit is not None:
            _unit(s, unit)
        q = select(PoolHost).order_by(PoolHost.unit, PoolHost.name)
        if unit is not None:
            q = q.where(PoolHost.unit == unit)
        leases = {lease.id: lease for lease in s.exec(select(PoolLease).where(PoolLease.released_at.is_(None)))}
        out = []
        for h in s.exec(q):
            lease = leases.get(h.lease_id) if h.lease_id else None
            if lease is not None:
                status = "leased" if h.lent else "recalling"
            else:
                status = "lent" if h.lent else "owned"
            out.append(HostView(h.name, h.unit, h.address, h.port, h.cpu, h.memory_gib, h.zone, status,
                                lease.cluster if lease else None, lease.event if lease else None,
                                lease.leased_at if lease else None))
        return out


@dataclass(frozen=True)
class UnitView:
    name: str
    hosts: int
    lent: int
    leased: int
    recalling: int
    share: float | None
    inventory: str
    imported_at: datetime

    def as_dict(self) -> dict:
        return {**self.__dict__, "imported_at": self.imported_at.isoformat()}


def unit_views(store: Store) -> list[UnitView]:
    with store.session() as s:
        units = list(s.exec(select(PoolUnit).order_by(PoolUnit.name)))
    views = host_views(store)
    out = []
    for u in units:
        mine = [v for v in views if v.unit == u.name]
        out.append(UnitView(u.name, len(mine), sum(v.status in ("lent", "leased") for v in mine),
                            sum(v.status == "leased" for v in mine), sum(v.status == "recalling" for v in mine),
                            u.share, u.inventory, u.imported_at))
    return out


# -- helpers -------------------------------------------------------------------------

def _unit(s: Session, unit: str) -> PoolUnit:
    row = s.get(PoolUnit, unit)
    if row is None:
        raise PoolError(f"no business unit {unit!r} in the pool (import its inventory: burst pool import {unit} FILE)")
    return row


def _check_hosts_of_unit(unit: str, hosts: Sequence[str], owned: dict[str, PoolHost]) -> None:
    for name in hosts:
        if name not in owned:
            raise PoolError(f"host {name!r} is not a host of unit {unit!r}")


def _for_update(s: Session, query):
    """Lock the rows read on PostgreSQL (a recall must not race a lease claim);
    SQLite transactions already hold the write lock (BEGIN IMMEDIATE)."""
    if s.get_bind().dialect.name == "postgresql":
        return query.with_for_update()
    return query
