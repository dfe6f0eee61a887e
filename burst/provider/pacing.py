"""Pacing for cloud API calls, shared by every cloud provider.

- `TokenBucket`: a client-side rate limiter, so a burst of hundreds of hosts stays inside
  the cloud's published request buckets instead of discovering them through throttling.
  A rate limiter is not a retry: it spaces attempts, it never repeats one.
- `retry`: jittered exponential backoff (tenacity's full jitter) under one deadline, for
  ThrottledError and TransientProviderError ONLY. Capacity, quota, auth and config
  errors go straight to the caller: a stock-out retried for minutes is the failure this
  module exists to avoid.
- `Pacer`: one bucket per API action plus the retry policy; every attempt (first or
  retried) takes a token, so retries are paced too, and is counted in `Pacer.stats`.
- `chunked` and `client_token`: batching within the APIs' id-count and token-length limits.

Cloud SDKs have their own retry loops; providers turn them off so this module is the
only place a call is repeated (and every repeat is counted and paced).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import Retrying, retry_if_exception_type, wait_random_exponential

from burst.provider.errors import ThrottledError, TransientProviderError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE = (ThrottledError, TransientProviderError)


class ClientSideThrottle(ThrottledError):
    """Our own bucket, not the cloud, has no token for this call before its deadline."""


class TokenBucket:
    """A thread-safe token bucket: `capacity` tokens, refilled at `per_second`.

    `acquire(n)` blocks until n tokens are there (at most `capacity` may be asked for
    at once) or raises ClientSideThrottle (a ThrottledError) if that would pass the deadline.
    """

    def __init__(
        self,
        capacity: float,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if capacity <= 0 or per_second <= 0:
            raise ValueError("a token bucket needs capacity > 0 and per_second > 0")
        self.capacity = float(capacity)
        self.per_second = float(per_second)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(capacity)
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.per_second)
        self._stamp = now

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take `tokens` if they are there now; never waits."""
        with self._lock:
            self._refill(self._clock())
            if self._tokens >= tokens:
                self._tokens -= tokens
                return True
            return False

    def acquire(self, tokens: float = 1, *, deadline: float | None = None) -> float:
        """Take `tokens`; returns the seconds spent waiting."""
        tokens = min(float(tokens), self.capacity)  # a larger request waits for a full bucket
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._refill(now)
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return waited
                wait = (tokens - self._tokens) / self.per_second
            if deadline is not None and self._clock() + wait > deadline:
                raise ClientSideThrottle(f"client-side rate limit: no token within the deadline (needs {wait:.1f}s)")
            self._sleep(wait)
            waited += wait


class RateLimit(BaseModel):
    """One bucket: `burst` calls at once, refilled at `per_second`."""

    model_config = ConfigDict(extra="forbid")
    burst: float = Field(gt=0)
    per_second: float = Field(gt=0)


class RetryPolicy(BaseModel):
    """Jittered exponential backoff: attempt n sleeps uniform(0, min(max, base * 2**n))."""

    model_config = ConfigDict(extra="forbid")
    base_seconds: float = Field(0.5, gt=0)
    max_seconds: float = Field(10.0, gt=0)
    #: total time one call may spend retrying before the last error goes to the caller
    deadline_seconds: float = Field(90.0, gt=0)


def retry(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str = "call",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run `call`, retrying ThrottledError / TransientProviderError with full-jitter
    backoff (attempt n waits uniform(0, min(max, base * 2**(n-1)))) while the next try
    would still start before `policy.deadline_seconds`; then the last error is raised as
    it is. Any other error propagates at once, after one attempt.

    Only idempotent calls may be passed here (launch carries its ClientToken).
    """
    deadline = clock() + policy.deadline_seconds

    def past_deadline(state) -> bool:  # tenacity computes the wait (upcoming_sleep) before asking
        return clock() + state.upcoming_sleep > deadline

    def before_sleep(state) -> None:
        exc = state.outcome.exception()
        log.info("%s: %s (code %s); retry %d in %.2fs", what, type(exc).__name__, getattr(exc, "code", ""),
                 state.attempt_number, state.upcoming_sleep)
        if on_retry:
            on_retry(exc, state.upcoming_sleep)

    retrying = Retrying(
        retry=retry_if_exception_type(RETRYABLE),
        wait=wait_random_exponential(multiplier=policy.base_seconds, max=policy.max_seconds),
        stop=past_deadline,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(call)


class Pacer:
    """Client-side rate limits per API action, and the retry policy, for one provider.

    `stats` counts, per action, every attempt sent (`<action>`) and every retry
    (`<action>.retries`): the calls burst reports are the calls the cloud received."""

    def __init__(self, limits: Mapping[str, RateLimit], policy: RetryPolicy):
        self.policy = policy
        self.buckets = {name: TokenBucket(lim.burst, lim.per_second) for name, lim in limits.items()}
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _paced(self, action: str, fn: Callable[[], T], deadline: float, cost: Mapping[str, float] | None) -> T:
        """One attempt: take its tokens (or ThrottledError past the deadline), count it, send it."""
        for name, tokens in {action: 1.0, **(cost or {})}.items():
            bucket = self.buckets.get(name)
            if bucket is not None:
                bucket.acquire(tokens, deadline=deadline)
        self._count(action)
        return fn()

    def call(self, action: str, fn: Callable[[], T], *, cost: Mapping[str, float] | None = None) -> T:
        """Call `fn` under the `action` bucket (and any extra buckets in `cost`, e.g.
        instances created), retrying throttling and transient errors. When the bucket
        cannot give a retry its token before the deadline, the retries end with the
        error that made them (a refused connection, a 5xx), not with the bucket's."""
        deadline = time.monotonic() + self.policy.deadline_seconds
        last: BaseException | None = None
        charged = False

        def attempt() -> T:
            nonlocal last, charged
            # the resources (instances) are charged once: a throttled attempt made none, and
            # a retry with the same client token makes them only once
            extra, charged = (None if charged else cost), True
            try:
                return self._paced(action, fn, deadline, extra)
            except RETRYABLE as exc:
                if last is not None and isinstance(exc, ClientSideThrottle):
                    raise _OutOfTime() from None
                last = exc
                raise

        try:
            return retry(attempt, self.policy, what=action, on_retry=lambda exc, delay: self._count(f"{action}.retries"))
        except _OutOfTime:
            raise last from None

    def once(self, action: str, fn: Callable[[], T], *, deadline: float) -> T:
        """Call `fn` once under the `action` bucket, never retried (a reachability check)."""
        return self._paced(action, fn, deadline, None)


class _OutOfTime(Exception):
    """The bucket has no token for another attempt before the deadline (not retryable)."""


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def client_token(request_id: str, *parts: str, limit: int = 64) -> str:
    """An idempotency token for one API call. Both clouds take at most 64 ASCII
    characters; a longer id (or one with extra parts) is hashed, deterministically."""
    if not parts and len(request_id) <= limit and request_id.isascii():
        return request_id
    digest = hashlib.sha256("\x00".join((request_id, *parts)).encode()).hexdigest()
    return digest[:limit]
