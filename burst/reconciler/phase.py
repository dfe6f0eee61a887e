"""A provisioning phase: initialise, join, drain and leave all run this way.

The pass moves the hosts into the phase's state (the intent, with the phase's
deadline), then the phase's call (the initialiser's or the cluster's) runs in the
background for the whole batch and reports each host on its own through
`HostReport`, the one sink every phase uses: each host is reported once, its result
becomes one `Change`, and its guard key is released with that change, so a host
that finished starts its next phase at the next pass while its batch-mates still run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from burst.lifecycle import HostState
from burst.provision import HostTarget
from burst.reconciler.context import BurstPass, Ctx, Outcome
from burst.store import Change, HostRow, Note


@dataclass(frozen=True)
class Phase:
    name: str
    #: the state the hosts are in while the phase runs
    into: HostState
    ok: HostState
    fail: HostState
    #: picks the call from the context: (targets, sink, deadline) -> None
    call: Callable[[Ctx], Callable[[Sequence[HostTarget], "HostReport", float], None]]
    #: a field of the call's per-host data to keep on the host (node_id, config_hash)
    keep: str | None = None
    #: seconds the phase may take; None: the cluster's phase timeout
    seconds: float | None = None

    def __call__(self, ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
        seconds = self.seconds or ctx.config.cluster.phase_timeout_seconds
        deadline_at = ctx.deadline(seconds)
        starting = [h for h in hosts if h.state is not self.into]
        moved = ctx.store.apply([Change(h.id, bp.id, h.state, self.into, fields={"phase_deadline": deadline_at})
                                 for h in starting]) if starting else set()
        # a host already in the phase's state had its run cut short (a crash): run it again
        running = [h for h in hosts if h.id in moved or h.state is self.into]
        if not running:
            return
        targets = [ctx.target(h, bp.burst) for h in running]
        monotonic_deadline = ctx.clock.monotonic() + seconds

        def work(token: object) -> None:
            report = HostReport(ctx, bp.id, self, token)
            try:
                self.call(ctx)(targets, report, monotonic_deadline)
            finally:  # a host the call did not report has failed
                for t in targets:
                    report.done(t.host_id, False, f"{self.name}: no result")

        ctx.submit(bp.id, [h.id for h in running], work, f"{self.name} of {len(running)} hosts")


class HostReport:
    """The sink of one phase run (a `burst.provision.HostSink`), called from worker threads."""

    def __init__(self, ctx: Ctx, burst_id: str, phase: Phase, token: object):
        self.ctx, self.burst_id, self.phase, self.token = ctx, burst_id, phase, token
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        self.ctx.report(Outcome(notes=[Note(f"{self.phase.name}.{kind}", str((detail or {}).get("task", kind)),
                                            burst_id=self.burst_id, host_id=host_id, detail=detail or {})]))

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            if host_id in self._reported:
                return
            self._reported.add(host_id)
        p = self.phase
        fields = {p.keep: data[p.keep]} if ok and p.keep and data and data.get(p.keep) else {}
        change = Change(host_id, self.burst_id, p.into, p.ok if ok else p.fail, fields=fields,
                        error=None if ok else (error or f"{p.name} failed"))
        self.ctx.report(Outcome(changes=[change], release=[(self.burst_id, host_id)], token=self.token))
