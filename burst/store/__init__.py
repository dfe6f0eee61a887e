"""The state store: bursts, hosts and the journal, behind one small API.

Every host state change checks its edge in the lifecycle table, is guarded (by the
host's version, or by the state the change was decided in: a host another writer
moved on is left alone, never overwritten) and is journaled in the same
transaction. The reconciler's hot path writes in batches (`Store.apply`: many
changes, one transaction, the journal rows in one insert) and reads plain rows
(`Store.host_rows`), so a pass over a thousand hosts stays cheap.

SQLite: write transactions of one process queue on a lock of the process before
`BEGIN IMMEDIATE`, so threads never sleep in SQLite's busy handler; reads use a
deferred `BEGIN`, which in WAL mode never waits for a writer.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from burst.errors import StaleHostError, StoreError
from burst.lifecycle import LIVE, BurstStatus, HostState, check_burst_transition, check_transition
from burst.store.engine import make_engine, migrate
from burst.store.models import Burst, Host, JournalEntry, StoreIdentity, utcnow

__all__ = ["Store", "Burst", "Host", "HostRow", "Change", "Note", "JournalEntry", "utcnow", "driver_name",
           "LiveBurstExists"]

#: a host as the hot path reads it: a plain row with every column of `Host` as an attribute
HostRow = Row
_HOST = Host.__table__
_JOURNAL = JournalEntry.__table__


@dataclass(frozen=True)
class Change:
    """One write to one host, decided while it was in `expect`: applied only if the host
    is still there (else dropped: another step or writer moved it on). `to` None
    records `fields` without a state change."""

    host_id: str
    burst_id: str
    expect: HostState
    to: HostState | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    message: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Note:
    """A journal entry that changes no row (a step's progress, a provider error)."""

    kind: str
    message: str
    burst_id: str | None = None
    host_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


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
    def __init__(self, url: str, *, migrate_schema: bool = True, now: Callable[[], datetime] = utcnow):
        self.url = url
        #: the store's clock: every time it writes (journal, updated_at, created_at) comes from it
        self.now = now
        self.engine = make_engine(url)
        self._reader = self.engine.execution_options(burst_read_only=True)
        self._write_lock = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        if migrate_schema:
            migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @functools.cached_property
    def identity(self) -> str:
        """This store's id, tagged on every instance it launches (`burst:store`)."""
        with self.reading() as s:
            row = s.exec(select(StoreIdentity)).first()
        if row is None:
            raise StoreError("the store has no identity row: was it migrated by this version?")
        return row.id

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any error."""
        with self._write_lock or nullcontext():
            with Session(self.engine, expire_on_commit=False) as session:
                with session.begin():
                    yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """One read-only transaction (never waits for a writer on SQLite's WAL)."""
        with Session(self._reader, expire_on_commit=False) as session:
            with session.begin():
                yield session

    # -- journal -----------------------------------------------------------------

    def journal(self, kind: str, message: str = "", *, burst_id: str | None = None,
                host_id: str | None = None, detail: Mapping[str, Any] | None = None,
                at: datetime | None = None, from_state: str | None = None, to_state: str | None = None,
                session: Session | None = None) -> None:
        entry = JournalEntry(at=at or self.now(), burst_id=burst_id, host_id=host_id, kind=kind,
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
        with self.reading() as s:
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
        are journaled before the first cloud call, or none.

        The database holds at most one live burst per event (a partial unique index):
        of two racing `burst up`, one creates and the other gets `LiveBurstExists`."""
        try:
            with self.session() as s:
                existing = s.exec(select(Burst).where(Burst.event == burst.event, Burst.status.in_(LIVE))).first()
                if existing is None:
                    s.add(burst)
                    s.flush()
                    s.execute(insert(_HOST), [_host_values(h, self.now()) for h in hosts])
                    self.journal("burst.created", f"burst {burst.id} for event {burst.event}: {len(hosts)} hosts "
                                 "planned", burst_id=burst.id, detail={"hosts": len(hosts)}, session=s)
        except IntegrityError:  # the other writer committed first
            raise LiveBurstExists(self.live_burst(burst.event)) from None
        if existing is not None:
            raise LiveBurstExists(existing)
        return burst

    def live_burst(self, event: str) -> Burst | None:
        """The event's burst that is not down yet, if any."""
        with self.reading() as s:
            return s.exec(select(Burst).where(Burst.event == event, Burst.status.in_(LIVE))
                          .order_by(Burst.created_at.desc())).first()

    def latest_burst(self, event: str) -> Burst | None:
        with self.reading() as s:
            return s.exec(select(Burst).where(Burst.event == event).order_by(Burst.created_at.desc())).first()

    def get_burst(self, burst_id: str) -> Burst:
        with self.reading() as s:
            burst = s.get(Burst, burst_id)
            if burst is None:
                raise StoreError(f"no burst {burst_id}")
            return burst

    def bursts(self, statuses: Iterable[BurstStatus] | None = None) -> list[Burst]:
        with self.reading() as s:
            q = select(Burst).order_by(Burst.created_at)
            if statuses is not None:
                q = q.where(Burst.status.in_(tuple(statuses)))
            return list(s.exec(q))

    def update_burst(self, burst_id: str, message: str = "", *, expect: BurstStatus | None = None,
                     **fields: Any) -> Burst:
        """Set fields of a burst, journaled; a status change must be an edge of the
        burst lifecycle. With `expect`, only while the burst is in that status (the row
        is locked meanwhile): else the burst is returned unchanged."""
        with self.session() as s:
            burst = s.get(Burst, burst_id, with_for_update=True)
            if burst is None:
                raise StoreError(f"no burst {burst_id}")
            if expect is not None and burst.status is not expect:
                return burst
            if "status" in fields and fields["status"] != burst.status:
                check_burst_transition(burst.status, fields["status"])
            for key, value in fields.items():
                setattr(burst, key, value)
            burst.version += 1
            s.add(burst)
            self.journal("burst.updated", message or ", ".join(f"{k}={v}" for k, v in fields.items()),
                         burst_id=burst_id, detail={k: v for k, v in fields.items()}, session=s)
            return burst

    def claim_burst(self, burst: Burst, driver: str, ttl_seconds: float) -> bool:
        """Take or renew the lease to drive this burst (as last read). True when it is ours.

        A lease of a process on this machine that no longer exists is taken over at
        once (a `burst up` killed and run again); any other only when it expired. A
        lease of ours with more than half its time left is not written again."""
        now = self.now()
        if burst.driver == driver and burst.driver_until and burst.driver_until - now > timedelta(
                seconds=ttl_seconds / 2):
            return True
        until = now + timedelta(seconds=ttl_seconds)
        with self.session() as s:
            current = s.get(Burst, burst.id)
            if current is None:
                return False
            holder = current.driver
            free = (holder is None or holder == driver or current.driver_until is None
                    or current.driver_until < now or _dead_local_process(holder))
            if not free:
                return False
            result = s.exec(update(Burst).where(Burst.id == burst.id, Burst.driver == holder if holder else
                                                Burst.driver.is_(None)).values(driver=driver, driver_until=until))
            if result.rowcount != 1:
                return False
            if holder != driver:
                self.journal("burst.driver", f"driven by {driver}" + (f" (was {holder})" if holder else ""),
                             burst_id=burst.id, session=s)
            burst.driver, burst.driver_until = driver, until
            return True

    def release_burst(self, burst_id: str, driver: str) -> None:
        with self.session() as s:
            s.exec(update(Burst).where(Burst.id == burst_id, Burst.driver == driver)
                   .values(driver=None, driver_until=None))

    # -- hosts -------------------------------------------------------------------

    def hosts(self, burst_id: str | None = None, states: Iterable[HostState] | None = None) -> list[Host]:
        with self.reading() as s:
            q = select(Host).order_by(Host.slot, Host.attempt)
            if burst_id is not None:
                q = q.where(Host.burst_id == burst_id)
            if states is not None:
                q = q.where(Host.state.in_([HostState(x).value for x in states]))
            return list(s.exec(q))

    def host_rows(self, burst_id: str) -> list[HostRow]:
        """Every host of the burst as a plain row (no ORM object): the hot path's read."""
        with self._reader.connect() as conn:
            return list(conn.execute(_HOST.select().where(_HOST.c.burst_id == burst_id)
                                     .order_by(_HOST.c.slot, _HOST.c.attempt)))

    def host(self, host_id: str) -> Host:
        with self.reading() as s:
            host = s.get(Host, host_id)
            if host is None:
                raise StoreError(f"no host {host_id}")
            return host

    def state_counts(self, burst_id: str) -> dict[str, int]:
        with self.reading() as s:
            rows = s.exec(select(Host.state, func.count()).where(Host.burst_id == burst_id).group_by(Host.state))
            return {HostState(state).value: n for state, n in rows}

    def add_host(self, host: Host, message: str) -> Host:
        self.apply(new_hosts=[(host, message)])
        return host

    def apply(self, changes: Sequence[Change] = (), *, notes: Sequence[Note] = (),
              new_hosts: Sequence[tuple[Host, str]] = ()) -> set[str]:
        """New hosts, host changes (in order) and notes, in one transaction, the journal
        rows in one insert. Returns the ids of the hosts whose change was applied; a
        change whose host left its `expect` state meanwhile is dropped."""
        at = self.now()
        rows: list[dict[str, Any]] = []
        applied: set[str] = set()
        with self.session() as s:
            if new_hosts:
                s.execute(insert(_HOST), [_host_values(h, at) for h, _ in new_hosts])
                rows += [_entry(at, "host.added", why, h.burst_id, h.id,
                                {"slot": h.slot, "attempt": h.attempt, "tier": h.tier, "zone": h.zone,
                                 "type": h.instance_type}) for h, why in new_hosts]
            for group in _runs(changes):
                for c in _write_group(s, group, at):
                    applied.add(c.host_id)
                    rows.append(_change_entry(at, c))
            rows += [_entry(at, n.kind, n.message, n.burst_id, n.host_id, n.detail) for n in notes]
            if rows:
                s.execute(insert(_JOURNAL), rows)
        return applied

    def transition(self, host: Host | HostRow, new: HostState, *, error: str | None = None,
                   detail: Mapping[str, Any] | None = None, at: datetime | None = None,
                   **fields: Any) -> Host:
        """Move `host` (as last read) to `new`, setting `fields`; journaled.

        Raises `IllegalTransitionError` for an edge the lifecycle does not allow and
        `StaleHostError` when the row changed since `host` was read."""
        current = HostState(host.state)
        reason = check_transition(current, new)
        at = at or self.now()
        values = {"state": HostState(new), "updated_at": at, "version": host.version + 1, **fields}
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


class LiveBurstExists(StoreError):
    """The event already has a live burst (`burst`)."""

    def __init__(self, burst: Burst | None):
        self.burst = burst
        what = f"burst {burst.id} ({burst.status.value})" if burst else "a live burst"
        super().__init__(f"event {burst.event if burst else ''!r} already has {what}")


def _host_values(host: Host, at: datetime) -> dict[str, Any]:
    """The row of a new host, stamped with the store's time."""
    return {**{c.name: getattr(host, c.name) for c in _HOST.columns}, "created_at": at, "updated_at": at}


def _entry(at: datetime, kind: str, message: str, burst_id: str | None, host_id: str | None,
           detail: Mapping[str, Any] | None, *, from_state: str | None = None,
           to_state: str | None = None) -> dict[str, Any]:
    return {"at": at, "kind": kind, "message": message, "burst_id": burst_id, "host_id": host_id,
            "detail_json": _json(detail), "from_state": from_state, "to_state": to_state}


def _signature(c: Change) -> tuple:
    return (c.expect, c.to, c.error, tuple(sorted(c.fields)))


def _runs(changes: Sequence[Change]) -> Iterator[list[Change]]:
    """Consecutive changes of one shape (same edge, same fields): each run is one
    statement. Runs keep the order, so two changes of one host apply in order."""
    run: list[Change] = []
    for c in changes:
        if run and _signature(run[-1]) != _signature(c):
            yield run
            run = []
        run.append(c)
    if run:
        yield run


def _write_group(s: Session, group: list[Change], at: datetime) -> list[Change]:
    """Apply a run of same-shaped changes; the ones whose host was still in `expect`."""
    first = group[0]
    if first.to is not None:
        check_transition(first.expect, first.to)
    values: dict[str, Any] = {"updated_at": at, "version": _HOST.c.version + 1}
    if first.to is not None:
        values["state"] = first.to
    if first.error is not None:
        values["error"] = first.error
    if all(c.fields == first.fields for c in group):  # one UPDATE ... WHERE id IN (...) RETURNING id
        done: set[str] = set()
        ids = [c.host_id for c in group]
        for i in range(0, len(ids), 500):
            stmt = (update(_HOST).where(_HOST.c.id.in_(ids[i:i + 500]), _HOST.c.state == first.expect)
                    .values(**values, **first.fields).returning(_HOST.c.id))
            done.update(s.execute(stmt).scalars())
        return [c for c in group if c.host_id in done]
    # per-host values (an address each): one prepared statement, many parameter sets
    stmt = (update(_HOST).where(_HOST.c.id == bindparam("b_id"), _HOST.c.state == first.expect)
            .values(**values, **{k: bindparam(f"b_{k}") for k in first.fields}))
    params = [{"b_id": c.host_id, **{f"b_{k}": v for k, v in c.fields.items()}} for c in group]
    savepoint = s.begin_nested()
    if s.execute(stmt, params).rowcount == len(group):
        savepoint.commit()
        return group
    savepoint.rollback()  # some host moved on meanwhile: find which, one by one (rare)
    applied = []
    for c, p in zip(group, params):
        if s.execute(stmt, [p]).rowcount == 1:
            applied.append(c)
    return applied


def _change_entry(at: datetime, c: Change) -> dict[str, Any]:
    if c.to is None:
        return _entry(at, "host.recorded", c.message, c.burst_id, c.host_id, {**c.fields, **c.detail})
    message = f"{c.expect.value} -> {c.to.value}: {check_transition(c.expect, c.to)}" + (
        f" ({c.error})" if c.error else "")
    return _entry(at, "host.transition", message, c.burst_id, c.host_id,
                  {**c.detail, **({"error": c.error} if c.error else {})},
                  from_state=c.expect.value, to_state=c.to.value)
