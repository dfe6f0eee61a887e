"""Host states and the one table of allowed transitions.

A write to a host's state checks its edge here (the store refuses any other) and
bumps the host's version. Every transition is journaled with its timestamp, and all
phase timings are derived from that journal.
"""

from __future__ import annotations

import enum

from burst.errors import IllegalTransitionError


class HostState(str, enum.Enum):
    REQUESTED = "requested"
    LAUNCHING = "launching"
    RUNNING = "running"
    INITIALISING = "initialising"
    INITIALISED = "initialised"
    JOINING = "joining"
    READY = "ready"
    DRAINING = "draining"
    LEAVING = "leaving"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    RELEASED = "released"
    CANCELLED = "cancelled"
    LAUNCH_FAILED = "launch_failed"
    INIT_FAILED = "init_failed"
    JOIN_FAILED = "join_failed"
    TERMINATE_FAILED = "terminate_failed"

    def __str__(self) -> str:  # as the operator reads it: "ready", not "HostState.READY"
        return self.value


S = HostState

TRANSITIONS: dict[HostState, dict[HostState, str]] = {
    S.REQUESTED: {
        S.LAUNCHING: "the launch intent is journaled; the cloud call comes next",
        S.CANCELLED: "burst down before any cloud call: nothing exists to return",
    },
    S.LAUNCHING: {
        S.RUNNING: "the provider reports the instance running with an address",
        S.LAUNCH_FAILED: "no capacity, quota, or the instance never came up in time",
        S.TERMINATING: "burst down while launching: terminate whatever the request made",
    },
    S.RUNNING: {
        S.INITIALISING: "an initialisation run picked the host up",
        S.TERMINATING: "burst down before initialisation: not in the swarm, nothing to drain",
    },
    S.INITIALISING: {
        S.INITIALISED: "packages installed and puppet applied",
        S.INIT_FAILED: "the playbook failed or the host did not answer in time",
        S.RUNNING: "the run was interrupted (crash): initialise again, it is idempotent",
        S.TERMINATING: "burst down during initialisation",
    },
    S.INITIALISED: {
        S.JOINING: "a join run picked the host up",
        S.TERMINATING: "burst down before the join: nothing to drain",
    },
    S.JOINING: {
        S.READY: "the node is Ready in the swarm and labelled",
        S.JOIN_FAILED: "the join failed or the node never became Ready in time",
        S.INITIALISED: "the join was interrupted (crash): join again, it is idempotent",
        S.LEAVING: "burst down during the join: it may be half in, so leave to be sure",
    },
    S.READY: {
        S.DRAINING: "burst down (or a recall): move its tasks away first",
        S.LEAVING: "the node vanished from the swarm: make sure it is out, then return it",
    },
    S.DRAINING: {
        S.LEAVING: "no task runs on it any more, or the drain deadline passed",
    },
    S.LEAVING: {
        S.TERMINATING: "the host left the swarm and its node was removed",
    },
    S.TERMINATING: {
        S.TERMINATED: "the cloud instance is gone",
        S.RELEASED: "the borrowed pool host was handed back to its owner",
        S.TERMINATE_FAILED: "the provider refused or did not confirm in time",
    },
    S.TERMINATE_FAILED: {
        S.TERMINATING: "retry: terminate is idempotent",
    },
    S.LAUNCH_FAILED: {
        S.TERMINATING: "a partial launch may have left an instance: terminate it",
        S.CANCELLED: "nothing was created: the host is done with",
    },
    S.INIT_FAILED: {
        S.TERMINATING: "return the host; a replacement takes its slot",
    },
    S.JOIN_FAILED: {
        S.LEAVING: "it may be half joined: leave, then return it",
    },
    S.TERMINATED: {},
    S.RELEASED: {},
    S.CANCELLED: {},
}

#: States in which a host is finished with: nothing exists any more for it.
FINAL = frozenset({S.TERMINATED, S.RELEASED, S.CANCELLED})
#: States that mean the host will not reach ready; its slot needs a replacement.
FAILED = frozenset({S.LAUNCH_FAILED, S.INIT_FAILED, S.JOIN_FAILED})
#: On the way up, in order; used for progress and phase timings.
UP_PHASES = (S.REQUESTED, S.LAUNCHING, S.RUNNING, S.INITIALISING, S.INITIALISED, S.JOINING, S.READY)
#: On the way back.
DOWN_PHASES = (S.DRAINING, S.LEAVING, S.TERMINATING)


class BurstStatus(str, enum.Enum):
    ACTIVE = "active"
    DRAINING = "draining"
    DOWN = "down"

    def __str__(self) -> str:
        return self.value


B = BurstStatus

BURST_TRANSITIONS: dict[BurstStatus, dict[BurstStatus, str]] = {
    B.ACTIVE: {B.DRAINING: "burst down was asked for: the hosts are given back"},
    B.DRAINING: {B.DOWN: "every host is returned"},
    B.DOWN: {},
}
#: A burst in one of these is live: at most one per event (the store enforces it).
LIVE = (B.ACTIVE, B.DRAINING)


def check_burst_transition(current: BurstStatus, new: BurstStatus) -> str:
    reason = BURST_TRANSITIONS[BurstStatus(current)].get(BurstStatus(new))
    if reason is None:
        raise IllegalTransitionError(f"illegal burst transition {current.value} -> {new.value}")
    return reason


def check_transition(current: HostState, new: HostState) -> str:
    """The reason for the edge current -> new; `IllegalTransitionError` if there is none."""
    reason = TRANSITIONS[HostState(current)].get(HostState(new))
    if reason is None:
        raise IllegalTransitionError(f"illegal host transition {current.value} -> {new.value}")
    return reason
