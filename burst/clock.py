"""The clock, injected so that tests and the daemon can control time where it matters."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Protocol

from burst.store.models import utcnow


class Clock(Protocol):
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Until `event` is set or `timeout` seconds pass; whether it was set."""


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(timeout)
