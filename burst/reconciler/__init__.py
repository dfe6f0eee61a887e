"""The reconciler: drives every host of every live burst through its lifecycle.

One pass:
1. applies what background steps reported since the last pass (one transaction),
   and only then frees their guard keys;
2. for each live burst this process may drive (its driver lease), reads the burst's
   host rows once and dispatches the idle hosts over the step table
   (`burst.reconciler.table`): one step per state, up or down;
3. runs the burst's own steps (the extra tasks; the end of a scale-in).

Steps journal their intent inside the pass and do their slow part (cloud calls,
Ansible, the swarm) on a thread pool; every report wakes the driver, so a host that
finished a step starts the next one at once, not at a timer tick. One host's
error never stops the pass; every wait has a deadline; on the way down the
dearest tier (the last in the config) is returned first.

Layout: `context` (what steps are given, the in-flight guard, outcomes), `table`
(the step per state), one module per step (`launch`, `poll`, `initialise`, `join`,
`schedule`, `drain`, `leave`, `terminate`, `replace`, `giveup`, `giveback`),
`offerings` and `slots` (what replacements may use, host ids), `driver` (the loop
`burst up`, `burst down`, `burst demo` and the daemon run).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor

from burst.clock import Clock, SystemClock
from burst.config import Config
from burst.lifecycle import FINAL, LIVE, BurstStatus
from burst.provider.providers import ProviderSet
from burst.provision import Cluster, Initialiser
from burst.reconciler.context import BurstPass, Ctx, InFlight, Outcomes
from burst.reconciler.giveup import MAX_ATTEMPTS
from burst.reconciler.offerings import Offerings
from burst.reconciler.replace import recall, superseded
from burst.reconciler.schedule import finish_down, spillover_off
from burst.reconciler.table import BURST_UP, DOWN, UP, Step
from burst.store import Burst, HostRow, Note, Store, driver_name

__all__ = ["Reconciler", "MAX_ATTEMPTS"]

log = logging.getLogger(__name__)

#: seconds a driver's lease on a burst lasts without renewal
DRIVER_LEASE_SECONDS = 15.0
#: threads for the steps' slow halves (cloud calls, Ansible runs, swarm joins)
WORKERS = 48


class Reconciler:
    def __init__(self, config: Config, store: Store, providers: ProviderSet, initialiser: Initialiser,
                 cluster: Cluster, clock: Clock | None = None, executor: Executor | None = None):
        clock = clock or SystemClock()
        self.store = store
        self.ctx = Ctx(config=config, store=store, providers=providers, initialiser=initialiser, cluster=cluster,
                       clock=clock, guard=InFlight(), outcomes=Outcomes(),
                       pool=executor or ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="burst-step"),
                       offerings=Offerings(config, store, providers, clock),
                       tier_slots={t.name: threading.BoundedSemaphore(t.concurrency) for t in config.tiers})
        self.driver = driver_name()
        self._pass_lock = threading.Lock()
        #: burst id -> the burst as the last pass saw it (what progress is computed from)
        self.last_seen: dict[str, BurstPass] = {}

    @property
    def offerings(self) -> Offerings:
        return self.ctx.offerings

    def close(self) -> None:
        self.ctx.pool.shutdown(wait=True, cancel_futures=True)
        with self._pass_lock:
            self._apply_outcomes()
        for burst in self.store.bursts(LIVE):
            self.store.release_burst(burst.id, self.driver)

    def busy_for(self, burst_id: str) -> bool:
        """Has this process a step of the burst in flight (or a report not yet applied)?"""
        return self.ctx.guard.any_for(burst_id)

    def wait_for_work(self, timeout: float) -> None:
        """Sleep until a step reports (or `timeout` seconds pass, on the clock)."""
        self.ctx.clock.wait(self.ctx.outcomes.wake, timeout)

    # -- the pass ----------------------------------------------------------------

    def pass_once(self) -> None:
        """One look at every live burst this process drives. Passes never overlap, and
        never raise for one burst's or host's error."""
        with self._pass_lock:
            self.ctx.outcomes.wake.clear()
            self._apply_outcomes()
            self.last_seen = {}
            for burst in self.store.bursts(LIVE):
                if not self.store.claim_burst(burst, self.driver, DRIVER_LEASE_SECONDS):
                    continue  # another process drives it; its results show in the store
                try:
                    bp = BurstPass(burst, self.store.host_rows(burst.id))
                    self.last_seen[burst.id] = bp
                    self._reconcile(bp)
                except Exception as exc:  # noqa: BLE001  the pass goes on; the journal says what broke
                    log.warning("reconcile of burst %s failed: %s: %s", burst.id, type(exc).__name__, exc)
                    self.store.journal("reconcile.error", f"{type(exc).__name__}: {exc}", burst_id=burst.id)

    def _apply_outcomes(self) -> None:
        outcomes = self.ctx.outcomes.take()
        if not outcomes:
            return
        try:
            self.store.apply([c for o in outcomes for c in o.changes], notes=[n for o in outcomes for n in o.notes],
                             new_hosts=[h for o in outcomes for h in o.new_hosts])
            for o in outcomes:
                if o.burst_update:
                    burst_id, message, fields = o.burst_update
                    self.store.update_burst(burst_id, message, **fields)
                if o.after:
                    o.after()
        except Exception as exc:  # noqa: BLE001  the store refused: the hosts are looked at again
            log.warning("applying step results failed: %s: %s", type(exc).__name__, exc)
            self.store.journal("reconcile.error", f"applying step results: {type(exc).__name__}: {exc}")
        finally:  # freed only now: a pass that sees a key free sees its step's results too
            for o in outcomes:
                if o.release:
                    self.ctx.guard.release(o.release, o.token)

    def _reconcile(self, bp: BurstPass) -> None:
        idle = [h for h in bp.rows if not self.ctx.guard.busy((bp.id, h.id))]
        if bp.burst.status is BurstStatus.ACTIVE:
            giving_back = superseded(bp)
            self._dispatch(UP, bp, [h for h in idle if h.id not in giving_back])
            self._dispatch(DOWN, bp, [h for h in idle if h.id in giving_back])
            for step in BURST_UP:
                step(self.ctx, bp)
            return
        if not spillover_off(self.ctx, bp):
            return  # no host drains before the extra tasks are off
        live = [h for h in bp.rows if h.state not in FINAL]
        if not live:
            finish_down(self.ctx, bp)
            return
        order = [t.name for t in self.ctx.config.tiers]  # the dearest (last) tier returns first
        current = max(live, key=lambda h: order.index(h.tier)).tier
        self._dispatch(DOWN, bp, [h for h in idle if h.tier == current])

    def _dispatch(self, table: dict, bp: BurstPass, hosts: Iterable[HostRow]) -> None:
        groups: dict[Step, list[HostRow]] = defaultdict(list)
        for h in hosts:
            step = table.get(h.state)
            if step is not None:
                groups[step].append(h)
        for step, group in groups.items():
            try:
                step(self.ctx, bp, group)
            except Exception as exc:  # noqa: BLE001  one step's error never stops the others
                name = getattr(step, "__name__", type(step).__name__)
                log.warning("step %s of burst %s failed: %s: %s", name, bp.id, type(exc).__name__, exc)
                self.store.apply(notes=[Note("step.error", f"{name}: {type(exc).__name__}: {exc}",
                                             burst_id=bp.id)])

    # -- asked by the service ---------------------------------------------------------

    def recall(self, burst: Burst, host: HostRow, reason: str) -> None:
        recall(self.ctx, burst, host, reason)
