"""The step table: which step runs for the hosts in each state, up and down.

Beside the lifecycle's transition table (burst/lifecycle.py), this is the whole
behaviour of the reconciler: a pass groups the idle hosts of a burst by state and
runs, once per group, the step this table names. A state with no step waits (for a
step in flight, or for the burst's own steps in `BURST_UP` / `BURST_DOWN`).

A host found in a state that names a running phase (`initialising`, `joining`)
with no step in flight in this process had its step cut short (a crash): it goes
back one state and the phase runs again (each one is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable

from burst.lifecycle import HostState as S
from burst.reconciler.context import BurstPass, Ctx
from burst.reconciler.drain import drain
from burst.reconciler.escalate import escalate
from burst.reconciler.giveback import give_back
from burst.reconciler.initialise import initialise
from burst.reconciler.join import join
from burst.reconciler.launch import follow, launch
from burst.reconciler.leave import leave
from burst.reconciler.replace import replace
from burst.reconciler.schedule import schedule, spillover
from burst.reconciler.terminate import retry, terminate
from burst.store import Change, HostRow

Step = Callable[[Ctx, BurstPass, list[HostRow]], None]


def back_to(state: S) -> Step:
    """A step cut short by a crash: back one state, so the phase runs again."""

    def step(ctx: Ctx, bp: BurstPass, hosts: list[HostRow]) -> None:
        ctx.store.apply([Change(h.id, bp.id, h.state, state, detail={"why": "redo: its run was cut short"})
                         for h in hosts])

    step.__name__ = f"back_to_{state.value}"
    return step


#: a burst that is active: hosts go up; failed ones are replaced and given back
UP: dict[S, Step] = {
    S.REQUESTED: launch,             # journal the batch's intent, then one cloud call per batch
    S.LAUNCHING: follow,             # no instance yet: ask again, same request id; else describe
    S.RUNNING: initialise,           # RPMs and puppet apply over Ansible
    S.INITIALISING: back_to(S.RUNNING),
    S.INITIALISED: join,             # into the swarm, Ready and labelled
    S.JOINING: back_to(S.INITIALISED),
    S.LAUNCH_FAILED: replace,        # the slot's next attempt (or give up), and this one given back
    S.INIT_FAILED: replace,
    S.JOIN_FAILED: replace,
    S.LEAVING: leave,                # a failed or superseded host on its way back
    S.TERMINATING: terminate,
    S.TERMINATE_FAILED: retry,
}

#: a burst being scaled in, and hosts given back early (superseded): everything returns
DOWN: dict[S, Step] = {
    S.REQUESTED: give_back,          # -> cancelled: nothing was asked of a cloud
    S.LAUNCHING: give_back,          # -> terminating; an unanswered launch is resolved by its batch tag
    S.RUNNING: give_back,            # -> terminating: not in the swarm, nothing to drain
    S.INITIALISING: give_back,
    S.INITIALISED: give_back,
    S.JOINING: give_back,            # -> leaving: it may be half in
    S.READY: drain,                  # its tasks move away first
    S.DRAINING: drain,               # a drain cut short is run again
    S.LEAVING: leave,
    S.TERMINATING: terminate,
    S.TERMINATE_FAILED: retry,
    S.LAUNCH_FAILED: give_back,      # -> terminating if a partial launch made an instance, else cancelled
    S.INIT_FAILED: give_back,
    S.JOIN_FAILED: give_back,
}

#: burst-level steps of an active burst, after the hosts' steps
BURST_UP = (escalate, spillover, schedule)
