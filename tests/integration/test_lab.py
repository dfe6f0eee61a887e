"""The local lab and the lab provider, on real namespaces, sshd, dockerd and registry."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from burst.lab import Lab, LabError, ssh_run
from burst.lab.system import ProcessRef, alive
from burst.provider import InstanceState, LaunchRequest, NotOwnedError
from burst.wait import DeadlineExceeded, wait_until
from burst_providers.lab import LabProvider
from stands.lab import lab_fixtures
from stands.lab import lab_provider as make_provider

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

shared_lab, lab = lab_fixtures(workers=2)


def wait_state(provider: LabProvider, ids: list[str], state: InstanceState, timeout: float = 60) -> list:
    found = []

    def all_in_state():
        found[:] = provider.describe(ids)
        return list(found) if len(found) == len(ids) and all(i.state is state for i in found) else None

    try:
        return wait_until(all_in_state, deadline=time.monotonic() + timeout, interval=0.1)
    except DeadlineExceeded:
        raise AssertionError(f"not {state.value} in {timeout}s: {[(i.id, i.state.value) for i in found]}") from None


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def lab_footprint(lab: Lab) -> tuple[list[ProcessRef], set[str], list[Path]]:
    st = lab.state.read()
    refs = [ProcessRef.from_json(p) for rec in st["hosts"].values() for p in rec["procs"].values()]
    namespaces = {rec["netns"] for rec in st["hosts"].values()} | {lab.hub}
    dirs = [lab.dir, lab.run_dir] + [Path(rec["dir"]) for rec in st["hosts"].values()]
    return refs, namespaces, dirs


def test_up_runs_the_base_service_and_down_leaves_nothing(make_lab):
    lab = make_lab(workers=2)
    refs, namespaces, dirs = lab_footprint(lab)
    roles = sorted(h.role for h in lab.hosts())
    assert roles == ["manager", "registry", "worker", "worker"]
    assert all(alive(r) for r in refs) and len(refs) == 7  # registry + 3 x (sshd, dockerd)
    assert namespaces <= netns_names()
    mgr = lab.docker("manager")
    tasks = mgr.services.get("web").tasks(filters={"desired-state": "running"})
    assert sorted(t["Status"]["State"] for t in tasks) == ["running", "running"]
    # the base image came from the lab registry
    assert lab.image.startswith(lab.registry + "/")
    # the root namespace got no address on the lab subnet
    subnet_prefix = lab.state.read()["subnet"].rsplit(".", 2)[0] + "."
    assert subnet_prefix not in subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    lab.down()
    assert not any(alive(r) for r in refs)
    assert not (namespaces & netns_names())
    assert not any(d.exists() for d in dirs)
    # no veth of this lab in the root namespace (they only ever lived in its namespaces)
    assert f"v{lab.tag}" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout


def test_two_labs_at_once_do_not_collide(make_lab, lab):
    second = make_lab(workers=1)
    assert second.state.read()["subnet"] != lab.state.read()["subnet"]
    first_ns = {h.netns for h in lab.hosts()}
    second_ns = {h.netns for h in second.hosts()}
    assert not first_ns & second_ns
    assert ssh_run(second, "onprem-1", "hostname").stdout.strip() == "onprem-1"
    second_refs, _, _ = lab_footprint(second)
    second.down()
    assert not any(alive(r) for r in second_refs)
    # the first lab is untouched by the second's down
    assert all(all(lab.processes_alive(h.name).values()) for h in lab.hosts())
    assert ssh_run(lab, "onprem-1", "hostname").stdout.strip() == "onprem-1"


def test_up_twice_is_refused(lab):
    with pytest.raises(LabError, match="already up"):
        Lab(lab.name, lab.dir).up()


def test_provider_launch_ssh_docker_terminate(tmp_path, lab):
    provider = make_provider(lab, tmp_path)
    req = LaunchRequest(request_id="req-1", count=2, instance_type="lab.host", zone="lab", tags={"burst:event": "ny"})
    made = provider.launch(req)
    ids = [i.id for i in made]
    try:
        assert len(ids) == 2 and all(i.tags["burst:cluster"] == "c1" for i in made)
        assert [i.id for i in provider.launch(req)] == ids  # idempotent on request_id
        running = wait_state(provider, ids, InstanceState.RUNNING)
        for inst in running:
            # real ssh with the lab key to the instance address, through the hub
            out = subprocess.run(
                ["ssh", *lab.ssh_options(), "-l", "root", inst.address, "hostname"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == inst.id
            assert lab.docker(inst.id).info()["Name"] == inst.id
            # dockerd over SSH is the host's own (DOCKER_HOST set by its sshd)
            assert ssh_run(lab, inst.id, "docker info --format '{{.Name}}'").stdout.strip() == inst.id
            assert provider.host_vars(inst.id, inst.address)["burst_host_root"].startswith(str(lab.dir))
        assert {i.id for i in provider.list()} == set(ids)
        assert make_provider(lab, tmp_path, cluster="other").list() == []
        with pytest.raises(NotOwnedError):
            provider.terminate(["manager", ids[0]], request_id="t-0")
        with pytest.raises(NotOwnedError):
            make_provider(lab, tmp_path, cluster="other").terminate(ids, request_id="t-1")
        assert len(provider.describe(ids)) == 2  # refused before touching any
        netns = [lab.host(i).netns for i in ids]
    finally:
        provider.terminate(ids, request_id="t-2")
    assert provider.describe(ids) == [] and provider.list() == []
    assert not set(netns) & netns_names()
    provider.terminate(ids, request_id="t-2")  # gone counts as done


def test_provider_boot_delay_and_broken_sshd(tmp_path, lab):
    provider = make_provider(lab, tmp_path, boot_delay_seconds=1.5, sshd_broken_hosts=1)
    ids: list[str] = []
    try:
        started = time.monotonic()
        made = provider.launch(LaunchRequest(request_id="req-b", count=2, instance_type="lab.host", zone="lab"))
        ids = [i.id for i in made]
        assert all(i.state is InstanceState.PENDING for i in made)
        wait_state(provider, ids, InstanceState.RUNNING)
        assert time.monotonic() - started >= 1.5
        broken, healthy = ids
        assert ssh_run(lab, healthy, "hostname").stdout.strip() == healthy
        refused = ssh_run(lab, broken, "hostname", timeout=30)
        assert refused.returncode == 255  # ssh cannot connect: no sshd on that host
        assert lab.docker(broken).ping()
        # the budget is spent: the replacement host has its sshd
        again = provider.launch(LaunchRequest(request_id="req-c", count=1, instance_type="lab.host", zone="lab"))
        ids.append(again[0].id)
        wait_state(provider, [again[0].id], InstanceState.RUNNING)
        assert ssh_run(lab, again[0].id, "true").returncode == 0
    finally:
        provider.terminate(ids, request_id="t-b")


def test_a_failed_up_removes_what_it_made(make_lab):
    lab = make_lab(up=False)
    with pytest.raises(LabError, match="not ready in time"):
        lab.up(workers=1, timeout=0.01)
    assert not {n for n in netns_names() if n.startswith(lab.name + ".")}
    assert not lab.dir.exists() and not lab.run_dir.exists()
