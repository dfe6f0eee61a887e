"""The reconciler: drives every host of every live burst through its lifecycle.

One pass reads the store, and for each host that is not already being worked on
starts the one step its state calls for; the steps run on a thread pool and report
back through the store. Hosts move on their own: a host that is running starts
initialising at the next pass (every ~0.25 s), whatever its batch-mates do.

Rules every step keeps:
- the intent is journaled (a state change) before the cloud call, so a crash
  never loses an instance: a host found `launching` is relaunched with the same
  request id, which the provider answers with the instances it already made;
- one host's error never stops the pass; a failed host is cleaned up and its slot
  gets a replacement on the next offering that still has stock;
- every wait has a deadline (the host's `phase_deadline`);
- on the way down, tiers are returned in reverse order (the last, dearest, first)
  and hosts are drained before they leave and leave before they are terminated.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from hashlib import sha1
from typing import Any

from burst.clock import Clock, SystemClock
from burst.config import Config
from burst.errors import StaleHostError
from burst.lifecycle import FAILED, FINAL, HostState
from burst.provider import (
    TAG_BATCH,
    TAG_BURST,
    TAG_EVENT,
    Instance,
    InstanceState,
    InstanceType,
    InsufficientCapacityError,
    LaunchRequest,
    NotOwnedError,
    ProviderError,
    QuotaExceededError,
)
from burst.provider.providers import ProviderSet
from burst.provision import Cluster, HostTarget, Initialiser, event_key
from burst.store import Burst, Host, Store, driver_name, newest_per_slot

log = logging.getLogger(__name__)
S = HostState

#: hosts of one slot that may come up and fail before the slot is given up (the burst
#: then completes short); launches that found no stock do not count
MAX_ATTEMPTS = 3
#: seconds between two describe calls of one tier while hosts are launching
POLL_SECONDS = 1.0
#: seconds a launched instance may be missing from describe (eventual consistency)
#: before the host is failed
UNSEEN_GRACE_SECONDS = 30.0
#: seconds before a failed terminate is tried again
TERMINATE_RETRY_SECONDS = 5.0
#: seconds a drain may take before the host leaves anyway
DRAIN_SECONDS = 60.0
#: seconds a driver's lease on a burst lasts without renewal (renewed every pass)
DRIVER_LEASE_SECONDS = 15.0


class _Sink:
    """Turns per-host reports of a provisioning run into transitions."""

    def __init__(self, rec: "Reconciler", phase: str, ok_state: HostState, fail_state: HostState,
                 field: str | None = None):
        self.rec, self.phase, self.ok_state, self.fail_state, self.field = rec, phase, ok_state, fail_state, field
        self.reported: set[str] = set()

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        host = self.rec.store.host(host_id)
        self.rec.store.journal(f"{self.phase}.{kind}", detail.get("task", kind) if detail else kind,
                               burst_id=host.burst_id, host_id=host_id, detail=detail)

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        if host_id in self.reported:
            return
        self.reported.add(host_id)
        fields = {}
        if ok and self.field and data and data.get(self.field):
            fields[self.field] = data[self.field]
        self.rec._move(host_id, self.ok_state if ok else self.fail_state, error=None if ok else error or "failed",
                       **fields)


class _JournalSink:
    """Journals per-host reports of a step that moves no host (scheduling)."""

    def __init__(self, store: Store, burst_id: str, phase: str):
        self.store, self.burst_id, self.phase = store, burst_id, phase

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        self.store.journal(f"{self.phase}.{kind}", kind, burst_id=self.burst_id, host_id=host_id, detail=detail)

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        self.store.journal(f"{self.phase}.done", "ok" if ok else error, burst_id=self.burst_id, host_id=host_id,
                           detail={"ok": ok, **(data or {})})


class Reconciler:
    def __init__(self, config: Config, store: Store, providers: ProviderSet, initialiser: Initialiser,
                 cluster: Cluster, clock: Clock | None = None, workers: int = 48):
        self.config, self.store, self.providers = config, store, providers
        self.initialiser, self.cluster = initialiser, cluster
        self.clock = clock or SystemClock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="burst-step")
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # host ids (and poll keys) with a step under way here
        self._tier_slots = {t.name: threading.BoundedSemaphore(t.concurrency) for t in config.tiers}
        self._last_poll: dict[str, float] = {}
        self._exhausted: dict[str, set[tuple[str, str, str]]] = {}
        self._spillover_asked: set[str] = set()
        self._spillover_removed: set[str] = set()
        self.driver = driver_name()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for burst in self.store.bursts(("active", "draining")):
            self.store.release_burst(burst.id, self.driver)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._busy)

    # -- the pass ----------------------------------------------------------------

    def pass_once(self) -> None:
        """One look at every live burst this process drives. Never raises for one
        burst's or host's error."""
        for burst in self.store.bursts(("active", "draining")):
            if not self.store.claim_burst(burst.id, self.driver, DRIVER_LEASE_SECONDS):
                continue  # another process drives it; its results show in the store
            try:
                hosts = self.store.hosts(burst.id)
                if burst.status == "active":
                    self._up(burst, hosts)
                else:
                    self._down(burst, hosts)
            except Exception as exc:  # noqa: BLE001  the pass goes on; the journal says what broke
                log.exception("reconcile of burst %s failed", burst.id)
                self.store.journal("reconcile.error", f"{type(exc).__name__}: {exc}", burst_id=burst.id)

    def _idle(self, hosts: Iterable[Host]) -> list[Host]:
        with self._lock:
            return [h for h in hosts if h.id not in self._busy]

    def _submit(self, keys: Sequence[str], fn: Callable[[], None], what: str, burst_id: str) -> None:
        with self._lock:
            self._busy.update(keys)

        def run() -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001  reported, and the hosts are looked at again next pass
                log.exception("%s failed", what)
                self.store.journal("step.error", f"{what}: {type(exc).__name__}: {exc}", burst_id=burst_id)
            finally:
                with self._lock:
                    self._busy.difference_update(keys)

        self._pool.submit(run)

    def _move(self, host_id: str, new: HostState, *, expect: HostState | None = None, **kw: Any) -> Host | None:
        """Transition by id, re-reading if the row moved meanwhile. With `expect`, only
        from that state: a host another step moved on is left alone (None)."""
        for _ in range(3):
            host = self.store.host(host_id)
            if host.state == new.value:
                return host
            if expect is not None and host.state != expect.value:
                return None
            try:
                return self.store.transition(host, new, **kw)
            except StaleHostError:
                continue
        return None

    def _deadline(self, seconds: float | None = None) -> Any:
        return self.clock.now() + timedelta(seconds=seconds or self.config.cluster.phase_timeout_seconds)

    def _target(self, host: Host, burst: Burst) -> HostTarget:
        tier = self.config.tier(host.tier)
        provider = self.providers.get(host.tier)
        vars_ = {**tier.options.get("host_vars", {}),
                 **provider.host_vars(host.instance_id or "", host.address or "")}
        if host.config_hash:
            vars_["burst_config_hash"] = host.config_hash
        return HostTarget(host_id=host.id, address=host.address or "", provider=host.provider, tier=host.tier,
                          instance_id=host.instance_id or "", node_id=host.node_id or "", vars=vars_,
                          labels={"burst.event": event_key(burst.event), "burst.tier": host.tier,
                                  "burst.provider": host.provider})

    def _run_phase(self, burst: Burst, hosts: Sequence[Host], phase: str, to: HostState, ok: HostState,
                   fail: HostState, call: Callable, field: str | None = None, seconds: float | None = None) -> None:
        """Move hosts into `to` and run `call(targets, sink, deadline)` for them in the background."""
        deadline_at = self._deadline(seconds)
        starting = [h for h in hosts if h.state != to.value]
        try:  # one transaction for the batch; host by host only if one of them moved meanwhile
            moved = self.store.transition_many(starting, to, phase_deadline=deadline_at) if starting else []
        except StaleHostError:
            moved = [m for m in (self._move(h.id, to, phase_deadline=deadline_at) for h in starting) if m]
        moved += [h for h in hosts if h.state == to.value]  # a step redone after a crash
        if not moved:
            return
        targets = [self._target(h, burst) for h in moved]
        deadline = time.monotonic() + (seconds or self.config.cluster.phase_timeout_seconds)
        sink = _Sink(self, phase, ok, fail, field)

        def run() -> None:
            try:
                call(targets, sink, deadline)
            finally:  # a host the call forgot to report has failed
                for t in targets:
                    if t.host_id not in sink.reported:
                        sink.done(t.host_id, False, f"{phase}: no result")

        self._submit([h.id for h in moved], run, f"{phase} of {len(moved)} hosts", burst.id)

    # -- up ----------------------------------------------------------------------

    def _up(self, burst: Burst, hosts: list[Host]) -> None:
        idle = self._idle(hosts)
        by_state: dict[str, list[Host]] = defaultdict(list)
        for h in idle:
            by_state[h.state].append(h)

        self._replace_failed(burst, hosts)
        self._clean_up_failed(burst, idle)
        self._retire_superseded(burst, hosts)
        self._launch(burst, by_state[S.REQUESTED.value], hosts)
        self._relaunch(burst, [h for h in by_state[S.LAUNCHING.value] if not h.instance_id], hosts)
        self._poll(burst, [h for h in by_state[S.LAUNCHING.value] if h.instance_id])
        # a step that was under way when a previous process died: go back and redo it
        for h in by_state[S.INITIALISING.value]:
            self._move(h.id, S.RUNNING)
        for h in by_state[S.JOINING.value]:
            self._move(h.id, S.INITIALISED)
        if by_state[S.RUNNING.value]:
            self._run_phase(burst, by_state[S.RUNNING.value], "initialise", S.INITIALISING, S.INITIALISED,
                            S.INIT_FAILED, self.initialiser.initialise, field="config_hash")
        if by_state[S.INITIALISED.value]:
            self._run_phase(burst, by_state[S.INITIALISED.value], "join", S.JOINING, S.READY, S.JOIN_FAILED,
                            self.cluster.join, field="node_id")
        self._spillover(burst, hosts)

    def _replace_failed(self, burst: Burst, hosts: list[Host]) -> None:
        """A failed host's slot gets a replacement, until MAX_ATTEMPTS hosts of the
        slot came up and failed (a launch that found no stock does not count: it
        only moves on to the next offering, and offerings are finite) or no
        offering has stock left; then the slot is given up."""
        for slot, h in newest_per_slot(hosts).items():
            if HostState(h.state) not in FAILED or (h.error or "").endswith("slot given up"):
                continue
            came_up = sum(1 for x in hosts if x.slot == slot and x.instance_id and x.error)
            offering = None if came_up >= MAX_ATTEMPTS else self.next_offering(burst, h)
            if offering is None:
                why = f"{came_up} hosts failed" if came_up >= MAX_ATTEMPTS else "no offering left with stock"
                self.store.record(h, f"slot {slot} given up: {why}", error=f"{h.error}; slot given up")
                continue
            self.add_replacement(burst, h, offering, f"{h.state}: {h.error}")

    def add_replacement(self, burst: Burst, old: Host, offering: tuple[str, str, str], why: str) -> Host:
        """The next attempt of `old`'s slot, on `offering` (tier, zone, type)."""
        tier, zone, itype = offering
        replacement = Host(id=f"{burst.id}-s{old.slot:04d}-a{old.attempt + 1}", burst_id=burst.id, slot=old.slot,
                           attempt=old.attempt + 1, tier=tier, provider=self.config.tier(tier).provider,
                           zone=zone, instance_type=itype)
        return self.store.add_host(replacement, f"replaces {old.id} ({why}) on {tier}/{zone}/{itype}")

    def next_offering(self, burst: Burst, failed: Host, *, next_tier: bool = False) -> tuple[str, str, str] | None:
        """The same offering unless it ran out of stock; then the next zone, the next
        instance type of the tier that is at least as big, then the next tier.
        `next_tier` starts at the tier after the host's (a recalled pool host).
        Tiers that can still be ready before the burst's deadline come first; the
        others only when none of those has stock (late capacity beats none)."""
        exhausted = self._exhausted_offerings(burst.id)
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
                zones = sorted(itype.zones, key=lambda z: z != failed.zone)
                for zone in zones:
                    if (tier.name, zone, itype.name) not in exhausted:
                        return tier.name, zone, itype.name
        return None

    def tier_types(self, tier_name: str) -> list[InstanceType]:
        """The tier's configured instance types, or, when it names none (the pool),
        the shapes its provider offers now."""
        tier = self.config.tier(tier_name)
        if tier.instance_types:
            return [InstanceType(name=t.name, cpu=t.cpu, memory_gib=t.memory_gib, price_per_hour=t.price_per_hour,
                                 zones=tuple(t.zones)) for t in tier.instance_types]
        return list(self.providers.get(tier_name).instance_types())

    def _exhausted_offerings(self, burst_id: str) -> set[tuple[str, str, str]]:
        if burst_id not in self._exhausted:
            found = set()
            for e in self.store.journal_entries(burst_id=burst_id):
                if e.kind == "offering.exhausted":
                    d = json.loads(e.detail_json)
                    found.add((d["tier"], d["zone"], d["type"]))
            self._exhausted[burst_id] = found
        return self._exhausted[burst_id]

    def _mark_exhausted(self, burst_id: str, tier: str, zone: str, itype: str, why: str) -> None:
        key = (tier, zone, itype)
        with self._lock:
            known = self._exhausted_offerings(burst_id)
            if key in known:
                return
            known.add(key)
        self.store.journal("offering.exhausted", f"{tier}/{zone}/{itype}: {why}", burst_id=burst_id,
                           detail={"tier": tier, "zone": zone, "type": itype})

    def _retire_superseded(self, burst: Burst, hosts: list[Host]) -> None:
        """A host whose slot has a newer attempt (a recalled host's replacement) is
        given back; a ready one only once the newer attempt is ready, so the
        service's capacity is never short while it moves."""
        latest = newest_per_slot(hosts)
        retiring = []
        for h in self._idle(hosts):
            state = HostState(h.state)
            if latest[h.slot].id == h.id or state in FINAL or state in FAILED:
                continue
            newest = HostState(latest[h.slot].state)
            if state is not S.READY or newest is S.READY or newest in FINAL:
                retiring.append(h)
        if retiring:
            self._return(burst, retiring)

    def _clean_up_failed(self, burst: Burst, idle: list[Host]) -> None:
        """Failed hosts give back what they hold: leave the swarm, terminate."""
        now = self.clock.now()
        for h in idle:
            state = HostState(h.state)
            if state is S.LAUNCH_FAILED:
                self._move(h.id, S.TERMINATING if h.instance_id else S.CANCELLED)
            elif state is S.INIT_FAILED:
                self._move(h.id, S.TERMINATING)
            elif state is S.JOIN_FAILED:
                self._move(h.id, S.LEAVING)
            elif state is S.TERMINATE_FAILED and now - h.updated_at > timedelta(seconds=TERMINATE_RETRY_SECONDS):
                self._move(h.id, S.TERMINATING)
        self._leave_and_terminate(burst, [h for h in idle if h.state in (S.LEAVING.value, S.TERMINATING.value)])

    # -- launch --------------------------------------------------------------------

    def _launch(self, burst: Burst, requested: list[Host], all_hosts: list[Host]) -> None:
        """Journal each batch's intent (state launching + its request id), then call."""
        groups: dict[tuple[str, str, str], list[Host]] = defaultdict(list)
        for h in requested:
            groups[(h.tier, h.zone, h.instance_type)].append(h)
        for (tier, zone, itype), group in groups.items():
            if (tier, zone, itype) in self._exhausted_offerings(burst.id):
                for h in group:
                    self._move(h.id, S.LAUNCHING)
                    self._move(h.id, S.LAUNCH_FAILED, error=f"no stock of {itype} in {zone}")
                continue
            size = self.providers.get(tier).max_batch
            for i in range(0, len(group), size):
                batch = group[i:i + size]
                request_id = "b-" + sha1(" ".join(sorted(h.id for h in batch)).encode()).hexdigest()[:24]
                try:
                    moved = self.store.transition_many(batch, S.LAUNCHING, launch_request_id=request_id,
                                                       phase_deadline=self._deadline(),
                                                       detail={"request_id": request_id, "count": len(batch)})
                except StaleHostError:
                    continue  # someone else moved one of them: look again next pass
                self._submit([h.id for h in moved], lambda m=moved, r=request_id: self._call_launch(burst, m, r),
                             f"launch {request_id}", burst.id)

    def _relaunch(self, burst: Burst, unresolved: list[Host], all_hosts: list[Host]) -> None:
        """Hosts journaled as launching whose instance we never heard of (a crash
        between the intent and the reply): the same request id finds them."""
        batches: dict[str, list[Host]] = defaultdict(list)
        for h in unresolved:
            batches[h.launch_request_id].append(h)
        for request_id, waiting in batches.items():
            members = [h for h in all_hosts if h.launch_request_id == request_id]
            self._submit([h.id for h in members],
                         lambda m=members, r=request_id: self._call_launch(burst, m, r),
                         f"relaunch {request_id}", burst.id)

    def _call_launch(self, burst: Burst, members: list[Host], request_id: str) -> None:
        first = members[0]
        provider = self.providers.get(first.tier)
        req = LaunchRequest(request_id=request_id, count=len(members), instance_type=first.instance_type,
                            zone=first.zone, tags={TAG_BURST: burst.id, TAG_EVENT: burst.event})
        error: ProviderError | None = None
        with self._tier_slots[first.tier]:
            try:
                instances = provider.launch(req)
            except InsufficientCapacityError as exc:
                instances, error = exc.created, exc
                self._mark_exhausted(burst.id, first.tier, first.zone, first.instance_type, str(exc))
            except QuotaExceededError as exc:  # no zone or type of this tier helps
                instances, error = [], exc
                for t in self.tier_types(first.tier):
                    for zone in t.zones:
                        self._mark_exhausted(burst.id, first.tier, zone, t.name, f"quota: {exc}")
            except ProviderError as exc:
                if exc.retryable:
                    self._provider_error(burst, first.tier, "launch", exc)
                    return  # still launching: the next pass asks again with the same request id
                instances, error = [], exc
                self._mark_exhausted(burst.id, first.tier, first.zone, first.instance_type, str(exc))
        self._assign(members, instances)
        if error is not None:
            self._provider_error(burst, first.tier, "launch", error)
            for h in members:
                fresh = self.store.host(h.id)
                if fresh.state == S.LAUNCHING.value and not fresh.instance_id:
                    self._move(h.id, S.LAUNCH_FAILED, error=f"{type(error).__name__}: {error}")

    def _assign(self, members: list[Host], instances: Sequence[Instance]) -> None:
        """Give each host of the batch one instance, deterministically, keeping the
        ones already recorded (a relaunch returns the same instances)."""
        fresh = sorted((self.store.host(h.id) for h in members), key=lambda h: h.id)
        held = {h.instance_id for h in fresh if h.instance_id}
        free = sorted((i for i in instances if i.id not in held), key=lambda i: i.id)
        for host in fresh:
            if host.instance_id or not free or host.state != S.LAUNCHING.value:
                continue
            inst = free.pop(0)
            self.store.record(host, f"instance {inst.id} in {inst.zone}", instance_id=inst.id)

    def _poll(self, burst: Burst, launching: list[Host]) -> None:
        by_tier: dict[str, list[Host]] = defaultdict(list)
        for h in launching:
            by_tier[h.tier].append(h)
        now = time.monotonic()
        for tier, hosts in by_tier.items():
            key = f"poll:{burst.id}:{tier}"
            if now - self._last_poll.get(key, 0) < POLL_SECONDS:
                continue
            with self._lock:
                if key in self._busy:
                    continue
            self._last_poll[key] = now
            self._submit([key], lambda t=tier, hs=hosts: self._describe(burst, t, hs), f"describe {tier}", burst.id)

    def _describe(self, burst: Burst, tier: str, hosts: list[Host]) -> None:
        try:
            seen = {i.id: i for i in self.providers.get(tier).describe([h.instance_id for h in hosts])}
        except ProviderError as exc:
            self._provider_error(burst, tier, "describe", exc)
            return
        now = self.clock.now()
        for h in hosts:  # read before the call: a host moved on meanwhile is left alone (expect)
            inst = seen.get(h.instance_id)
            if inst is not None and inst.state is InstanceState.RUNNING and inst.address:
                self._move(h.id, S.RUNNING, expect=S.LAUNCHING, address=inst.address, phase_deadline=None)
            elif inst is not None and inst.state in (InstanceState.TERMINATED, InstanceState.STOPPING):
                self._move(h.id, S.LAUNCH_FAILED, expect=S.LAUNCHING,
                           error=f"instance {h.instance_id} is {inst.state.value} while launching")
            elif inst is None and now - h.updated_at > timedelta(seconds=UNSEEN_GRACE_SECONDS):
                # describe is eventually consistent: a new instance may be missing for a while
                self._move(h.id, S.LAUNCH_FAILED, expect=S.LAUNCHING,
                           error=f"instance {h.instance_id} not found for {UNSEEN_GRACE_SECONDS:.0f}s")
            elif h.phase_deadline and now > h.phase_deadline:
                self._move(h.id, S.LAUNCH_FAILED, expect=S.LAUNCHING,
                           error=f"instance {h.instance_id} not running before its deadline")

    def _provider_error(self, burst: Burst, tier: str, op: str, exc: ProviderError) -> None:
        self.store.journal("provider.error", f"{tier} {op}: {type(exc).__name__}: {exc}", burst_id=burst.id,
                           detail={"tier": tier, "op": op, "code": exc.code or type(exc).__name__})

    # -- spillover and completion ---------------------------------------------------

    def _spillover(self, burst: Burst, hosts: list[Host]) -> None:
        """Once a host is ready, ask for the event's extra tasks (the swarm places them
        as nodes join); once every slot is settled, wait for them to run: the burst is
        ready when they do."""
        demand: dict[str, int] = json.loads(burst.demand_json)
        in_place: dict[str, int] = json.loads(burst.plan_json).get("absorbed", {})
        slots = newest_per_slot(hosts)
        ready = [h for h in slots.values() if h.state == S.READY.value]
        if not ready and not in_place:
            return
        if burst.id not in self._spillover_asked:
            for service, replicas in demand.items():
                self.cluster.ensure_spillover(burst.event, service, replicas, in_place.get(service, 0))
            self._spillover_asked.add(burst.id)
            self.store.journal("spillover.requested", f"extra tasks for {burst.event}: {demand}"
                               + (f" ({in_place} in place)" if in_place else ""), burst_id=burst.id,
                               detail={"demand": demand, "in_place": in_place})
        if burst.ready_at is not None:
            return
        settled = all(h.state == S.READY.value or (h.error or "").endswith("slot given up") for h in slots.values())
        key = f"{burst.id}:schedule"
        with self._lock:
            if not settled or key in self._busy:
                return
        self._submit([key], lambda: self._schedule(burst, ready, demand), "schedule", burst.id)

    def _schedule(self, burst: Burst, ready: list[Host], demand: dict[str, int]) -> None:
        sink = _JournalSink(self.store, burst.id, "schedule")
        self.cluster.wait_spillover(burst.event, [self._target(h, burst) for h in ready], sink,
                                    time.monotonic() + self.config.cluster.phase_timeout_seconds)
        running = self.cluster.spillover_running(burst.event)
        if not all(running.get(s, 0) >= n for s, n in demand.items()):
            self.store.journal("spillover.short", f"extra tasks running {running} of {demand}; waiting on",
                               burst_id=burst.id, detail=running)
            return
        short = sum(1 for h in newest_per_slot(self.store.hosts(burst.id)).values() if h.state != S.READY.value)
        self.store.journal("spillover.running", f"extra tasks running: {running}", burst_id=burst.id, detail=running)
        self.store.update_burst(burst.id, f"burst ready: {len(ready)} hosts, extra tasks running {running}"
                                + (f", {short} slots given up" if short else ""), ready_at=self.clock.now())

    # -- down ------------------------------------------------------------------------

    def _down(self, burst: Burst, hosts: list[Host]) -> None:
        if burst.id not in self._spillover_removed:
            self.cluster.remove_spillover(burst.event)
            self._spillover_removed.add(burst.id)
            self.store.journal("spillover.removed", f"spillover of {burst.event} scaled off", burst_id=burst.id)
        idle = self._idle(hosts)
        for h in idle:  # nothing was created for these: done, in any tier
            if h.state == S.REQUESTED.value or (h.state == S.LAUNCH_FAILED.value and not h.instance_id):
                self._move(h.id, S.CANCELLED)
        live = [h for h in self.store.hosts(burst.id) if HostState(h.state) not in FINAL]
        if not live:
            if not self.busy_for(burst):
                self.store.update_burst(burst.id, "burst down: every host returned", status="down",
                                        down_at=self.clock.now())
            return
        # the dearest capacity goes first: the last tier in the config returns first
        order = [t.name for t in self.config.tiers]
        current = max(live, key=lambda h: order.index(h.tier)).tier
        self._return(burst, self._idle([h for h in live if h.tier == current]))

    #: where a host goes first when it is to be given back, by the state it is in
    _RETURN_MOVES = {
        S.LAUNCHING: S.TERMINATING, S.RUNNING: S.TERMINATING, S.INITIALISED: S.TERMINATING,
        S.INITIALISING: S.TERMINATING, S.JOINING: S.LEAVING, S.LAUNCH_FAILED: S.TERMINATING,
        S.INIT_FAILED: S.TERMINATING, S.JOIN_FAILED: S.LEAVING, S.TERMINATE_FAILED: S.TERMINATING,
        S.REQUESTED: S.CANCELLED,
    }

    def _return(self, burst: Burst, hosts: list[Host]) -> None:
        """Give these (idle) hosts back: drain what is in the swarm, leave, terminate."""
        for h in hosts:
            state = HostState(h.state)
            if state is S.LAUNCHING and not h.instance_id:
                self._submit([h.id], lambda h=h: self._resolve_unlaunched(burst, h), f"resolve {h.id}", burst.id)
            elif state is S.TERMINATE_FAILED and self.clock.now() - h.updated_at < timedelta(
                    seconds=TERMINATE_RETRY_SECONDS):
                continue
            elif state in self._RETURN_MOVES:
                self._move(h.id, self._RETURN_MOVES[state])
        ids = {h.id for h in hosts}
        fresh = self._idle([h for h in self.store.hosts(burst.id) if h.id in ids])
        # ready hosts start draining; a drain under way when a previous process died is redone
        draining = [h for h in fresh if h.state in (S.READY.value, S.DRAINING.value)]
        if draining:
            self._run_phase(burst, draining, "drain", S.DRAINING, S.LEAVING, S.LEAVING, self.cluster.drain,
                            seconds=DRAIN_SECONDS)
        self._leave_and_terminate(burst, [h for h in fresh if h.state in (S.LEAVING.value, S.TERMINATING.value)])

    def busy_for(self, burst: Burst) -> bool:
        with self._lock:
            return any(k.startswith(burst.id) or k.startswith(f"poll:{burst.id}") for k in self._busy)

    def _resolve_unlaunched(self, burst: Burst, host: Host) -> None:
        """Down while a launch was never answered: find what the request made by its
        batch tag; terminate that, or nothing if it made nothing."""
        made = [i for i in self.providers.get(host.tier).list() if i.tags.get(TAG_BATCH) == host.launch_request_id]
        batch = [h for h in self.store.hosts(burst.id) if h.launch_request_id == host.launch_request_id]
        self._assign(batch, made)
        self._move(host.id, S.TERMINATING)

    def _leave_and_terminate(self, burst: Burst, hosts: list[Host]) -> None:
        leaving = [h for h in hosts if h.state == S.LEAVING.value]
        if leaving:
            self._submit([h.id for h in leaving], lambda: self._leave(burst, leaving), "leave", burst.id)
        by_tier: dict[str, list[Host]] = defaultdict(list)
        for h in hosts:
            if h.state == S.TERMINATING.value:
                by_tier[h.tier].append(h)
        for tier, group in by_tier.items():
            size = self.providers.get(tier).max_batch
            for i in range(0, len(group), size):
                batch = group[i:i + size]
                self._submit([h.id for h in batch], lambda t=tier, b=batch: self._terminate(burst, t, b),
                             f"terminate {len(batch)} on {tier}", burst.id)

    def _leave(self, burst: Burst, hosts: list[Host]) -> None:
        # a host that never got a node id never joined: nothing to leave
        joined = [h for h in hosts if h.node_id]
        for h in hosts:
            if not h.node_id:
                self._move(h.id, S.TERMINATING)
        if not joined:
            return
        sink = _Sink(self, "leave", S.TERMINATING, S.TERMINATING)
        targets = [self._target(h, burst) for h in joined]
        try:
            self.cluster.leave(targets, sink, time.monotonic() + self.config.cluster.phase_timeout_seconds)
        finally:
            for t in targets:
                if t.host_id not in sink.reported:
                    sink.done(t.host_id, False, "leave: no result")

    def _terminate(self, burst: Burst, tier: str, hosts: list[Host]) -> None:
        provider = self.providers.get(tier)
        ids = [h.instance_id for h in hosts if h.instance_id]
        final = S.RELEASED if provider.returns_to_owner else S.TERMINATED
        if ids:
            request_id = "t-" + sha1(" ".join(sorted(ids)).encode()).hexdigest()[:24]
            self.store.journal("terminate.intent", f"terminate {len(ids)} on {tier}", burst_id=burst.id,
                               detail={"request_id": request_id, "ids": ids})
            with self._tier_slots[tier]:
                try:
                    provider.terminate(ids, request_id=request_id)
                except NotOwnedError as exc:  # fail closed: an operator must look
                    self._provider_error(burst, tier, "terminate", exc)
                    for h in hosts:
                        self._move(h.id, S.TERMINATE_FAILED, error=str(exc))
                    return
                except ProviderError as exc:
                    self._provider_error(burst, tier, "terminate", exc)
                    for h in hosts:
                        self._move(h.id, S.TERMINATE_FAILED, error=f"{type(exc).__name__}: {exc}")
                    return
        for h in hosts:
            self._move(h.id, final if h.instance_id else S.TERMINATED)
