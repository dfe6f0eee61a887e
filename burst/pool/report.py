"""Accounting: host-hours each business unit lent to the pool and host-hours bursts
borrowed of its hosts, over a period, with every lease (who borrowed which host,
when, for which event).

Lent hours count the time a host was in the pool, leased or not; borrowed hours the
time a burst held it. An open lending or lease counts up to the end of the period.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlmodel import select

from burst.pool.tables import PoolLease, PoolLending, PoolUnit
from burst.store import Store
from burst.store.models import utcnow


@dataclass
class UnitHours:
    unit: str
    host_hours_lent: float = 0.0
    host_hours_borrowed: float = 0.0
    leases: int = 0


@dataclass
class LeaseLine:
    host: str
    unit: str
    cluster: str
    event: str | None
    burst_id: str | None
    leased_at: datetime
    released_at: datetime | None
    host_hours: float


@dataclass
class PoolReport:
    since: datetime | None
    until: datetime
    units: list[UnitHours] = field(default_factory=list)
    leases: list[LeaseLine] = field(default_factory=list)

    @property
    def total_lent(self) -> float:
        return sum(u.host_hours_lent for u in self.units)

    @property
    def total_borrowed(self) -> float:
        return sum(u.host_hours_borrowed for u in self.units)

    def as_dict(self) -> dict:
        def iso(t):
            return t.isoformat() if t else None
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "units": [{**asdict(u), "host_hours_lent": round(u.host_hours_lent, 3),
                       "host_hours_borrowed": round(u.host_hours_borrowed, 3)} for u in self.units],
            "total": {"host_hours_lent": round(self.total_lent, 3), "host_hours_borrowed": round(self.total_borrowed, 3)},
            "leases": [{**asdict(x), "leased_at": iso(x.leased_at), "released_at": iso(x.released_at),
                        "host_hours": round(x.host_hours, 3)} for x in self.leases],
        }


def _hours(start: datetime, end: datetime | None, since: datetime | None, until: datetime) -> float:
    """Hours of [start, end) inside [since, until)."""
    lo = max(start, since) if since else start
    hi = min(end or until, until)
    return max(0.0, (hi - lo).total_seconds() / 3600)


def pool_report(store: Store, *, since: datetime | None = None, until: datetime | None = None) -> PoolReport:
    until = until or utcnow()
    with store.session() as s:
        units = {u.name: UnitHours(u.name) for u in s.exec(select(PoolUnit).order_by(PoolUnit.name))}
        lendings = s.exec(select(PoolLending).where(PoolLending.lent_at < until))
        leases = s.exec(select(PoolLease).where(PoolLease.leased_at < until).order_by(PoolLease.leased_at,
                                                                                       PoolLease.host))
        report = PoolReport(since, until)
        for lending in lendings:
            unit = units.setdefault(lending.unit, UnitHours(lending.unit))
            unit.host_hours_lent += _hours(lending.lent_at, lending.returned_at, since, until)
        for lease in leases:
            if since and lease.released_at and lease.released_at <= since:
                continue
            hours = _hours(lease.leased_at, lease.released_at, since, until)
            unit = units.setdefault(lease.unit, UnitHours(lease.unit))
            unit.host_hours_borrowed += hours
            unit.leases += 1
            report.leases.append(LeaseLine(lease.host, lease.unit, lease.cluster, lease.event, lease.burst_id,
                                           lease.leased_at, lease.released_at, hours))
    report.units = sorted(units.values(), key=lambda u: u.unit)
    return report
