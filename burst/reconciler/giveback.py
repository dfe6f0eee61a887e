"""Give back: where a host goes first when it is to be returned (burst down, a failed
host, a host superseded by its slot's newer attempt). Drain, leave and terminate
then take it from there; the dearest tier is returned first (the pass's order)."""

from __future__ import annotations

from burst.lifecycle import HostState as S
from burst.reconciler.context import BurstPass, Ctx
from burst.reconciler.launch import resolve_unanswered
from burst.store import Change, HostRow

#: the first move back, by the state the host is in (each one an edge of the lifecycle)
RETURN_MOVES = {
    S.REQUESTED: S.CANCELLED,  # nothing was asked of any cloud
    S.LAUNCHING: S.TERMINATING,  # (with an instance; without one see `give_back`)
    S.RUNNING: S.TERMINATING,  # not in the swarm: nothing to drain
    S.INITIALISING: S.TERMINATING,
    S.INITIALISED: S.TERMINATING,
    S.JOINING: S.LEAVING,  # may be half in: leave to be sure
    S.INIT_FAILED: S.TERMINATING,
    S.JOIN_FAILED: S.LEAVING,
}


def return_state(host: HostRow) -> S:
    if host.state is S.LAUNCH_FAILED:  # a partial launch may have left an instance
        return S.TERMINATING if host.instance_id else S.CANCELLED
    return RETURN_MOVES[host.state]


def give_back(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    unanswered = [h for h in hosts if h.state is S.LAUNCHING and not h.instance_id]
    if unanswered:  # what did the unanswered launch make? Its batch tag says
        resolve_unanswered(ctx, bp, unanswered)
    ctx.store.apply([Change(h.id, bp.id, h.state, return_state(h)) for h in hosts if h not in unanswered])
