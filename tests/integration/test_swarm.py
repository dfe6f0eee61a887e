"""SwarmCluster on a real swarm of lab dockerds: join through join.yml over real SSH,
Ready + labels, spillover tasks Running on the new nodes with the image pulled from the
lab registry, drain, leave through leave.yml, node removed."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from burst.lab import Lab
from stands.lab import lab_fixtures
from burst.provision import HostTarget
from burst.provision.swarm import ClusterError, SwarmCluster, spillover_name

pytestmark = [pytest.mark.lab, pytest.mark.timeout(400)]

EVENT = "newyear"


class Sink:
    """Records what a Cluster call reports, per host."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []
        self.results: dict[str, tuple[bool, str, dict]] = {}
        self._lock = threading.Lock()

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        with self._lock:
            self.events.append((host_id, kind, dict(detail)))

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            assert host_id not in self.results, f"{host_id} reported twice"
            self.results[host_id] = (ok, error, dict(data or {}))


shared_lab, lab = lab_fixtures(workers=1)


@pytest.fixture
def new_hosts(lab):
    """Two fresh lab hosts (as a cloud would hand them over), removed after the test."""
    names = []
    try:
        for _ in range(2):
            names.append(lab.add_host().name)
        yield [target(lab, n) for n in names]
    finally:
        for n in names:
            lab.remove_host(n)


def target(lab: Lab, name: str) -> HostTarget:
    host = lab.host(name)
    labels = {"burst.event": EVENT, "burst.tier": "cloud", "burst.provider": "lab"}
    return HostTarget(host_id=name, address=host.address, provider="lab", tier="cloud", vars=host.vars, labels=labels)


def test_join_spillover_drain_leave(lab, new_hosts):
    cluster = SwarmCluster(lab.manager_docker_url)
    mgr = lab.docker("manager")
    sink = Sink()
    cluster.join(new_hosts, sink, time.monotonic() + 120)
    assert {h: ok for h, (ok, _, _) in sink.results.items()} == {h.host_id: True for h in new_hosts}, sink.results
    node_ids = {h: data["node_id"] for h, (_, _, data) in sink.results.items()}
    for host in new_hosts:
        node = mgr.nodes.get(node_ids[host.host_id]).attrs
        assert node["Status"]["State"] == "ready"
        assert node["Description"]["Hostname"] == host.host_id
        assert {k: node["Spec"]["Labels"][k] for k in host.labels} == dict(host.labels)
    # the join token never reached an event
    token = mgr.swarm.attrs["JoinTokens"]["Worker"]
    assert token not in repr(sink.events) and token not in repr(sink.results)

    again = Sink()  # idempotent: hosts already in are reported with the same node ids
    cluster.join(new_hosts, again, time.monotonic() + 60)
    assert {h: d["node_id"] for h, (_, _, d) in again.results.items()} == node_ids

    free = {c.node for c in cluster.free_capacity()}
    assert {"onprem-1", *node_ids} == free  # the manager is drained: no room there

    cluster.ensure_spillover(EVENT, "web", 2)
    cluster.ensure_spillover(EVENT, "web", 2)  # idempotent
    placed = Sink()
    cluster.wait_spillover(EVENT, new_hosts, placed, time.monotonic() + 60)
    assert all(ok for ok, _, _ in placed.results.values()), placed.results
    assert cluster.spillover_running(EVENT) == {"web": 2}
    pulls = [d for _, kind, d in placed.events if kind == "image_pull"]
    assert len(pulls) == 2 and all(d["schedule_to_running_seconds"] >= 0 for d in pulls)
    tasks = mgr.services.get(spillover_name("web", EVENT)).tasks(filters={"desired-state": "running"})
    assert {t["NodeID"] for t in tasks} == set(node_ids.values())  # only on the new nodes
    for host in new_hosts:  # each new host pulled the image from the lab registry
        tags = [t for img in lab.docker(host.host_id).images.list() for t in img.tags]
        assert lab.image in tags

    cluster.ensure_spillover(EVENT, "web", 1)
    spec = mgr.services.get(spillover_name("web", EVENT)).attrs["Spec"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 1

    drained = Sink()
    cluster.drain(new_hosts, drained, time.monotonic() + 60)
    assert all(ok for ok, _, _ in drained.results.values()), drained.results
    for node_id in node_ids.values():
        assert mgr.nodes.get(node_id).attrs["Spec"]["Availability"] == "drain"
        live = mgr.api.tasks(filters={"node": node_id, "desired-state": "running"})
        assert not [t for t in live if t["Status"]["State"] == "running"]
    cluster.remove_spillover(EVENT)
    assert cluster.spillover_running(EVENT) == {}
    cluster.remove_spillover(EVENT)  # gone is fine

    left = Sink()
    cluster.leave(new_hosts, left, time.monotonic() + 120)
    assert all(ok for ok, _, _ in left.results.values()), left.results
    assert not [kind for _, kind, _ in left.events if kind == "leave_forced"]
    remaining = {n.id for n in mgr.nodes.list()}
    assert not remaining & set(node_ids.values())
    for host in new_hosts:
        assert lab.docker(host.host_id).info()["Swarm"]["LocalNodeState"] == "inactive"
    gone = Sink()
    cluster.leave(new_hosts, gone, time.monotonic() + 30)  # a node already gone is ok
    assert all(ok for ok, _, _ in gone.results.values())


def test_join_fails_alone_for_a_host_without_sshd(lab):
    broken = lab.add_host(sshd=False)
    healthy = lab.add_host()
    try:
        cluster = SwarmCluster(lab.manager_docker_url)
        sink = Sink()
        started = time.monotonic()
        cluster.join([target(lab, broken.name), target(lab, healthy.name)], sink, started + 60)
        assert time.monotonic() - started < 60
        assert sink.results[healthy.name][0] is True
        ok, error, _ = sink.results[broken.name]
        assert ok is False and error.startswith("join:")
        left = Sink()
        cluster.leave([target(lab, healthy.name)], left, time.monotonic() + 60)
        assert left.results[healthy.name][0] is True
    finally:
        lab.remove_host(broken.name)
        lab.remove_host(healthy.name)


def test_spillover_of_an_unknown_service_is_an_error(lab):
    with pytest.raises(ClusterError, match="no service 'nope'"):
        SwarmCluster(lab.manager_docker_url).ensure_spillover(EVENT, "nope", 1)


def test_every_host_is_reported_when_the_deadline_already_passed(lab):
    host = lab.add_host()
    try:
        sink = Sink()
        SwarmCluster(lab.manager_docker_url).join([target(lab, host.name)], sink, time.monotonic() - 1)
        ok, error, _ = sink.results[host.name]
        assert ok is False and "deadline" in error
    finally:
        lab.remove_host(host.name)


def test_an_unreachable_manager_is_one_clear_error(tmp_path):
    with pytest.raises(ClusterError, match="swarm: connect to unix://"):
        SwarmCluster(f"unix://{tmp_path}/no-such.sock")
