"""Stand-ins for initialisation and the swarm that record their calls.

They let the core run end to end with the fake provider and no hosts at all: each
host 'takes' a configurable time, done on a timer per host so one slow host never
holds back the batch. The real implementations are `burst.provision.ansible` and
`burst.provision.swarm`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from burst.provision import HostSink, HostTarget, NodeCapacity


class _Recorder:
    def __init__(self, options: Mapping[str, Any]):
        self.options = dict(options)
        self.seconds = float(options.get("seconds", 0.0))
        self.fail_hosts = set(options.get("fail_hosts", ()))  # host ids that fail, for drills
        self.fail_first = int(options.get("fail_first", 0))  # the first N hosts seen fail, for drills
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def _record(self, op: str, hosts: Sequence[HostTarget]) -> None:
        with self._lock:
            self.calls.append((op, tuple(h.host_id for h in hosts)))

    def _each(self, op: str, hosts: Sequence[HostTarget], sink: HostSink, deadline: float,
              data: Mapping[str, Any] | None = None) -> None:
        self._record(op, hosts)
        for host in hosts:
            if time.monotonic() + self.seconds > deadline:
                sink.done(host.host_id, False, f"{op}: deadline passed")
                continue
            sink.event(host.host_id, op, {"stand_in": True})
        time.sleep(self.seconds)
        for host in hosts:
            if time.monotonic() > deadline:
                continue
            with self._lock:
                failing = self.fail_first > 0
                self.fail_first -= failing
            if failing or host.host_id in self.fail_hosts:
                sink.done(host.host_id, False, f"{op}: failed (drill)")
            else:
                sink.done(host.host_id, True, "", {k: (v(host) if callable(v) else v) for k, v in (data or {}).items()})


class RecordingInitialiser(_Recorder):
    def initialise(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        self._each("initialise", hosts, sink, deadline, {"config_hash": "recording"})


class RecordingCluster(_Recorder):
    def __init__(self, options: Mapping[str, Any]):
        super().__init__(options)
        self.spillover: dict[str, dict[str, int]] = {}

    def join(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        self._each("join", hosts, sink, deadline, {"node_id": lambda h: f"node-{h.host_id}"})

    def drain(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        self._each("drain", hosts, sink, deadline)

    def leave(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        self._each("leave", hosts, sink, deadline)

    def ensure_spillover(self, event: str, service: str, replicas: int, in_place: int = 0) -> None:
        with self._lock:
            self.spillover.setdefault(event, {})[service] = replicas

    def wait_spillover(self, event: str, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        for host in hosts:
            sink.done(host.host_id, True)

    def spillover_running(self, event: str) -> dict[str, int]:
        with self._lock:
            return dict(self.spillover.get(event, {}))

    def remove_spillover(self, event: str) -> None:
        with self._lock:
            self.spillover.pop(event, None)

    def free_capacity(self) -> list[NodeCapacity]:
        """Room on existing nodes, from the option `free_room` ([[cpu, memory_gib], ...])."""
        return [NodeCapacity(f"node-{i}", float(cpu), float(mem))
                for i, (cpu, mem) in enumerate(self.options.get("free_room", []))]
