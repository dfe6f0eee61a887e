"""Leave: the host leaves the swarm and its node is removed, `leaving -> terminating`.
A host that never got a node id never joined: nothing to leave. A failed leave still
goes on to terminate: the node is removed from the manager's side regardless."""

from burst.lifecycle import HostState as S
from burst.reconciler.context import BurstPass, Ctx
from burst.reconciler.phase import Phase
from burst.store import Change, HostRow

_leave = Phase("leave", into=S.LEAVING, ok=S.TERMINATING, fail=S.TERMINATING, call=lambda ctx: ctx.cluster.leave)


def leave(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
    never_joined = [h for h in hosts if not h.node_id]
    if never_joined:
        ctx.store.apply([Change(h.id, bp.id, h.state, S.TERMINATING, detail={"why": "never joined"})
                         for h in never_joined])
    joined = [h for h in hosts if h.node_id]
    if joined:
        _leave(ctx, bp, joined)
