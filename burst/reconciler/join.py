"""Join: the host joins the swarm, is Ready and labelled, `initialised -> joining ->
ready` or `join_failed`. The swarm node id is kept on the host (leave needs it)."""

from burst.lifecycle import HostState as S
from burst.reconciler.phase import Phase

join = Phase("join", into=S.JOINING, ok=S.READY, fail=S.JOIN_FAILED, call=lambda ctx: ctx.cluster.join,
             keep="node_id")
