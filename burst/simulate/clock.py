"""Virtual time for the simulator: it moves only when every thread waits on it.

The real reconciler runs unchanged on this clock: its steps sleep on it (a boot, an
Ansible run, an API call's latency), the driver waits on it for the next report.
While any thread works (a pass, a store write), time stands still; once all are
asleep, it jumps to the earliest wake-up. So a simulated five-minute burst takes
the real time of burst's own work only, and the result does not depend on how
loaded the machine is.

Threads the clock does not start itself are counted with `busy()` (the simulator's
main thread, and every task of `CountingExecutor`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(eq=False)
class _Sleeper:
    at: float
    event: threading.Event | None
    woken: bool = False


class VirtualClock:
    def __init__(self, start: datetime):
        self.start = start
        self._t = 0.0
        self._cond = threading.Condition()
        self._busy = 0
        self._sleepers: list[_Sleeper] = []

    # -- the Clock protocol ------------------------------------------------------

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._t)

    def monotonic(self) -> float:
        return self._t

    def sleep(self, seconds: float) -> None:
        self._sleep(_Sleeper(self._t + max(0.0, seconds), None))

    def sleep_until(self, at: float) -> None:
        self._sleep(_Sleeper(max(self._t, at), None))

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self._sleep(_Sleeper(self._t + max(0.0, timeout), event))
        return event.is_set()

    # -- who is working ------------------------------------------------------------

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Count the calling thread as working (time stands still) for the block."""
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        with self._cond:
            self._busy += 1

    def _leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self._advance()

    def _sleep(self, sleeper: _Sleeper) -> None:
        with self._cond:
            self._sleepers.append(sleeper)
            self._busy -= 1
            self._advance()
            while not sleeper.woken:
                self._cond.wait()

    def _advance(self) -> None:
        """With every thread asleep: wake the ones whose event is set, or else move
        time to the earliest wake-up and wake those. Woken threads count as busy at
        once, so time cannot move again before they ran."""
        if self._busy > 0 or not self._sleepers:
            self._cond.notify_all()  # an event waiter may re-check
            return
        due = [s for s in self._sleepers if s.event is not None and s.event.is_set()]
        if not due:
            self._t = max(self._t, min(s.at for s in self._sleepers))
            due = [s for s in self._sleepers if s.at <= self._t]
        for s in due:
            s.woken = True
            self._sleepers.remove(s)
        self._busy += len(due)
        self._cond.notify_all()


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks count as busy on the clock from submit to end (a
    queued task is work not yet done: time must not move past it)."""

    def __init__(self, clock: VirtualClock, max_workers: int = 2048):
        super().__init__(max_workers=max_workers, thread_name_prefix="sim-step")
        self.clock = clock

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        self.clock._enter()

        def counted() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self.clock._leave()

        return super().submit(counted)
