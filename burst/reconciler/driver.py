"""The drive loop: passes until a burst is done or the time given runs out, yielding
progress after every pass. `burst up`, `burst down` and `burst demo` render what it
yields; the daemon runs the same passes for every burst.

A pass runs as soon as a step reports (the reconciler's wake), and at least every
`TICK` seconds for what only time moves on (deadlines, polls, retries)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from burst.clock import Clock
from burst.lifecycle import FINAL, UP_PHASES, BurstStatus
from burst.lifecycle import HostState as S
from burst.reconciler import Reconciler
from burst.reconciler.context import BurstPass
from burst.reconciler.slots import newest_per_slot
from burst.store import Store

#: seconds between passes when no step reports
TICK = 0.1

_RANK = {s: i for i, s in enumerate(UP_PHASES)}
#: up: (phase, the state that means it is done, the state a host is in while it runs)
_UP = (("launched", S.RUNNING, S.LAUNCHING), ("initialised", S.INITIALISED, S.INITIALISING),
       ("ready", S.READY, S.JOINING))


@dataclass(frozen=True)
class PhaseProgress:
    name: str
    done: int
    in_flight: int
    total: int


@dataclass(frozen=True)
class Progress:
    burst_id: str
    event: str
    direction: str  # up | down
    phases: tuple[PhaseProgress, ...]
    slots: int
    #: hosts that failed (and were replaced or given up)
    failed: int
    seconds_left: float
    done: bool
    #: when done: ready, short (some slots given up), given_up, halted, draining (down was
    #: asked meanwhile), down
    outcome: str | None
    halted: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Driver:
    """`tick`: the longest wait between passes; `spacing`: the shortest (reports that
    arrive meanwhile are applied together by the next pass: the simulator coalesces
    a thousand hosts' reports this way; a real burst passes as soon as one arrives)."""

    def __init__(self, reconciler: Reconciler, store: Store, clock: Clock, *, tick: float = TICK,
                 spacing: float = 0.0):
        self.reconciler, self.store, self.clock = reconciler, store, clock
        self.tick, self.spacing = tick, spacing

    def drive(self, burst_id: str, *, seconds: float, direction: str | None = None) -> Iterator[Progress]:
        """Passes until the burst is done (see `Progress.outcome`), `seconds` pass, or
        (with `direction`) the burst goes the other way (a `burst down` meanwhile)."""
        stop = self.clock.monotonic() + seconds
        while True:
            started = self.clock.monotonic()
            self.reconciler.pass_once()
            progress = self.progress(burst_id, self.reconciler.last_seen.get(burst_id))
            yield progress
            left = stop - self.clock.monotonic()
            if progress.done or left <= 0 or (direction and progress.direction != direction):
                return
            if self.spacing:
                self.clock.sleep(max(0.0, started + self.spacing - self.clock.monotonic()))
            self.reconciler.wait_for_work(min(self.tick, left))

    def progress(self, burst_id: str, seen: BurstPass | None = None) -> Progress:
        """Where the burst stands: as the pass that just ran saw it (`seen`), else as read."""
        burst, rows = (seen.burst, seen.rows) if seen else (self.store.get_burst(burst_id),
                                                            self.store.host_rows(burst_id))
        newest = seen.newest if seen else newest_per_slot(rows)
        slots = len(newest)
        failed = sum(1 for h in rows if h.error and (newest[h.slot].id != h.id or h.given_up))
        left = (burst.deadline_at - self.clock.now()).total_seconds()
        base = dict(burst_id=burst.id, event=burst.event, slots=slots, failed=failed, seconds_left=left,
                    halted=burst.halted)
        if burst.status is BurstStatus.ACTIVE:
            phases = tuple(PhaseProgress(name, sum(1 for h in newest.values() if _RANK.get(h.state, -1) >= _RANK[end]),
                                         sum(1 for h in newest.values() if h.state is running), slots)
                           for name, end, running in _UP)
            outcome = self._up_outcome(burst, newest)
            return Progress(direction="up", phases=phases, done=outcome is not None, outcome=outcome, **base)
        gone = sum(1 for h in rows if h.state in FINAL)
        past_drain = gone + sum(1 for h in rows if h.state in (S.LEAVING, S.TERMINATING))
        phases = (PhaseProgress("drained", past_drain, sum(1 for h in rows if h.state is S.DRAINING), len(rows)),
                  PhaseProgress("returned", gone, sum(1 for h in rows if h.state in (S.LEAVING, S.TERMINATING)),
                                len(rows)))
        down = burst.status is BurstStatus.DOWN
        return Progress(direction="down", phases=phases, done=down, outcome="down" if down else None, **base)

    def _up_outcome(self, burst, newest) -> str | None:
        if burst.ready_at is not None:
            return "short" if any(h.given_up for h in newest.values()) else "ready"
        settled = newest and all(h.given_up and h.state in FINAL for h in newest.values())
        if settled and not self.reconciler.busy_for(burst.id):
            return "halted" if burst.halted else "given_up"
        return None
