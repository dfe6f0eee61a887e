"""Client-side pacing with a fake clock: buckets, backoff, the allow-list, deadlines."""

import random

import pytest

from burst.provider.errors import InsufficientCapacityError, ThrottledError, TransientProviderError
from burst.provider.pacing import RetryPolicy, TokenBucket, chunked, client_token, retry


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_bucket_gives_its_burst_at_once_then_paces_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(5, 2, clock=clock, sleep=clock.sleep)
    assert all(bucket.try_acquire() for _ in range(5))
    assert not bucket.try_acquire()
    waited = sum(bucket.acquire() for _ in range(4))
    assert waited == pytest.approx(2.0)  # 4 more tokens at 2 per second
    clock.now += 100
    assert all(bucket.try_acquire() for _ in range(5)) and not bucket.try_acquire()  # capped at capacity


def test_a_bucket_refuses_a_wait_past_the_deadline():
    clock = FakeClock()
    bucket = TokenBucket(1, 0.5, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    with pytest.raises(ThrottledError, match="client-side rate limit"):
        bucket.acquire(deadline=clock.now + 1)
    assert clock.slept == []


def test_retry_backs_off_with_jitter_only_for_throttling_and_transient_errors():
    clock = FakeClock()
    errors = [ThrottledError("slow down"), TransientProviderError("502"), ThrottledError("again")]

    def call():
        if errors:
            raise errors.pop(0)
        return "ok"

    policy = RetryPolicy(base_seconds=1, max_seconds=8, deadline_seconds=60)
    assert retry(call, policy, clock=clock, sleep=clock.sleep, rng=random.Random(1)) == "ok"
    assert len(clock.slept) == 3
    assert all(0 <= s <= cap for s, cap in zip(clock.slept, [1, 2, 4]))

    calls = []

    def out_of_stock():
        calls.append(1)
        raise InsufficientCapacityError("no stock")

    with pytest.raises(InsufficientCapacityError):
        retry(out_of_stock, policy, clock=clock, sleep=clock.sleep)
    assert calls == [1]  # capacity errors fail fast: the next zone is tried instead


def test_retry_gives_up_at_its_deadline_with_the_last_error():
    clock = FakeClock()

    def always():
        raise ThrottledError("throttled")

    with pytest.raises(ThrottledError):
        retry(always, RetryPolicy(base_seconds=1, max_seconds=4, deadline_seconds=10), clock=clock,
              sleep=clock.sleep, rng=random.Random(2))
    assert clock.now - 100.0 <= 10


def test_chunks_and_client_tokens_stay_within_the_api_limits():
    assert [len(c) for c in chunked(list(range(250)), 100)] == [100, 100, 50]
    long = client_token("b-" + "x" * 80, "zone-a")
    assert len(long) <= 64 and long == client_token("b-" + "x" * 80, "zone-a")
    assert client_token("b-" + "x" * 80, "zone-b") != long
