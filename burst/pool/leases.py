"""The burst's side of the pool: claim free lent hosts, give them back.

A claim is atomic. On PostgreSQL the free hosts are locked with `SELECT ... FOR
UPDATE SKIP LOCKED`, a few at a time, so two claims running at once take disjoint
hosts without waiting on each other; the lock re-checks "still lent and free" on the
newest row version. On SQLite the whole claim runs inside one `BEGIN IMMEDIATE`
transaction (burst.store.engine), so claims queue for the write lock. Under both, a
partial unique index refuses a second open lease of one host.

Which hosts: those that fit the asked shape (cpu and memory at least the shape's),
smallest first so big hosts stay for big asks, and among equals spread across
business units, the unit lending the fewest leased hosts first.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, text
from sqlmodel import Session, select

from burst.pool.errors import PoolError
from burst.pool.tables import PoolHost, PoolLease
from burst.store import Store
from burst.store.models import utcnow


@dataclass(frozen=True)
class Shape:
    cpu: float
    memory_gib: float

    @property
    def name(self) -> str:
        return shape_name(self.cpu, self.memory_gib)


def shape_name(cpu: float, memory_gib: float) -> str:
    """The instance type name the pool offers for a host size: pool.8c32g."""
    return f"pool.{cpu:g}c{memory_gib:g}g"


_SHAPE = re.compile(r"^pool\.([0-9.]+)c([0-9.]+)g$")


def parse_shape(name: str) -> Shape | None:
    match = _SHAPE.match(name)
    if match is None:
        return None
    return Shape(float(match.group(1)), float(match.group(2)))


@dataclass(frozen=True)
class Leased:
    """A lease with the host it holds, as the provider reports it."""

    lease: PoolLease
    host: PoolHost

    @property
    def tags(self) -> dict[str, str]:
        return json.loads(self.lease.tags_json)


@dataclass(frozen=True)
class FreeShape:
    shape: Shape
    zones: tuple[str, ...]
    available: int


def free_shapes(store: Store) -> list[FreeShape]:
    """Free lent hosts grouped by size, smallest first."""
    with store.session() as s:
        rows = s.exec(select(PoolHost.cpu, PoolHost.memory_gib, PoolHost.zone, func.count())
                      .where(PoolHost.lent.is_(True), PoolHost.lease_id.is_(None))
                      .group_by(PoolHost.cpu, PoolHost.memory_gib, PoolHost.zone))
        grouped: dict[Shape, dict[str, int]] = {}
        for cpu, memory, zone, count in rows:
            grouped.setdefault(Shape(cpu, memory), {})[zone] = count
    return [FreeShape(shape, tuple(sorted(zones)), sum(zones.values()))
            for shape, zones in sorted(grouped.items(), key=lambda kv: (kv[0].cpu, kv[0].memory_gib))]


def leases_of_request(store: Store, cluster: str, request_id: str) -> list[Leased]:
    with store.session() as s:
        return _leases_of_request(s, cluster, request_id)


def _leases_of_request(s: Session, cluster: str, request_id: str) -> list[Leased]:
    rows = s.exec(select(PoolLease, PoolHost).join(PoolHost, PoolHost.name == PoolLease.host)
                  .where(PoolLease.cluster == cluster, PoolLease.request_id == request_id)
                  .order_by(PoolLease.leased_at, PoolLease.host))
    return [Leased(lease, host) for lease, host in rows]


def claim(store: Store, *, cluster: str, request_id: str, count: int, shape: Shape, zone: str | None,
          instance_type: str, tags: Mapping[str, str], at: datetime | None = None) -> tuple[list[Leased], bool]:
    """Lease up to `count` free lent hosts that fit `shape` for `request_id`.

    Idempotent: when `request_id` already holds leases, those are returned and
    nothing new is claimed. Returns (leases, complete)."""
    if count < 1:
        raise PoolError(f"cannot lease {count} hosts")
    at = at or utcnow()
    with store.session() as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        if postgres:
            # two calls with one request id (a retry racing the first try) queue here,
            # so the second sees the first's leases; SQLite's BEGIN IMMEDIATE does this
            s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{cluster}/{request_id}"})
        earlier = _leases_of_request(s, cluster, request_id)
        if earlier:
            return earlier, len(earlier) >= count
        candidates = _ordered_candidates(s, shape, zone)
        taken: list[PoolHost] = []
        while len(taken) < count and candidates:
            # Lock (at most) as many as are still wanted: never hold more hosts than
            # needed, so a concurrent claim is not refused capacity it could have had.
            batch, candidates = candidates[:count - len(taken)], candidates[count - len(taken):]
            q = select(PoolHost).where(PoolHost.name.in_(batch), PoolHost.lent.is_(True),
                                       PoolHost.lease_id.is_(None))
            if postgres:
                q = q.with_for_update(skip_locked=True)
            got = {h.name: h for h in s.exec(q)}
            taken.extend(got[name] for name in batch if name in got)
        leased = []
        for host in taken:
            lease = PoolLease(id=uuid.uuid4().hex, host=host.name, unit=host.unit, cluster=cluster,
                              request_id=request_id, instance_type=instance_type, zone=host.zone,
                              event=tags.get("burst:event"), burst_id=tags.get("burst:burst-id"),
                              tags_json=json.dumps({**dict(tags), "burst:pool-unit": host.unit}, sort_keys=True),
                              leased_at=at)
            host.lease_id = lease.id
            s.add(lease)
            s.add(host)
            leased.append(Leased(lease, host))
        s.flush()
        if leased:
            store.journal("pool.leased", f"cluster {cluster} leases {len(leased)} of {count} asked "
                          f"({shape.name}): {', '.join(x.host.name for x in leased)}",
                          burst_id=tags.get("burst:burst-id"),
                          detail={"cluster": cluster, "request_id": request_id, "hosts": [x.host.name for x in leased],
                                  "asked": count, "event": tags.get("burst:event")}, at=at, session=s)
    return leased, len(leased) >= count


def _ordered_candidates(s: Session, shape: Shape, zone: str | None) -> list[str]:
    """Free fitting hosts in the order they should be taken (see the module doc)."""
    q = select(PoolHost.name, PoolHost.unit, PoolHost.cpu, PoolHost.memory_gib).where(
        PoolHost.lent.is_(True), PoolHost.lease_id.is_(None),
        PoolHost.cpu >= shape.cpu, PoolHost.memory_gib >= shape.memory_gib)
    if zone:
        q = q.where(PoolHost.zone == zone)
    rows = list(s.exec(q.order_by(PoolHost.cpu, PoolHost.memory_gib, PoolHost.unit, PoolHost.name)))
    leased_per_unit = dict(s.exec(select(PoolHost.unit, func.count()).where(PoolHost.lease_id.is_not(None))
                                  .group_by(PoolHost.unit)).all())
    # rank within (size, unit): the unit's 1st free host of this size, its 2nd...
    rank: dict[tuple, int] = {}
    keyed = []
    for name, unit, cpu, memory in rows:
        k = (cpu, memory, unit)
        rank[k] = rank.get(k, -1) + 1
        keyed.append(((cpu, memory, rank[k] + leased_per_unit.get(unit, 0), unit, name), name))
    return [name for _, name in sorted(keyed)]


@dataclass(frozen=True)
class ReleaseCheck:
    """What a release found, before it changes anything."""

    release: list[str]
    already_released: list[str]
    unknown: list[str]


def release(store: Store, *, cluster: str, names: Sequence[str], request_id: str,
            at: datetime | None = None) -> ReleaseCheck:
    """Close the open leases `cluster` holds on `names`.

    Checked before any change, raising `NotOwned` (a PoolError subclass below) for a
    host leased by another cluster, or never leased by this one. A host whose lease
    by this cluster is already closed counts as done; an unknown host name too."""
    at = at or utcnow()
    with store.session() as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        release_now, done, unknown = [], [], []
        # sorted: two releases lock hosts in one order and cannot deadlock
        for name in sorted(set(names)):
            q = select(PoolHost).where(PoolHost.name == name)
            if postgres:
                q = q.with_for_update()
            host = s.exec(q).first()
            open_lease = s.get(PoolLease, host.lease_id) if host is not None and host.lease_id else None
            if open_lease is not None:
                if open_lease.cluster != cluster:
                    raise NotLeasedByCluster(f"pool host {name!r} is leased by cluster {open_lease.cluster!r}, "
                                             f"not {cluster!r}")
                release_now.append((host, open_lease))
                continue
            ours = s.exec(select(PoolLease.id).where(PoolLease.host == name, PoolLease.cluster == cluster)
                          .limit(1)).first()
            if ours is not None:
                done.append(name)
            elif host is None:
                unknown.append(name)
            else:
                raise NotLeasedByCluster(f"pool host {name!r} is not leased by burst cluster {cluster!r}")
        for host, lease in release_now:
            lease.released_at, lease.release_request_id = at, request_id
            host.lease_id = None
            back_to_owner = not host.lent
            if back_to_owner:
                host.recalled_at = None
            s.add(lease)
            s.add(host)
            store.journal("pool.released",
                          f"cluster {cluster} releases {host.name} ({host.unit})"
                          + (": recalled, back with its owner" if back_to_owner else ": free in the pool again"),
                          burst_id=lease.burst_id,
                          detail={"host": host.name, "unit": host.unit, "lease": lease.id, "event": lease.event,
                                  "request_id": request_id, "recalled": back_to_owner}, at=at, session=s)
    return ReleaseCheck([h.name for h, _ in release_now], done, unknown)


def open_leases(store: Store, *, cluster: str | None = None, names: Sequence[str] | None = None) -> list[Leased]:
    with store.session() as s:
        q = (select(PoolLease, PoolHost).join(PoolHost, PoolHost.name == PoolLease.host)
             .where(PoolLease.released_at.is_(None)).order_by(PoolLease.host))
        if cluster is not None:
            q = q.where(PoolLease.cluster == cluster)
        if names is not None:
            q = q.where(PoolLease.host.in_(list(names)))
        return [Leased(lease, host) for lease, host in s.exec(q)]


def last_leases(store: Store, *, cluster: str, names: Sequence[str]) -> list[Leased]:
    """For each named host, as `cluster` sees it: its open lease by `cluster`, or
    else `cluster`'s newest closed lease of it (a host handed back, even if another
    cluster holds it now). Hosts `cluster` never leased are left out."""
    with store.session() as s:
        out = []
        for name in dict.fromkeys(names):
            host = s.get(PoolHost, name)
            if host is None:
                continue
            lease = s.get(PoolLease, host.lease_id) if host.lease_id else None
            if lease is None or lease.cluster != cluster:
                lease = s.exec(select(PoolLease).where(PoolLease.host == name, PoolLease.cluster == cluster,
                                                       PoolLease.released_at.is_not(None))
                               .order_by(PoolLease.leased_at.desc())).first()
            if lease is not None:
                out.append(Leased(lease, host))
        return out


def free_host_sizes(store: Store) -> list[tuple[float, float, str]]:
    """(cpu, memory_gib, zone) of every free lent host."""
    with store.session() as s:
        return [tuple(r) for r in s.exec(select(PoolHost.cpu, PoolHost.memory_gib, PoolHost.zone)
                                         .where(PoolHost.lent.is_(True), PoolHost.lease_id.is_(None)))]


class NotLeasedByCluster(PoolError):
    """The host is not leased by this cluster: burst will not release it."""
