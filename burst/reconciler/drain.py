"""Drain: the node's tasks move away before it leaves, `ready -> draining -> leaving`.
A drain that does not finish by its deadline leaves anyway: the host must be given
back, and leaving stops what still runs on it."""

from burst.lifecycle import HostState as S
from burst.reconciler.phase import Phase

#: seconds a drain may take before the host leaves anyway
DRAIN_SECONDS = 60.0

drain = Phase("drain", into=S.DRAINING, ok=S.LEAVING, fail=S.LEAVING, call=lambda ctx: ctx.cluster.drain,
              seconds=DRAIN_SECONDS)
