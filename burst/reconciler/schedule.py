"""Schedule: the event's extra tasks. Burst-level steps, each guarded like a host's.

Up: once a host is ready, ask the swarm for the extra tasks (it places them as the
nodes join); once every slot is settled (ready, or given up), wait for them to
run: the burst is ready when they do. Down: scale the extra tasks off before any
host drains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from burst.lifecycle import FINAL, BurstStatus
from burst.lifecycle import HostState as S
from burst.reconciler.context import BurstPass, Ctx, Outcome
from burst.store import Note


def spillover(ctx: Ctx, bp: BurstPass) -> None:
    if bp.id in ctx.spillover_asked:
        return
    demand, in_place = bp.burst.demand, bp.burst.plan.absorbed
    if not in_place and not any(h.state is S.READY for h in bp.newest.values()):
        return
    event = bp.burst.event

    def work(token: object) -> None:
        for service, replicas in demand.items():
            ctx.cluster.ensure_spillover(event, service, replicas, in_place.get(service, 0))
        ctx.report(Outcome(notes=[Note("spillover.requested", f"extra tasks for {event}: "
                                       + ", ".join(f"{s}={n}" for s, n in demand.items())
                                       + (f" ({', '.join(f'{s}={n}' for s, n in in_place.items())} in place)"
                                          if in_place else ""),
                                       burst_id=bp.id, detail={"demand": demand, "in_place": in_place})],
                           after=lambda: ctx.spillover_asked.add(bp.id)))

    ctx.submit(bp.id, ["spillover"], work, "spillover")


def schedule(ctx: Ctx, bp: BurstPass) -> None:
    if bp.burst.ready_at is not None or bp.id not in ctx.spillover_asked:
        return
    newest = bp.newest.values()
    if not all(h.state is S.READY or h.given_up for h in newest):
        return
    ready = [h for h in newest if h.state is S.READY]
    targets = [ctx.target(h, bp.burst) for h in ready]
    demand, event = bp.burst.demand, bp.burst.event

    def work(token: object) -> None:
        ctx.cluster.wait_spillover(event, targets, _ScheduleReport(ctx, bp.id),
                                   ctx.clock.monotonic() + ctx.config.cluster.phase_timeout_seconds)
        running = ctx.cluster.spillover_running(event)
        shown = ", ".join(f"{s}={n}" for s, n in running.items())
        if not all(running.get(s, 0) >= n for s, n in demand.items()):
            ctx.report(Outcome(notes=[Note("spillover.short", f"extra tasks running {shown or 'none'} of "
                                           + ", ".join(f"{s}={n}" for s, n in demand.items()) + "; waiting on",
                                           burst_id=bp.id, detail=running)]))
            return
        short = sum(1 for h in newest if h.state is not S.READY)
        ctx.report(Outcome(notes=[Note("spillover.running", f"extra tasks running: {shown}", burst_id=bp.id,
                                       detail=running)],
                           burst_update=(bp.id, f"burst ready: {len(ready)} hosts, extra tasks running {shown}"
                                         + (f", {short} slots given up" if short else ""),
                                         {"ready_at": ctx.clock.now()})))

    ctx.submit(bp.id, ["schedule"], work, "schedule")


def spillover_off(ctx: Ctx, bp: BurstPass) -> bool:
    """Scale the event's extra tasks off (once per process: it is idempotent). True once done."""
    if bp.id in ctx.spillover_removed:
        return True
    event = bp.burst.event

    def work(token: object) -> None:
        ctx.cluster.remove_spillover(event)
        ctx.report(Outcome(notes=[Note("spillover.removed", f"spillover of {event} scaled off", burst_id=bp.id)],
                           after=lambda: ctx.spillover_removed.add(bp.id)))

    ctx.submit(bp.id, ["spillover-off"], work, "spillover off")
    return False


def finish_down(ctx: Ctx, bp: BurstPass) -> None:
    """Down once every host is returned and nothing of the burst is in flight."""
    if all(h.state in FINAL for h in bp.rows) and not ctx.guard.any_for(bp.id):
        bp.burst = ctx.store.update_burst(bp.id, "burst down: every host returned", status=BurstStatus.DOWN,
                                          down_at=ctx.clock.now())


class _ScheduleReport:
    """The sink of the wait for the extra tasks: journals only (no host moves)."""

    def __init__(self, ctx: Ctx, burst_id: str):
        self.ctx, self.burst_id = ctx, burst_id

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        self.ctx.report(Outcome(notes=[Note(f"schedule.{kind}", kind, burst_id=self.burst_id, host_id=host_id,
                                            detail=detail or {})]))

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        self.ctx.report(Outcome(notes=[Note("schedule.done", "ok" if ok else error, burst_id=self.burst_id,
                                            host_id=host_id, detail={"ok": ok, **(data or {})})]))
