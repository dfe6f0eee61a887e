"""Pacing for cloud API calls, shared by every cloud provider.

- `TokenBucket`: a client-side rate limiter, so a burst of hundreds of hosts stays inside
  the cloud's published request buckets instead of discovering them through throttling.
- `retry`: jittered exponential backoff under one deadline, for ThrottledError and
  TransientProviderError ONLY. Capacity, quota, auth and config errors go straight to
  the caller: a stock-out retried for minutes is the failure this module exists to avoid.
- `Pacer`: one bucket per API action plus the retry policy; every attempt (first or
  retried) takes a token, so retries are paced too.
- `chunked` and `client_token`: batching within the APIs' id-count and token-length limits.

Cloud SDKs have their own retry loops; providers turn them off so this module is the
only place a call is repeated (and every repeat is counted and paced).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from burst.provider.errors import ThrottledError, TransientProviderError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE = (ThrottledError, TransientProviderError)


class TokenBucket:
    """A thread-safe token bucket: `capacity` tokens, refilled at `per_second`.

    `acquire(n)` blocks until n tokens are there (at most `capacity` may be asked for
    at once) or raises ThrottledError if that would pass the deadline.
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
                raise ThrottledError(f"client-side rate limit: no token within the deadline (needs {wait:.1f}s)")
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
    rng: random.Random | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run `call`, retrying ThrottledError / TransientProviderError with full-jitter
    backoff until `policy.deadline_seconds`. Any other error propagates at once.

    Only idempotent calls may be passed here (launch carries its ClientToken).
    """
    rng = rng or random.Random()
    deadline = clock() + policy.deadline_seconds
    attempt = 0
    while True:
        try:
            return call()
        except RETRYABLE as exc:
            delay = rng.uniform(0, min(policy.max_seconds, policy.base_seconds * 2**attempt))
            if clock() + delay > deadline:
                raise
            log.info("%s: %s (code %s); retry %d in %.2fs", what, type(exc).__name__, exc.code, attempt + 1, delay)
            if on_retry:
                on_retry(exc, delay)
            sleep(delay)
            attempt += 1


class Pacer:
    """Client-side rate limits per API action, and the retry policy, for one provider."""

    def __init__(self, limits: Mapping[str, RateLimit], policy: RetryPolicy):
        self.policy = policy
        self.buckets = {name: TokenBucket(lim.burst, lim.per_second) for name, lim in limits.items()}

    def call(self, action: str, fn: Callable[[], T], *, cost: Mapping[str, float] | None = None) -> T:
        """Call `fn` under the `action` bucket (and any extra buckets in `cost`, e.g.
        instances created), retrying throttling and transient errors."""
        deadline = time.monotonic() + self.policy.deadline_seconds
        charges = {action: 1.0, **(cost or {})}

        def attempt() -> T:
            for name, tokens in charges.items():
                bucket = self.buckets.get(name)
                if bucket is not None:
                    bucket.acquire(tokens, deadline=deadline)
            return fn()

        return retry(attempt, self.policy, what=action)


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


# --- options every cloud provider shares -------------------------------------------------


class InstanceTypeOption(BaseModel):
    """One entry of the `instance_types` list the core injects into a tier's options."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    cpu: float = Field(gt=0)
    memory_gib: float = Field(gt=0)
    price_per_hour: float = Field(ge=0)
    zones: list[str] = Field(min_length=1)

    def to_instance_type(self):
        from burst.provider import InstanceType

        return InstanceType(self.name, self.cpu, self.memory_gib, self.price_per_hour, tuple(self.zones))


M = TypeVar("M", bound=BaseModel)


def parse_options(model: type[M], options: Mapping, *, provider: str) -> M:
    """Validate a provider's options; a bad one is a ProviderConfigError naming the key."""
    from pydantic import ValidationError

    from burst.provider.errors import ProviderConfigError

    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "options"
        raise ProviderConfigError(f"{provider} options: {key}: {err['msg']}", provider=provider) from None


def merged_limits(defaults: Mapping[str, RateLimit], given: Mapping[str, RateLimit]) -> dict[str, RateLimit]:
    """The default buckets, with the ones the config names replaced; an unknown name is
    an error (a typo must not silently leave a bucket at its default)."""
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown rate limit(s) {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **given}
