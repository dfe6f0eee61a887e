"""500 (or BENCH_INSTANCES) instances launched and terminated on each cloud's stand-in,
with throttling injected.

Prints, per cloud and per API action, the calls the stand-in accepted against the
minimum the API limits allow (100 instances per RunInstances, 100 ids per describe /
delete call), the throttled attempts that pacing retried, and the errors that reached
the caller (must be 0). Also: a stock-out in the first zone, timed, with its call count.

    python3 tests/bench/bench_clouds.py            # both clouds
    python3 tests/bench/bench_clouds.py aliyun     # one

The providers run with their production rate limits and retry policy; launches go out
5 batches at a time (as the core's tier concurrency would send them), then describe is
polled every second (ECS's advice: 1-2 s) until all run.

    BENCH_INSTANCES=1000 python3 tests/bench/bench_clouds.py   # a thousand-host burst
"""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from burst.provider import InstanceState, InsufficientCapacityError, LaunchRequest, ProviderContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the stands (pytest: pythonpath)

TOTAL = int(os.environ.get("BENCH_INSTANCES", "500"))
BATCH = 100
POLL_SECONDS = 1.0
WAIT_DEADLINE = 120.0
TYPE_FIELDS = {"cpu": 2, "memory_gib": 8, "price_per_hour": 0.1}


def run_burst(provider, zones, instance_type, tag):
    """Launch TOTAL in batches, wait for RUNNING, terminate; returns phase timings,
    polls made and the errors that reached the caller."""
    errors: list[BaseException] = []
    batches = math.ceil(TOTAL / BATCH)
    timings = {}

    def launch(n):
        req = LaunchRequest(request_id=f"{tag}-b{n}", count=min(BATCH, TOTAL - n * BATCH),
                            instance_type=instance_type, zone=zones[n % len(zones)], tags={"burst:burst-id": tag})
        return provider.launch(req)

    started = time.monotonic()
    ids: list[str] = []
    with ThreadPoolExecutor(max_workers=batches) as pool:
        for fut in [pool.submit(launch, n) for n in range(batches)]:
            try:
                ids += [i.id for i in fut.result()]
            except Exception as exc:  # noqa: BLE001 - counted and printed: must be none
                errors.append(exc)
    timings["launch"] = time.monotonic() - started

    started = time.monotonic()
    polls = 0
    while True:
        polls += 1
        try:
            found = provider.describe(ids)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
            break
        if len(found) == len(ids) and all(i.state is InstanceState.RUNNING for i in found):
            break
        if time.monotonic() - started > WAIT_DEADLINE:
            errors.append(TimeoutError(f"not all running after {WAIT_DEADLINE}s"))
            break
        time.sleep(POLL_SECONDS)
    timings["wait running"] = time.monotonic() - started

    started = time.monotonic()
    try:
        provider.terminate(ids, request_id=f"{tag}-down")
    except Exception as exc:  # noqa: BLE001
        errors.append(exc)
    timings["terminate"] = time.monotonic() - started
    left = provider.list()
    return ids, timings, polls, errors, left


def report(cloud, ids, timings, polls, errors, left, rows, stats=None):
    print(f"\n== {cloud}: {len(ids)} instances launched and terminated ==")
    print(f"  {'action':<22}{'accepted':>9}{'minimum':>9}{'over min':>10}{'throttled+retried':>19}")
    ok = True
    for action, accepted, minimum, throttled in rows:
        over = (accepted - minimum) / minimum * 100
        ok &= over <= 10
        print(f"  {action:<22}{accepted:>9}{minimum:>9}{over:>9.0f}%{throttled:>19}")
    print(f"  describe polls while waiting: {polls} (every {POLL_SECONDS:.0f}s; minimum {math.ceil(TOTAL / BATCH)} calls a poll)")
    print("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    print(f"  errors reaching the caller: {len(errors)}" + (f" {errors[:3]!r}" if errors else ""))
    print(f"  instances left for the cluster: {len(left)}")
    print(f"  within 10% of the minimum: {'yes' if ok else 'NO'}")
    if stats is not None:  # what burst itself counted: every attempt sent, and the retries among them
        print("  attempts counted by the provider's pacer: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
    return ok and not errors and not left and len(ids) == TOTAL


def bench_aliyun() -> bool:
    from stands.ecs_emulator import EcsEmulator
    from burst_providers.aliyun import AliyunProvider

    os.environ.setdefault("ALIBABA_CLOUD_ACCESS_KEY_ID", "bench-key-id")
    os.environ.setdefault("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "bench-key-secret")
    zones = ["cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"]
    types = [{"name": "ecs.g7.large", "zones": zones, **TYPE_FIELDS}]
    with EcsEmulator(pending_seconds=4.0, starting_seconds=4.0) as emu, tempfile.TemporaryDirectory() as tmp:
        provider = AliyunProvider(ProviderContext("bench", Path(tmp)), emu.provider_options(zones, types))
        # throttling from the server side: a tight RunInstances bucket, and a burst of
        # Throttling answers on the next describe / delete calls
        emu.throttle_rate(burst=3, per_second=2, action="RunInstances")
        emu.throttle_next(4, actions=["DescribeInstances", "DeleteInstances"])
        ids, timings, polls, errors, left = run_burst(provider, zones, "ecs.g7.large", "bench-ali")
        calls = math.ceil(TOTAL / BATCH)
        term_describe = emu.count("DescribeInstances", errors=False) - polls * calls - 1  # minus list()
        rows = [
            ("RunInstances", emu.count("RunInstances", errors=False), calls, emu.count("RunInstances", errors=True)),
            ("DescribeInstances", emu.count("DescribeInstances", errors=False), polls * calls + calls + 1,
             emu.count("DescribeInstances", errors=True)),
            ("DeleteInstances", emu.count("DeleteInstances", errors=False), calls, emu.count("DeleteInstances", errors=True)),
        ]
        ok = report("aliyun (ECS emulator, real aliyun-python-sdk-ecs)", ids, timings, polls, errors, left, rows,
                    getattr(provider.pacer, "stats", None))
        print(f"  (DescribeInstances minimum = {polls} polls x {calls} + {calls} ownership check before delete + 1 list;"
              f" ownership-check calls made: {term_describe})")

        # stock-out in the first zone: one call, an error naming the zone, fast
        emu.reset()
        emu.set_stock(0, zone=zones[0])
        started = time.monotonic()
        try:
            provider.launch(LaunchRequest("bench-ali-so", 100, "ecs.g7.large", zones[0]))
        except InsufficientCapacityError as exc:
            took = time.monotonic() - started
            print(f"  stock-out in {exc.zone}: InsufficientCapacityError after {took * 1000:.0f} ms, "
                  f"{emu.count('RunInstances')} RunInstances call(s)")
            ok &= emu.count("RunInstances") == 1
        provider.close()
        return ok


class ThrottleHook:
    """before-send on the provider's boto3 client: RequestLimitExceeded (EC2's real
    error XML, HTTP 503) for the first `first` sends of each action, then for a seeded
    `rate` of sends."""

    def __init__(self, first: int, rate: float, seed: int = 7):
        self.first, self.rate, self.rng = first, rate, random.Random(seed)
        self.sent: dict[str, int] = {}
        self.throttled: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request, event_name: str, **kwargs):
        from stands.moto_ec2 import ec2_error_response

        action = event_name.rsplit(".", 1)[-1]
        with self.lock:
            n = self.sent[action] = self.sent.get(action, 0) + 1
            throttle = n <= self.first or self.rng.random() < self.rate
            if throttle:
                self.throttled[action] = self.throttled.get(action, 0) + 1
        if not throttle:
            return None
        return ec2_error_response(request.url, "RequestLimitExceeded", "Request limit exceeded.", 503)


def bench_aws() -> bool:
    from stands.moto_ec2 import MotoEc2Server
    from burst_providers.aws import AwsProvider

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    region = "us-east-1"
    zones = [f"{region}a", f"{region}b", f"{region}c"]
    types = [{"name": "m5.large", "zones": zones, **TYPE_FIELDS}]
    with MotoEc2Server() as server, tempfile.TemporaryDirectory() as tmp:
        ami, subnets = server.network(region, zones)
        provider = AwsProvider(ProviderContext("bench", Path(tmp)), server.provider_options(region, ami, subnets, types))
        hook = ThrottleHook(first=2, rate=0.1)
        for action in ("RunInstances", "DescribeInstances", "TerminateInstances"):
            provider.adaptor.client.meta.events.register(f"before-send.ec2.{action}", hook)
        server.clear_calls()
        ids, timings, polls, errors, left = run_burst(provider, zones, "m5.large", "bench-aws")
        calls = math.ceil(TOTAL / BATCH)
        rows = [
            ("RunInstances", server.count("RunInstances"), calls, hook.throttled.get("RunInstances", 0)),
            ("DescribeInstances", server.count("DescribeInstances"), polls * calls + calls + 1,
             hook.throttled.get("DescribeInstances", 0)),
            ("TerminateInstances", server.count("TerminateInstances"), calls, hook.throttled.get("TerminateInstances", 0)),
        ]
        ok = report("aws (moto server, real boto3)", ids, timings, polls, errors, left, rows,
                    getattr(provider.pacer, "stats", None))
        print(f"  (DescribeInstances minimum = {polls} polls x {calls} + {calls} ownership check before terminate + 1 list)")

        server.reset()
        ami, subnets = server.network(region, zones)
        provider.close()
        provider = AwsProvider(ProviderContext("bench", Path(tmp)), server.provider_options(region, ami, subnets, types))
        server.set_capacity(0, zone=zones[0])
        started = time.monotonic()
        try:
            provider.launch(LaunchRequest("bench-aws-so", 100, "m5.large", zones[0]))
        except InsufficientCapacityError as exc:
            took = time.monotonic() - started
            print(f"  stock-out in {exc.zone}: InsufficientCapacityError after {took * 1000:.0f} ms, "
                  f"{server.count('RunInstances')} RunInstances call(s)")
            ok &= server.count("RunInstances") == 1
        provider.close()
        return ok


def main(argv: list[str]) -> int:
    benches = {"aliyun": bench_aliyun, "aws": bench_aws}
    chosen = argv or list(benches)
    results = {name: benches[name]() for name in chosen}
    print("\n" + ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
