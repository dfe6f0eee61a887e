"""Client-side pacing with a fake clock: buckets, backoff, the allow-list, deadlines."""

import pytest

from burst.provider.errors import InsufficientCapacityError, ThrottledError, TransientProviderError
from burst.provider.pacing import Pacer, RateLimit, RetryPolicy, TokenBucket, chunked, client_token, retry


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
    assert retry(call, policy, clock=clock, sleep=clock.sleep) == "ok"
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

    attempts = []

    def counted():
        attempts.append(clock.now)
        always()

    with pytest.raises(ThrottledError, match="throttled"):
        retry(counted, RetryPolicy(base_seconds=1, max_seconds=4, deadline_seconds=10), clock=clock,
              sleep=clock.sleep)
    assert clock.now - 100.0 <= 10  # never slept past the deadline
    assert len(attempts) == len(clock.slept) + 1 >= 3  # it did retry, and every sleep led to an attempt


@pytest.mark.parametrize("fatal", ["quota", "auth", "config"])
def test_fatal_errors_are_never_retried(fatal):
    from burst.provider.errors import ProviderAuthError, ProviderConfigError, QuotaExceededError

    kind = {"quota": QuotaExceededError, "auth": ProviderAuthError, "config": ProviderConfigError}[fatal]
    clock, calls = FakeClock(), []

    def call():
        calls.append(1)
        raise kind("no")

    with pytest.raises(kind):
        retry(call, RetryPolicy(base_seconds=1, max_seconds=4, deadline_seconds=60), clock=clock, sleep=clock.sleep)
    assert calls == [1] and clock.slept == []


def test_the_pacer_counts_every_attempt_including_retries():
    pacer = Pacer({"describe": RateLimit(burst=2, per_second=1000)},
                  RetryPolicy(base_seconds=0.001, max_seconds=0.002, deadline_seconds=5))
    errors = [TransientProviderError("502"), ThrottledError("slow down")]

    def call():
        if errors:
            raise errors.pop(0)
        return "ok"

    assert pacer.call("describe", call) == "ok"
    assert pacer.stats["describe"] == 3 and pacer.stats["describe.retries"] == 2
    # once: one attempt, never retried, still paced and counted
    with pytest.raises(TransientProviderError):
        pacer.once("describe", lambda: (_ for _ in ()).throw(TransientProviderError("down")), deadline=10**9)
    assert pacer.stats["describe"] == 4 and pacer.stats["describe.retries"] == 2


def test_chunks_and_client_tokens_stay_within_the_api_limits():
    assert [len(c) for c in chunked(list(range(250)), 100)] == [100, 100, 50]
    long = client_token("b-" + "x" * 80, "zone-a")
    assert len(long) <= 64 and long == client_token("b-" + "x" * 80, "zone-a")
    assert client_token("b-" + "x" * 80, "zone-b") != long


def test_when_the_bucket_ends_the_retries_the_caller_sees_the_error_that_caused_them():
    # one token, refilled far slower than the deadline: the second attempt cannot be paced in time
    pacer = Pacer({"launch": RateLimit(burst=1, per_second=0.01)},
                  RetryPolicy(base_seconds=0.001, max_seconds=0.002, deadline_seconds=2))

    def refused():
        raise TransientProviderError("connection refused")

    with pytest.raises(TransientProviderError, match="connection refused"):
        pacer.call("launch", refused)
    assert pacer.stats["launch"] == 1
    # with no error before it, the bucket's own ThrottledError is the answer
    with pytest.raises(ThrottledError, match="client-side rate limit"):
        pacer.call("launch", lambda: "never sent")


def test_a_retried_launch_takes_its_instances_from_the_resource_bucket_once():
    """EC2's resource bucket counts instances made: a throttled attempt made none, and a
    retry with the same client token makes them once. Charging every attempt emptied the
    bucket at 1,000 instances (bench_clouds) and failed launches that should have waited."""
    pacer = Pacer({"launch": RateLimit(burst=10, per_second=1000),
                   "launched_instances": RateLimit(burst=100, per_second=0.01)},
                  RetryPolicy(base_seconds=0.001, max_seconds=0.002, deadline_seconds=2))
    attempts = []

    def launch():
        attempts.append(1)
        if len(attempts) < 3:
            raise ThrottledError("RequestLimitExceeded")
        return "made 100"

    assert pacer.call("launch", launch, cost={"launched_instances": 100}) == "made 100"
    assert len(attempts) == 3 and pacer.stats["launch.retries"] == 2
    assert pacer.buckets["launched_instances"].try_acquire(1) is False  # 100 taken once, none left
