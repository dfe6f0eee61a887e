"""The simulated world: clouds, initialisation and the swarm on virtual time.

They keep the real contracts (`Provider`, `Initialiser`, `Cluster`), so the real
planner, reconciler and store drive them as they drive the clouds. Latencies are
drawn from the profile, each from its own seeded stream (one per instance, host and
call), so a run is the same every time; calls are paced by the clouds' published
buckets with the same `TokenBucket` the real providers use, on virtual time. What
each part did is recorded for the floor and the report.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from burst.provider import (
    TAG_BATCH,
    Instance,
    InstanceState,
    InstanceType,
    InsufficientCapacityError,
    LaunchRequest,
    Provider,
    ProviderContext,
    ThrottledError,
)
from burst.provider.pacing import TokenBucket
from burst.provision import HostSink, HostTarget, NodeCapacity
from burst.simulate.clock import VirtualClock
from burst.simulate.profile import CloudProfile, Duration, Profile


def _rng(seed: int, *key: object) -> random.Random:
    return random.Random(":".join(str(k) for k in (seed, *key)))


@dataclass
class _Instance:
    id: str
    zone: str
    instance_type: str
    tags: dict[str, str]
    launched_at: float
    ready_at: float | None  # None: never (a stalled boot)
    terminated: bool = False


@dataclass
class LaunchCall:
    """One launch call as it happened: when asked, how long the cloud took, what it made."""

    tier: str
    asked_at: float
    latency: float
    instances: list[str]


@dataclass
class CloudRecord:
    launches: list[LaunchCall] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    boot: dict[str, float] = field(default_factory=dict)  # instance id -> its boot seconds


class SimCloud(Provider):
    name: ClassVar[str] = "sim"

    def __init__(self, context: ProviderContext, tier: str, types: Sequence[InstanceType], profile: Profile,
                 clock: VirtualClock, record: CloudRecord):
        super().__init__(context, {})
        self.tier, self.types, self.clock, self.record = tier, list(types), clock, record
        self.profile: CloudProfile = profile.for_tier(tier)
        self.seed = profile.seed
        self.faults = [f for f in profile.faults if f.tier == tier]
        self.max_batch = self.profile.max_batch
        self.poll_seconds = self.profile.poll_seconds
        p = self.profile
        self._buckets = {name: TokenBucket(b.capacity, b.per_second, clock=clock.monotonic, sleep=clock.sleep)
                         for name, b in (("launch", p.launch_bucket), ("instances", p.instance_bucket),
                                         ("describe", p.describe_bucket), ("terminate", p.terminate_bucket))}
        self._instances: dict[str, _Instance] = {}
        self._requests: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def _call(self, action: str, latency: Duration, tokens: Mapping[str, float], key: str = "") -> float:
        """Wait for the buckets (client-side pacing, as the real providers do) and the
        reply; the reply's latency (drawn by `key`, else by the call's number)."""
        deadline = self.clock.monotonic() + 60
        for bucket, n in tokens.items():
            try:
                self._buckets[bucket].acquire(n, deadline=deadline)
            except ThrottledError:
                self.record.throttled += 1
                raise
        with self._lock:
            self._calls += 1
            n = self._calls
            self.record.calls[action] = self.record.calls.get(action, 0) + 1
        took = latency.draw(_rng(self.seed, self.tier, action, key or n))
        self.clock.sleep(took)
        return took

    def _fault(self, kind: str) -> bool:
        return any(f.kind == kind and self.clock.monotonic() >= f.at_seconds for f in self.faults)

    def instance_types(self) -> Sequence[InstanceType]:
        return list(self.types)

    def launch(self, req: LaunchRequest) -> list[Instance]:
        asked = self.clock.monotonic()
        latency = self._call("launch", self.profile.launch_call, {"launch": 1, "instances": req.count},
                             key=req.request_id)
        with self._lock:
            if req.request_id in self._requests:
                return [self._view(self._instances[i]) for i in self._requests[req.request_id]]
            if self._fault("no_stock"):
                raise InsufficientCapacityError.no_stock(
                    self.name, f"sim: no stock of {req.instance_type} in {req.zone} on {self.tier}",
                    code="NoStock", zone=req.zone, instance_type=req.instance_type)
            stalled = self._fault("stall")
            now = self.clock.monotonic()
            made = []
            for k in range(req.count):
                iid = f"sim-{self.tier}-{len(self._instances) + 1:06d}"
                boot = self.profile.boot.draw(_rng(self.seed, self.tier, "boot", req.request_id, k))
                self.record.boot[iid] = boot
                self._instances[iid] = _Instance(iid, req.zone, req.instance_type,
                                                 {**self.owner_tags(req.tags), TAG_BATCH: req.request_id}, now,
                                                 None if stalled else now + boot)
                made.append(iid)
            self._requests[req.request_id] = made
            self.record.launches.append(LaunchCall(self.tier, asked, latency, made))
            return [self._view(self._instances[i]) for i in made]

    def _view(self, rec: _Instance) -> Instance:
        now = self.clock.monotonic()
        if rec.terminated:
            state = InstanceState.TERMINATED
        elif rec.ready_at is not None and now >= rec.ready_at:
            state = InstanceState.RUNNING
        else:
            state = InstanceState.PENDING
        return Instance(id=rec.id, provider=self.name, zone=rec.zone, instance_type=rec.instance_type, state=state,
                        address=f"sim://{rec.id}" if state is InstanceState.RUNNING else None, tags=dict(rec.tags))

    def describe(self, ids: Sequence[str]) -> list[Instance]:
        for _ in range(0, max(1, len(ids)), 1000):
            self._call("describe", self.profile.describe_call, {"describe": 1})
        with self._lock:
            return [self._view(self._instances[i]) for i in ids if i in self._instances]

    def list(self) -> list[Instance]:
        self._call("describe", self.profile.describe_call, {"describe": 1})
        with self._lock:
            return [self._view(r) for r in self._instances.values() if not r.terminated]

    def terminate(self, ids: Sequence[str], *, request_id: str) -> None:
        self._call("terminate", self.profile.terminate_call, {"terminate": 1})
        with self._lock:
            for i in ids:
                if i in self._instances:
                    self._instances[i].terminated = True

    def alive(self) -> int:
        with self._lock:
            return sum(1 for r in self._instances.values() if not r.terminated)


class SimProviders:
    """One simulated cloud per tier (what `ProviderSet` is for the real ones)."""

    def __init__(self, config, profile: Profile, clock: VirtualClock):
        self.records: dict[str, CloudRecord] = {t.name: CloudRecord() for t in config.tiers}
        context = ProviderContext(cluster=config.cluster.name, state_dir=config.state_dir)
        self._clouds = {
            t.name: SimCloud(context, t.name, [x.to_type() for x in t.instance_types], profile, clock,
                             self.records[t.name])
            for t in config.tiers}

    def get(self, tier_name: str) -> SimCloud:
        return self._clouds[tier_name]

    def close(self) -> None:
        pass


class _Steps:
    """Per-host steps that take a drawn time each; a batch reports every host as it finishes."""

    def __init__(self, clock: VirtualClock, seed: int):
        self.clock, self.seed = clock, seed
        self.took: dict[tuple[str, str], float] = {}  # (step, host id) -> seconds drawn
        self._lock = threading.Lock()

    def _run(self, step: str, hosts: Sequence[HostTarget], sink: HostSink, deadline: float, seconds: Duration,
             fail_rate: float = 0.0, data: Mapping[str, Any] | None = None) -> None:
        start = self.clock.monotonic()
        plan = []
        for h in hosts:
            rng = _rng(self.seed, step, h.host_id)
            took = seconds.draw(rng)
            with self._lock:
                self.took[(step, h.host_id)] = took
            plan.append((start + took, h.host_id, rng.random() < fail_rate))
        for finish, host_id, fails in sorted(plan):
            if finish > deadline:
                self.clock.sleep_until(deadline)
                sink.done(host_id, False, f"{step}: deadline passed")
                continue
            self.clock.sleep_until(finish)
            if fails:
                sink.done(host_id, False, f"{step}: failed (simulated)")
            else:
                sink.done(host_id, True, "", {k: v.format(host=host_id) for k, v in (data or {}).items()})


class SimInitialiser(_Steps):
    def __init__(self, clock: VirtualClock, profile: Profile):
        super().__init__(clock, profile.seed)
        self.profile = profile

    def initialise(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        p = self.profile.initialise
        self._run("initialise", hosts, sink, deadline, p.seconds, p.fail_rate, {"config_hash": "sim"})


class SimCluster(_Steps):
    """The swarm: join, drain, leave; and the spillover image pulled onto each new node
    once it is in and the extra tasks are asked for, over the profile's image path."""

    def __init__(self, clock: VirtualClock, profile: Profile):
        super().__init__(clock, profile.seed)
        self.profile = profile
        self.joined_at: dict[str, float] = {}
        self.asked_at: float | None = None
        self.pulls: dict[str, tuple[float, float]] = {}  # node's host id -> (pull start, pull end)
        self.pull_log: list[tuple[str, float, float]] = []  # every pull there was, for the report
        self._demand: dict[str, dict[str, int]] = {}
        self._line_free = 0.0

    def join(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        p = self.profile.join

        class _Joined:
            def event(_, host_id, kind, detail):
                sink.event(host_id, kind, detail)

            def done(_, host_id, ok, error="", data=None):
                if ok:
                    self.joined_at[host_id] = self.clock.monotonic()
                sink.done(host_id, ok, error, data)

        self._run("join", hosts, _Joined(), deadline, p.seconds, p.fail_rate, {"node_id": "node-{host}"})

    def drain(self, hosts, sink, deadline) -> None:
        self._run("drain", hosts, sink, deadline, self.profile.drain)

    def leave(self, hosts, sink, deadline) -> None:
        self._run("leave", hosts, sink, deadline, self.profile.leave)
        with self._lock:  # no longer nodes of the swarm
            for h in hosts:
                self.joined_at.pop(h.host_id, None)
                self.pulls.pop(h.host_id, None)

    def ensure_spillover(self, event: str, service: str, replicas: int, in_place: int = 0) -> None:
        with self._lock:
            self._demand.setdefault(event, {})[service] = replicas
            if self.asked_at is None:
                self.asked_at = self.clock.monotonic()

    def pull_seconds(self) -> tuple[float, float]:
        """(seconds one pull holds the shared line, seconds one pull takes at a host's speed)."""
        image = self.profile.image
        megabits = image.size_mb * 8
        return megabits / (image.line_gbit * 1000), megabits / (image.host_gbit * 1000)

    def _pull_end(self, host_id: str) -> float:
        """When this host's pull ends: it starts once the node is in and the tasks are
        asked for; from the data centre, pulls share one line, first come first served."""
        if host_id in self.pulls:
            return self.pulls[host_id][1]
        start = max(self.joined_at.get(host_id, self.clock.monotonic()), self.asked_at or 0.0)
        on_line, at_host = self.pull_seconds()
        if self.profile.image.registry == "datacentre":
            begin = max(start, self._line_free)
            self._line_free = begin + on_line
            end = max(self._line_free, start + at_host)
        else:
            end = start + at_host
        self.pulls[host_id] = (start, end)
        self.pull_log.append((host_id, start, end))
        return end

    def wait_spillover(self, event: str, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        with self._lock:
            ends = sorted((self._pull_end(h.host_id), h.host_id)
                          for h in sorted(hosts, key=lambda h: self.joined_at.get(h.host_id, 0.0)))
        for end, host_id in ends:
            if end > deadline:
                self.clock.sleep_until(deadline)
                sink.done(host_id, False, "image pull: deadline passed")
                continue
            self.clock.sleep_until(end)
            start = self.pulls[host_id][0]
            sink.event(host_id, "image_pull", {"seconds": round(end - start, 3)})
            sink.done(host_id, True)

    def spillover_running(self, event: str) -> dict[str, int]:
        """The extra tasks whose node has its image by now (spread evenly over the nodes)."""
        with self._lock:
            now = self.clock.monotonic()
            nodes = len(self.joined_at) or 1
            pulled = sum(1 for host in self.joined_at if host in self.pulls and self.pulls[host][1] <= now)
            return {s: n * pulled // nodes for s, n in self._demand.get(event, {}).items()}

    def remove_spillover(self, event: str) -> None:
        with self._lock:
            self._demand.pop(event, None)

    def free_capacity(self) -> list[NodeCapacity]:
        return []
