"""What happens to a host after the provider hands it over: initialise it, join it to
the cluster, place the spillover on it, and later drain it and take it out.

The reconciler talks to these two interfaces only. Each call takes a batch of hosts
and reports every host on its own through a `HostSink` as soon as that host is done,
so one slow host never holds back the others (the reconciler starts a new batch
with whatever became ready meanwhile). Every call has a deadline (a
`time.monotonic()` value); a host not done by then is reported failed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class HostTarget:
    """A host as the provisioning steps see it."""

    host_id: str
    address: str
    provider: str
    tier: str
    instance_id: str = ""
    node_id: str = ""  # the swarm node id, once joined
    #: inventory variables (ssh user, port, key file, repo URL...): what differs between
    #: the lab and production is here, never in a code path.
    vars: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


class HostSink(Protocol):
    """Receives per-host progress while a batch runs (called from worker threads)."""

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        """A step of this host happened (an Ansible task, an image pull...): journaled."""

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        """This host finished the phase. `data` carries results (node_id, config_hash)."""


class Initialiser(Protocol):
    def initialise(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """Install packages and apply configuration. A host already initialised with
        the same configuration hash is not initialised again (reported ok at once)."""


@dataclass(frozen=True)
class NodeCapacity:
    """Free room on one existing cluster node, for the planner."""

    node: str
    cpu: float
    memory_gib: float


class Cluster(Protocol):
    def join(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """Join each host, wait for it to be Ready, label it with `host.labels`.
        Reports `data={"node_id": ...}`. Idempotent: a host already in is ok."""

    def drain(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """Drain each node (its tasks move away or stop) before `deadline`."""

    def leave(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """The host leaves the swarm and its node is removed. A node already gone is ok."""

    def ensure_spillover(self, event: str, service: str, replicas: int, in_place: int = 0) -> None:
        """Run `replicas` extra tasks of `service` for `event`: `in_place` of them by
        growing the service itself where the cluster already has room, the rest as
        spillover on the nodes labelled with `event_key(event)`. Idempotent."""

    def spillover_running(self, event: str) -> dict[str, int]:
        """Running extra tasks per service for this event (spillover and in place)."""

    def wait_spillover(self, event: str, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """Wait (until `deadline`) for the event's extra tasks to run; report per host
        the image pulls (`sink.event(..., "image_pull", ...)`) and `done`."""

    def remove_spillover(self, event: str) -> None:
        """Stop every extra task of this event (spillover and in place). Idempotent."""

    def free_capacity(self) -> list[NodeCapacity]:
        """Free cpu and memory per node that is already in the cluster."""


def event_key(event: str) -> str:
    """The event as cluster names and labels can carry it (DNS-like, at most 48
    characters): itself when it already fits, else a slug plus a hash of the whole
    name, so two occurrences `gala@2027-02-09T20:00` never share a key."""
    if re.fullmatch(r"[a-z0-9][a-z0-9-]{0,47}", event):
        return event
    slug = re.sub(r"[^a-z0-9]+", "-", event.lower()).strip("-")[:40] or "event"
    return f"{slug}-{hashlib.sha1(event.encode()).hexdigest()[:7]}"
