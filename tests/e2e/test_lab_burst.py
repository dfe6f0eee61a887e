"""burst up / down on the local lab: real namespaced hosts, real ansible-runner over SSH
(dnf from the lab's RPM repository, masterless puppet apply), a real Docker Swarm.

Needs root and the lab's Debian packages (the tests skip otherwise, saying which; in
CI a missing package is a failure)."""

from __future__ import annotations

import json
import subprocess

from burst.cli.demo import LAB_CONFIG
from burst.config import load_config
from burst.store import Store

# `lab` (tests/e2e/conftest.py): one lab for this module, put back after every test
# however it ended, down at the end


def write_config(tmp_path, lab, broken_sshd=0, broken_puppet=0, phase_timeout=150):
    """The demo's lab config, with the failure drills asked for."""
    text = LAB_CONFIG.format(dir=tmp_path, lab=lab.name, lab_dir=lab.dir, docker_url=lab.manager_docker_url)
    text = text.replace("phase_timeout_seconds = 150", f"phase_timeout_seconds = {phase_timeout}")
    text = text.replace("boot_delay_seconds = 2", f"boot_delay_seconds = 1\nsshd_broken_hosts = {broken_sshd}\n"
                                                  f"puppet_broken_hosts = {broken_puppet}")
    path = tmp_path / "burst.toml"
    path.write_text(text)
    return path


def burst(config, *args, timeout=600):
    import sys

    proc = subprocess.run([sys.executable, "-m", "burst", *args, "--config", str(config)], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, env={"COLUMNS": "120",
                                                                                    **__import__("os").environ})
    assert proc.returncode == 0, f"burst {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc


def launched_hosts(lab) -> set[str]:
    return {h.name for h in lab.hosts() if h.role == "launched"}


def netns_of(lab) -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith(f"{lab.name}.")}


def test_up_initialises_joins_and_schedules_on_new_lab_hosts_and_down_leaves_nothing(tmp_path, lab):
    config = write_config(tmp_path, lab)
    namespaces_before = netns_of(lab)
    up = json.loads(burst(config, "up", "gala", "--replicas", "web=4", "--deadline", "10m", "--json").stdout)
    assert up["ready_hosts"] == 4 and up["planned_hosts"] == 4
    for phase in ("launch", "initialise", "join", "schedule"):
        assert up["phases"][phase]["n"] == 4, phase

    store = Store(load_config(config).store_url)
    hosts = store.hosts()
    entries = store.journal_entries()
    store.close()
    assert len(hosts) == 4 and {h.state for h in hosts} == {"ready"}
    # the real initialisation ran on each: the RPM from the lab repository, puppet's file
    for h in hosts:
        root = lab.host(h.instance_id).host_root
        rpm = subprocess.run(["rpm", "--root", root, "-q", "burst-node-agent"], capture_output=True, text=True)
        assert rpm.returncode == 0, rpm.stderr
    tasks = {json.loads(e.detail_json).get("task") for e in entries if e.kind == "initialise.ansible"}
    assert {"install the packages", "puppet apply"} <= tasks
    pulls = [json.loads(e.detail_json) for e in entries if e.kind == "schedule.image_pull"]
    assert len(pulls) == 4 and all(p["image"].startswith(lab.registry) for p in pulls)

    # the spillover tasks run on exactly the new nodes
    mgr = lab.docker("manager")
    service = next(s for s in mgr.services.list() if s.name.startswith("web-burst-gala"))
    running = [t for t in service.tasks() if t["Status"]["State"] == "running"]
    assert sorted(t["NodeID"] for t in running) == sorted(h.node_id for h in hosts)

    down = json.loads(burst(config, "down", "gala", "--json").stdout)
    assert down["status"] == "down" and down["hosts"] == {"terminated": 4}
    assert {n.attrs["Description"]["Hostname"] for n in mgr.nodes.list()} == {"manager", "onprem-1"}
    assert not [s for s in mgr.services.list() if s.name.startswith("web-burst-")]
    assert launched_hosts(lab) == set()
    assert netns_of(lab) == namespaces_before


def test_a_host_without_sshd_and_a_host_whose_puppet_fails_are_replaced(tmp_path, lab):
    config = write_config(tmp_path, lab, broken_sshd=1, broken_puppet=1, phase_timeout=60)
    up = json.loads(burst(config, "up", "flash", "--replicas", "web=3", "--deadline", "10m", "--json").stdout)
    assert up["ready_hosts"] == 3

    store = Store(load_config(config).store_url)
    hosts = store.hosts()
    store.close()
    failed = sorted((h for h in hosts if h.attempt == 0 and h.state != "ready"), key=lambda h: h.error)
    assert len(failed) == 2 and {h.state for h in failed} == {"terminated"}
    errors = " | ".join(h.error for h in failed)
    assert "wait for ssh" in errors and "puppet apply: Error" in errors, errors
    assert sorted(h.slot for h in hosts if h.attempt == 1) == sorted(h.slot for h in failed)

    burst(config, "down", "flash")
    assert launched_hosts(lab) == set()


POOL_TIER = """[[tiers]]
name = "pool"
provider = "onprem"
ready_seconds = 60

"""


def test_the_pool_is_borrowed_first_set_up_like_cloud_hosts_and_returned_last(tmp_path, lab):
    config = write_config(tmp_path, lab)
    config.write_text(config.read_text().replace("[[tiers]]", POOL_TIER + "[[tiers]]", 1))
    burst(config, "pool", "import", "lab-bu", str(lab.dir / "servers.yml"))
    burst(config, "pool", "lend", "lab-bu", "--share", "100%")

    up = json.loads(burst(config, "up", "spring", "--replicas", "web=3", "--deadline", "10m", "--json").stdout)
    assert up["ready_hosts"] == 3
    store = Store(load_config(config).store_url)
    hosts = {h.id: h for h in store.hosts()}
    assert sorted(h.tier for h in hosts.values()) == ["lab-cloud", "pool", "pool"]
    servers = {h.instance_id for h in hosts.values() if h.tier == "pool"}
    assert servers == {"server-1", "server-2"}
    # the borrowed servers were initialised by the same playbooks and joined the swarm
    for name in servers:
        rpm = subprocess.run(["rpm", "--root", lab.host(name).host_root, "-q", "burst-node-agent"],
                             capture_output=True, text=True)
        assert rpm.returncode == 0, rpm.stderr
    mgr = lab.docker("manager")
    assert servers <= {n.attrs["Description"]["Hostname"] for n in mgr.nodes.list()}

    burst(config, "down", "spring")
    moves = [(hosts[e.host_id].tier, e.to_state) for e in store.journal_entries()
             if e.kind == "host.transition" and e.to_state in ("draining", "terminated", "released")]
    store.close()
    cloud_gone = max(i for i, (tier, state) in enumerate(moves) if tier == "lab-cloud" and state == "terminated")
    pool_first = min(i for i, (tier, _) in enumerate(moves) if tier == "pool")
    assert cloud_gone < pool_first, moves
    assert [state for tier, state in moves if tier == "pool"].count("released") == 2
    assert not servers & {n.attrs["Description"]["Hostname"] for n in mgr.nodes.list()}
    shown = json.loads(burst(config, "pool", "show", "lab-bu", "--json").stdout)
    assert {h["status"] for h in shown} == {"lent"}
