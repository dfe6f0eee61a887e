"""What every step is given: the parts of burst, the in-flight guard, and the one way
a step reports what it found.

Steps run in two halves. The synchronous half runs inside the pass: it journals the
intent (a state change such as `requested -> launching`) before anything leaves the
process. The background half (a cloud call, an Ansible run, a swarm join) runs on the
thread pool and reports through `Outcomes`; the next pass applies those reports in
one transaction and only then releases the step's guard keys, so no pass ever sees a
step finished while its results are still missing from the store (the race that made
the schedule step run twice).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from burst.clock import Clock
from burst.config import Config
from burst.provider import ProviderError
from burst.provider.providers import ProviderSet
from burst.provision import Cluster, HostTarget, Initialiser, event_key
from burst.reconciler.slots import newest_per_slot
from burst.store import Burst, Change, Host, HostRow, Note, Store

log = logging.getLogger(__name__)

Key = tuple[str, Hashable]  # (burst id, host id or step name)


class InFlight:
    """The one guard: a key is held by at most one step at a time.

    Keys are (burst id, host id) for a host and (burst id, step name) for a
    burst-level step. A claim returns a token; a release names it, so a late release
    of a finished step can never free a key a newer step holds."""

    def __init__(self) -> None:
        self._held: dict[Key, object] = {}
        self._lock = threading.Lock()

    def claim(self, keys: Iterable[Key]) -> object | None:
        keys = list(keys)
        with self._lock:
            if any(k in self._held for k in keys):
                return None
            token = object()
            for k in keys:
                self._held[k] = token
            return token

    def release(self, keys: Iterable[Key], token: object) -> None:
        with self._lock:
            for k in keys:
                if self._held.get(k) is token:
                    del self._held[k]

    def busy(self, key: Key) -> bool:
        with self._lock:
            return key in self._held

    def any_for(self, burst_id: str) -> bool:
        with self._lock:
            return any(k[0] == burst_id for k in self._held)


@dataclass
class Outcome:
    """What one background step found: written by the next pass in one transaction,
    then its guard keys (`release`, held under `token`) are freed."""

    changes: Sequence[Change] = ()
    notes: Sequence[Note] = ()
    new_hosts: Sequence[tuple[Host, str]] = ()
    #: (burst id, message, fields) for `Store.update_burst`
    burst_update: tuple[str, str, Mapping[str, Any]] | None = None
    #: run once the outcome is in the store (in-memory marks such as "spillover asked")
    after: Callable[[], None] | None = None
    release: Sequence[Key] = ()
    token: object | None = None


class Outcomes:
    """Reports of background steps, applied by the next pass; each report wakes it."""

    def __init__(self) -> None:
        self._queue: list[Outcome] = []
        self._lock = threading.Lock()
        self.wake = threading.Event()

    def put(self, outcome: Outcome) -> None:
        with self._lock:
            self._queue.append(outcome)
        self.wake.set()

    def take(self) -> list[Outcome]:
        with self._lock:
            taken, self._queue = self._queue, []
        return taken


@dataclass
class BurstPass:
    """One burst as one pass sees it: the burst row and every host row, read once."""

    burst: Burst
    rows: list[HostRow]

    @property
    def id(self) -> str:
        return self.burst.id

    @functools.cached_property
    def newest(self) -> dict[int, HostRow]:
        """The newest attempt of every slot."""
        return newest_per_slot(self.rows)


@dataclass
class Ctx:
    config: Config
    store: Store
    providers: ProviderSet
    initialiser: Initialiser
    cluster: Cluster
    clock: Clock
    guard: InFlight
    outcomes: Outcomes
    pool: Executor
    offerings: Any  # burst.reconciler.offerings.Offerings (typed there; it needs Ctx's parts)
    tier_slots: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)
    #: bursts whose spillover was asked for / scaled off by this process
    spillover_asked: set[str] = field(default_factory=set)
    spillover_removed: set[str] = field(default_factory=set)
    #: (burst, tier) -> monotonic time of the last describe
    last_poll: dict[tuple[str, str], float] = field(default_factory=dict)
    #: tier -> expected seconds from launch to ready (p95 of history, else the config's)
    expected_ready: dict[str, float] = field(default_factory=dict)
    #: (burst, request id) -> monotonic time before which a throttled launch is not asked again
    retry_at: dict[tuple[str, str], float] = field(default_factory=dict)

    def submit(self, burst_id: str, names: Iterable[Hashable], work: Callable[[object], None], what: str) -> bool:
        """Run `work(token)` in the background if none of its keys is held. The keys are
        released through `Outcomes` after whatever `work` reported; an exception becomes
        one journal entry (never a traceback) and the hosts are looked at again."""
        keys = [(burst_id, n) for n in names]
        token = self.guard.claim(keys)
        if token is None:
            return False

        def run() -> None:
            notes: list[Note] = []
            try:
                work(token)
            except Exception as exc:  # noqa: BLE001  one step's error never stops the others
                log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
                notes.append(Note("step.error", f"{what}: {type(exc).__name__}: {exc}", burst_id=burst_id))
            finally:
                self.outcomes.put(Outcome(notes=notes, release=keys, token=token))

        self.pool.submit(run)
        return True

    def report(self, outcome: Outcome) -> None:
        self.outcomes.put(outcome)

    def deadline(self, seconds: float | None = None):
        return self.clock.now() + timedelta(seconds=seconds or self.config.cluster.phase_timeout_seconds)

    def target(self, host: HostRow, burst: Burst) -> HostTarget:
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


def provider_error(burst_id: str, tier: str, op: str, exc: ProviderError) -> Note:
    """The journal entry for a provider's error: one line, its class and code."""
    return Note("provider.error", f"{tier} {op}: {type(exc).__name__}: {exc}", burst_id=burst_id,
                detail={"tier": tier, "op": op, "code": exc.code or type(exc).__name__})
