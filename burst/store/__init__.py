"""The state store: bursts, hosts and the journal, behind one small API.

Every host state change goes through `Store.transition`, which checks the edge in the
lifecycle table, compares and bumps the host's version (a concurrent writer gets
`StaleHostError`, never a lost update) and journals the change in the same
transaction.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, select

from burst.errors import StaleHostError, StoreError
from burst.lifecycle import HostState, check_transition
from burst.store.engine import make_engine, migrate
from burst.store.models import Burst, Host, JournalEntry, utcnow

__all__ = ["Store", "Burst", "Host", "JournalEntry", "utcnow", "driver_name", "newest_per_slot"]


def newest_per_slot(hosts: Iterable[Host]) -> dict[int, Host]:
    """The newest attempt of every slot: the host that stands for it now."""
    newest: dict[int, Host] = {}
    for h in hosts:
        if h.slot not in newest or h.attempt > newest[h.slot].attempt:
            newest[h.slot] = h
    return newest


def driver_name() -> str:
    """This process, as a burst driver: host, pid and a nonce (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _dead_local_process(driver: str) -> bool:
    host, _, rest = driver.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _json(detail: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(detail or {}), sort_keys=True, default=str)


class Store:
    def __init__(self, url: str, *, migrate_schema: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if migrate_schema:
            migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    # -- journal -----------------------------------------------------------------

    def journal(self, kind: str, message: str = "", *, burst_id: str | None = None,
                host_id: str | None = None, detail: Mapping[str, Any] | None = None,
                at: datetime | None = None, from_state: str | None = None, to_state: str | None = None,
                session: Session | None = None) -> None:
        entry = JournalEntry(at=at or utcnow(), burst_id=burst_id, host_id=host_id, kind=kind,
                             message=message, detail_json=_json(detail), from_state=from_state,
                             to_state=to_state)
        if session is not None:
            session.add(entry)
            return
        with self.session() as s:
            s.add(entry)

    def journal_entries(self, *, burst_id: str | None = None, host_id: str | None = None,
                        after_id: int = 0, limit: int | None = None, last: int | None = None) -> list[JournalEntry]:
        """Entries oldest first: the first `limit` after `after_id`, or the `last` N."""
        with self.session() as s:
            q = select(JournalEntry).where(JournalEntry.id > after_id)
            if burst_id:
                q = q.where(JournalEntry.burst_id == burst_id)
            if host_id:
                q = q.where(JournalEntry.host_id == host_id)
            if last:
                return list(reversed(list(s.exec(q.order_by(JournalEntry.id.desc()).limit(last)))))
            q = q.order_by(JournalEntry.id)
            if limit:
                q = q.limit(limit)
            return list(s.exec(q))

    # -- bursts ------------------------------------------------------------------

    def create_burst(self, burst: Burst, hosts: Sequence[Host]) -> Burst:
        """The burst, its plan and every planned host, in one transaction: either all
        are journaled before the first cloud call, or none."""
        with self.session() as s:
            existing = s.exec(select(Burst).where(Burst.event == burst.event,
                                                  Burst.status.in_(("active", "draining")))).first()
            if existing is not None:
                raise StoreError(f"event {burst.event!r} already has burst {existing.id} ({existing.status})")
            s.add(burst)
            s.flush()
            for host in hosts:
                s.add(host)
            self.journal("burst.created", f"burst {burst.id} for event {burst.event}: {len(hosts)} hosts planned",
                         burst_id=burst.id, detail={"hosts": len(hosts)}, session=s)
        return burst

    def live_burst(self, event: str) -> Burst | None:
        """The event's burst that is not down yet, if any."""
        with self.session() as s:
            return s.exec(select(Burst).where(Burst.event == event, Burst.status.in_(("active", "draining")))
                          .order_by(Burst.created_at.desc())).first()

    def latest_burst(self, event: str) -> Burst | None:
        with self.session() as s:
            return s.exec(select(Burst).where(Burst.event == event).order_by(Burst.created_at.desc())).first()

    def get_burst(self, burst_id: str) -> Burst:
        with self.session() as s:
            burst = s.get(Burst, burst_id)
            if burst is None:
                raise StoreError(f"no burst {burst_id}")
            return burst

    def bursts(self, statuses: Iterable[str] | None = None) -> list[Burst]:
        with self.session() as s:
            q = select(Burst).order_by(Burst.created_at)
            if statuses is not None:
                q = q.where(Burst.status.in_(tuple(statuses)))
            return list(s.exec(q))

    def update_burst(self, burst_id: str, message: str = "", **fields: Any) -> Burst:
        with self.session() as s:
            burst = s.get(Burst, burst_id)
            if burst is None:
                raise StoreError(f"no burst {burst_id}")
            for key, value in fields.items():
                setattr(burst, key, value)
            burst.version += 1
            s.add(burst)
            self.journal("burst.updated", message or ", ".join(f"{k}={v}" for k, v in fields.items()),
                         burst_id=burst_id, detail={k: v for k, v in fields.items()}, session=s)
            return burst

    def claim_burst(self, burst_id: str, driver: str, ttl_seconds: float) -> bool:
        """Take or renew the lease to drive this burst. True when it is ours.

        A lease of a process on this machine that no longer exists is taken over at
        once (a `burst up` killed and run again); any other only when it expired."""
        now = utcnow()
        until = now + timedelta(seconds=ttl_seconds)
        with self.session() as s:
            burst = s.get(Burst, burst_id)
            if burst is None:
                return False
            holder = burst.driver
            free = (holder is None or holder == driver or burst.driver_until is None
                    or burst.driver_until < now or _dead_local_process(holder))
            if not free:
                return False
            result = s.exec(update(Burst).where(Burst.id == burst_id, Burst.driver == holder if holder else
                                                Burst.driver.is_(None)).values(driver=driver, driver_until=until))
            if result.rowcount != 1:
                return False
            if holder != driver:
                self.journal("burst.driver", f"driven by {driver}" + (f" (was {holder})" if holder else ""),
                             burst_id=burst_id, session=s)
            return True

    def release_burst(self, burst_id: str, driver: str) -> None:
        with self.session() as s:
            s.exec(update(Burst).where(Burst.id == burst_id, Burst.driver == driver)
                   .values(driver=None, driver_until=None))

    # -- hosts -------------------------------------------------------------------

    def hosts(self, burst_id: str | None = None, states: Iterable[HostState] | None = None) -> list[Host]:
        with self.session() as s:
            q = select(Host).order_by(Host.slot, Host.attempt)
            if burst_id is not None:
                q = q.where(Host.burst_id == burst_id)
            if states is not None:
                q = q.where(Host.state.in_([HostState(x).value for x in states]))
            return list(s.exec(q))

    def host(self, host_id: str) -> Host:
        with self.session() as s:
            host = s.get(Host, host_id)
            if host is None:
                raise StoreError(f"no host {host_id}")
            return host

    def state_counts(self, burst_id: str) -> dict[str, int]:
        with self.session() as s:
            rows = s.exec(select(Host.state, func.count()).where(Host.burst_id == burst_id).group_by(Host.state))
            return {state: n for state, n in rows}

    def add_host(self, host: Host, message: str) -> Host:
        with self.session() as s:
            s.add(host)
            self.journal("host.added", message, burst_id=host.burst_id, host_id=host.id,
                         detail={"slot": host.slot, "attempt": host.attempt, "tier": host.tier,
                                 "zone": host.zone, "type": host.instance_type}, session=s)
        return host

    def transition(self, host: Host, new: HostState, *, error: str | None = None,
                   detail: Mapping[str, Any] | None = None, at: datetime | None = None,
                   **fields: Any) -> Host:
        """Move `host` (as last read) to `new`, setting `fields`; journaled.

        Raises `IllegalTransitionError` for an edge the lifecycle does not allow and
        `StaleHostError` when the row changed since `host` was read."""
        current = HostState(host.state)
        reason = check_transition(current, new)
        at = at or utcnow()
        values = {"state": HostState(new).value, "updated_at": at, "version": host.version + 1, **fields}
        if error is not None:
            values["error"] = error
        with self.session() as s:
            result = s.exec(update(Host).where(Host.id == host.id, Host.version == host.version).values(**values))
            if result.rowcount != 1:
                raise StaleHostError(f"host {host.id} changed under us (version {host.version})")
            message = f"{current.value} -> {HostState(new).value}: {reason}"
            if error:
                message += f" ({error})"
            self.journal("host.transition", message, burst_id=host.burst_id, host_id=host.id,
                         detail={**(detail or {}), **({"error": error} if error else {})}, at=at,
                         from_state=current.value, to_state=HostState(new).value, session=s)
            return s.get(Host, host.id)

    def transition_many(self, hosts: Sequence[Host], new: HostState, *, detail: Mapping[str, Any] | None = None,
                        **fields: Any) -> list[Host]:
        """`transition` for a batch, in one transaction: all move or none do (used to
        journal a launch batch's intent before its single cloud call)."""
        at = utcnow()
        new = HostState(new)
        with self.session() as s:
            for host in hosts:
                current = HostState(host.state)
                reason = check_transition(current, new)
                values = {"state": new.value, "updated_at": at, "version": host.version + 1, **fields}
                result = s.exec(update(Host).where(Host.id == host.id, Host.version == host.version).values(**values))
                if result.rowcount != 1:
                    raise StaleHostError(f"host {host.id} changed under us (version {host.version})")
                self.journal("host.transition", f"{current.value} -> {new.value}: {reason}", burst_id=host.burst_id,
                             host_id=host.id, detail=detail, at=at, from_state=current.value, to_state=new.value,
                             session=s)
            ids = [h.id for h in hosts]
            return list(s.exec(select(Host).where(Host.id.in_(ids)).order_by(Host.id)))

    def record(self, host: Host, message: str, *, detail: Mapping[str, Any] | None = None, **fields: Any) -> Host:
        """Set fields of a host without a state change (e.g. the instance id a launch
        returned); version-checked and journaled like a transition."""
        values = {"updated_at": utcnow(), "version": host.version + 1, **fields}
        with self.session() as s:
            result = s.exec(update(Host).where(Host.id == host.id, Host.version == host.version).values(**values))
            if result.rowcount != 1:
                raise StaleHostError(f"host {host.id} changed under us (version {host.version})")
            self.journal("host.recorded", message, burst_id=host.burst_id, host_id=host.id,
                         detail={**{k: v for k, v in fields.items()}, **(detail or {})}, session=s)
            return s.get(Host, host.id)
