"""burst up / down / gc end to end through the real `burst` command, on each cloud's stand-in.

aws: real boto3 against moto (stands.moto_ec2's front); aliyun: the real
aliyun-python-sdk-ecs against burst's ECS emulator. The `burst` processes are
subprocesses that reach the stand-ins over HTTP; faults are set on the stand-ins.
"""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest

from burst.config import load_config
from burst.lifecycle import HostState
from burst.provider import TAG_BURST, TAG_CLUSTER, TAG_STORE, LaunchRequest
from burst.store import Store
from cloud_stands import (  # noqa: F401  (fixtures)
    cloud,
    cloud_burst,
    ecs_emulator,
    moto_server,
    tier_provider,
    wait_for,
)

SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
HOSTS = 8
REPLICAS = f"web={HOSTS * 4}"  # 4 replicas of 1 cpu fit one 4-cpu host


def read_store(burst):
    store = Store(load_config(burst.config).store_url)
    try:
        return store.hosts(), store.journal_entries()
    finally:
        store.close()


def up(burst, *extra: str):
    return burst.run("up", "ny", "--replicas", REPLICAS, "--deadline", "5m", *extra)


@SQLITE_ONLY
def test_a_stock_out_in_the_first_zone_moves_to_the_next_zone_in_the_same_second(cloud, cloud_burst):
    first, second = cloud.zones
    cloud.stock_out(first)
    out = up(cloud_burst)
    assert f"{HOSTS}/{HOSTS} hosts ready" in out.stdout, out.stdout

    hosts, entries = read_store(cloud_burst)
    ready = [h for h in hosts if h.state == "ready"]
    assert len(ready) == HOSTS and {h.zone for h in ready} == {second}
    assert {h.state for h in hosts if h.zone == first} == {"cancelled"}
    # the cloud made exactly the ready hosts' instances, all in the second zone, all running
    assert sorted(cloud.created()) == sorted(h.instance_id for h in ready)
    assert all(cloud.alive(h.instance_id) for h in ready)

    exhausted = [e for e in entries if e.kind == "offering.exhausted"]
    assert [json.loads(e.detail_json)["zone"] for e in exhausted] == [first]
    added = [e for e in entries if e.kind == "host.added"]
    assert len(added) == HOSTS and {json.loads(e.detail_json)["zone"] for e in added} == {second}
    assert (added[-1].at - exhausted[0].at).total_seconds() < 1.0
    # a capacity error fails fast: the empty zone was asked once, never retried
    assert cloud.launch_calls(first) == 1

    cloud_burst.run("down", "ny")
    assert not any(cloud.alive(i) for i in cloud.created())


def test_sigkill_between_the_launch_call_and_its_reply_then_a_rerun_launches_nothing_twice(cloud, cloud_burst):
    cloud.delay_next_launch_reply(120)  # the cloud does the launch, its answer never reaches the killed process
    proc = cloud_burst.popen("up", "ny", "--replicas", REPLICAS, "--deadline", "5m")
    try:
        wait_for("the RunInstances call reached the cloud", cloud.launch_tokens, seconds=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    made = cloud.created()
    assert len(made) == HOSTS
    hosts, _ = read_store(cloud_burst)
    assert len(hosts) == HOSTS and {h.state for h in hosts} == {"launching"}
    assert not any(h.instance_id for h in hosts)  # the reply was lost: the store never heard of them
    (token,) = set(cloud.launch_tokens())
    assert {h.launch_request_id for h in hosts} == {token}

    # meanwhile, those instances are not leaks: their launch is journaled, the rerun claims them
    listed = cloud_burst.json("gc", "--dry-run")
    assert listed["leaks"] == []

    out = up(cloud_burst)
    assert f"{HOSTS}/{HOSTS} hosts ready" in out.stdout, out.stdout
    hosts, _ = read_store(cloud_burst)
    assert len(hosts) == HOSTS and {h.state for h in hosts} == {"ready"}
    # the cloud created exactly the planned hosts, and each is held by exactly one host
    assert sorted(cloud.created()) == sorted(made)
    assert Counter(h.instance_id for h in hosts) == Counter(made)
    # the rerun asked again with the same ClientToken and got the same instances
    tokens = cloud.launch_tokens()
    assert len(tokens) >= 2 and set(tokens) == {token}

    cloud_burst.run("down", "ny")
    assert not any(cloud.alive(i) for i in made)


@SQLITE_ONLY
def test_an_instance_not_tagged_as_this_clusters_survives_down_and_gc(cloud, cloud_burst):
    untagged = cloud.create_outside({})
    other = cloud.create_outside({TAG_CLUSTER: "another-cluster", "team": "search"})
    up(cloud_burst)
    hosts, _ = read_store(cloud_burst)
    ours = [h.instance_id for h in hosts if h.state == "ready"]
    assert len(ours) == HOSTS

    cloud_burst.run("down", "ny")
    assert not any(cloud.alive(i) for i in ours)
    listed = cloud_burst.json("gc", "--dry-run")
    assert listed["leaks"] == []
    done = cloud_burst.json("gc", "--yes")
    assert done["terminated"] == []
    assert cloud.alive(untagged) and cloud.alive(other)


@SQLITE_ONLY
def test_gc_finds_a_leaked_instance_and_terminates_it_only_when_told(cloud, cloud_burst):
    foreign = cloud.create_outside({TAG_CLUSTER: "another-cluster"})
    up(cloud_burst)
    hosts, _ = read_store(cloud_burst)
    held = {h.instance_id for h in hosts}
    store = Store(load_config(cloud_burst.config).store_url)
    identity = store.identity
    store.close()
    # a leak: made with this cluster's and this store's tags, as a crashed burst might
    # have, unknown to the store; and an instance of another store sharing the cluster
    # name (staging beside production): never this store's to collect
    with tier_provider(cloud_burst) as provider:
        leaked = [i.id for i in provider.launch(LaunchRequest(
            request_id="leak-test-0001", count=2, instance_type=cloud.itype, zone=cloud.zones[0],
            tags={TAG_BURST: "burst-long-gone", TAG_STORE: identity}))]
        other_store = [i.id for i in provider.launch(LaunchRequest(
            request_id="leak-test-0002", count=1, instance_type=cloud.itype, zone=cloud.zones[0],
            tags={TAG_BURST: "staging-burst", TAG_STORE: "another-store"}))]
    assert len(leaked) == 2

    listed = cloud_burst.json("gc", "--dry-run")
    assert sorted(x["instance_id"] for x in listed["leaks"]) == sorted(leaked)
    assert {x["why"] for x in listed["leaks"]} == {"unknown to the store"}
    assert {x["tier"] for x in listed["leaks"]} == {"cloud"}
    table = cloud_burst.run("gc", "--dry-run")
    assert all(i in table.stdout for i in leaked)
    assert all(cloud.alive(i) for i in leaked)  # --dry-run changed nothing

    # another kind: the store says a host is terminated, but its instance lives on (a
    # store restored from a backup, a hand edit): the store walks it down, the cloud is not told
    gone = hosts[0]
    store = Store(load_config(cloud_burst.config).store_url)
    try:
        for state in (HostState.DRAINING, HostState.LEAVING, HostState.TERMINATING, HostState.TERMINATED):
            store.transition(store.host(gone.id), state)
    finally:
        store.close()
    leaked.append(gone.instance_id)
    held.discard(gone.instance_id)
    listed = cloud_burst.json("gc", "--dry-run")
    assert sorted(x["instance_id"] for x in listed["leaks"]) == sorted(leaked)
    why = {x["instance_id"]: x["why"] for x in listed["leaks"]}
    assert why[gone.instance_id] == f"host {gone.id} is terminated in the store"

    # no --yes and no terminal to confirm on: a one-line refusal, nothing terminated
    refused = cloud_burst.run("gc", check=False)
    assert refused.returncode == 1 and "without --yes" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert all(cloud.alive(i) for i in leaked)

    done = cloud_burst.json("gc", "--yes")
    assert sorted(done["terminated"]) == sorted(leaked) and done["failed"] == []
    assert not any(cloud.alive(i) for i in leaked)
    assert all(cloud.alive(i) for i in held) and cloud.alive(foreign) and cloud.alive(other_store[0])
    assert cloud_burst.json("gc", "--dry-run")["leaks"] == []

    _, entries = read_store(cloud_burst)
    gc = [(e.kind, json.loads(e.detail_json)) for e in entries if e.kind.startswith("gc.")]
    assert [k for k, _ in gc] == ["gc.intent", "gc.terminated"]
    assert sorted(gc[0][1]["ids"]) == sorted(leaked) and gc[0][1]["request_id"] == gc[1][1]["request_id"]

    cloud_burst.run("down", "ny")
    assert not any(cloud.alive(i) for i in held)


@SQLITE_ONLY
def test_down_after_a_sigkill_between_the_launch_call_and_its_reply_leaves_no_instance(cloud, cloud_burst):
    cloud.delay_next_launch_reply(120)
    proc = cloud_burst.popen("up", "ny", "--replicas", REPLICAS, "--deadline", "5m")
    try:
        wait_for("the RunInstances call reached the cloud", cloud.launch_tokens, seconds=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(cloud.created()) == HOSTS
    cloud_burst.run("down", "ny")
    assert [i for i in cloud.created() if cloud.alive(i)] == []


@SQLITE_ONLY
def test_gc_collects_whatever_a_down_after_a_lost_launch_reply_left_behind(cloud, cloud_burst):
    cloud.delay_next_launch_reply(120)
    proc = cloud_burst.popen("up", "ny", "--replicas", REPLICAS, "--deadline", "5m")
    try:
        wait_for("the RunInstances call reached the cloud", cloud.launch_tokens, seconds=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    cloud_burst.run("down", "ny")
    left = sorted(i for i in cloud.created() if cloud.alive(i))
    listed = cloud_burst.json("gc", "--dry-run")
    assert sorted(x["instance_id"] for x in listed["leaks"]) == left
    done = cloud_burst.json("gc", "--yes")
    assert sorted(done["terminated"]) == left
    assert [i for i in cloud.created() if cloud.alive(i)] == []
