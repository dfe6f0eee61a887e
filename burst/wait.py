"""Waiting with a deadline: the one poll-until-done helper, built on tenacity.

Every wait in burst has a deadline (a `time.monotonic()` value). `wait_until` calls
`check` until it returns something truthy and returns that, or raises
`DeadlineExceeded` naming what was waited for. Exceptions from `check` propagate at
once: a poll never hides an error behind a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, wait_fixed

from burst.errors import BurstError

T = TypeVar("T")


class DeadlineExceeded(BurstError):
    """A wait reached its deadline before the condition held."""


def wait_until(check: Callable[[], T], *, deadline: float, interval: float = 0.2, what: str = "a condition",
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Poll `check` every `interval` seconds until it returns a truthy value (returned)
    or `deadline` (monotonic) passes: then `DeadlineExceeded`. `check` runs at least once."""

    def past_deadline(_state) -> bool:
        return time.monotonic() + interval > deadline

    retrying = Retrying(retry=retry_if_result(lambda result: not result), stop=past_deadline,
                        wait=wait_fixed(interval), sleep=sleep, reraise=True)
    try:
        return retrying(check)
    except RetryError:
        raise DeadlineExceeded(f"timed out waiting for {what}") from None
