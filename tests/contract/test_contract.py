"""One suite every provider passes: the clauses of burst.provider.Provider's docstrings.

Each test runs on every stand of conftest.STANDS (fake, aws on moto, aliyun on the ECS
emulator; the lab adds its own). Launch never waits: tests that need RUNNING poll
describe under a deadline.
"""

from __future__ import annotations

import time

import pytest

from burst.provider import (
    TAG_BURST,
    TAG_CLUSTER,
    InstanceNotFoundError,
    InstanceState,
    InsufficientCapacityError,
    LaunchRequest,
    NotOwnedError,
    ProviderAuthError,
)

from .conftest import CLUSTER

EXTRA_TAGS = {TAG_BURST: "b-contract", "burst:event": "spring-gala"}


def launch(stand, request_id: str, count: int = 3, zone: int = 0):
    return stand.provider.launch(
        LaunchRequest(request_id=request_id, count=count, instance_type=stand.instance_type,
                      zone=stand.zones[zone], tags=EXTRA_TAGS)
    )


def wait_running(stand, ids, deadline_seconds: float = 90):  # a deadline, not a timing: lab hosts boot slower under load
    deadline = time.monotonic() + deadline_seconds
    while True:
        found = stand.provider.describe(ids)
        if len(found) == len(ids) and all(i.state is InstanceState.RUNNING for i in found):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"not running within {deadline_seconds}s: {[(i.id, i.state) for i in found]}")
        time.sleep(0.2)


def test_launch_returns_tagged_instances_without_waiting(stand):
    made = launch(stand, "b-contract-0")
    assert len(made) == 3 and len({i.id for i in made}) == 3
    for inst in made:
        assert inst.zone == stand.zones[0]
        assert inst.instance_type == stand.instance_type
        assert inst.state in (InstanceState.PENDING, InstanceState.RUNNING)
        assert inst.tags[TAG_CLUSTER] == CLUSTER
        assert inst.tags[TAG_BURST] == "b-contract"
        assert stand.exists(inst.id)


def test_relaunch_with_same_request_id_creates_nothing(stand):
    first = launch(stand, "b-contract-1")
    again = launch(stand, "b-contract-1")
    assert sorted(i.id for i in again) == sorted(i.id for i in first)
    assert len(stand.provider.list()) == 3


def test_launch_above_max_batch_is_refused(stand):
    with pytest.raises(ValueError):
        launch(stand, "b-contract-big", count=stand.provider.max_batch + 1)
    assert stand.provider.list() == []


def test_get_reaches_running_with_an_address(stand):
    made = launch(stand, "b-contract-2", count=1)
    wait_running(stand, [made[0].id])
    got = stand.provider.get(made[0].id)
    assert got.id == made[0].id and got.state is InstanceState.RUNNING
    assert got.address


def test_get_unknown_raises_not_found(stand):
    with pytest.raises(InstanceNotFoundError):
        stand.provider.get(stand.unknown_id)


def test_describe_leaves_unknown_ids_out(stand):
    made = launch(stand, "b-contract-3")
    ids = [i.id for i in made]
    found = stand.provider.describe([*ids, stand.unknown_id])
    assert sorted(i.id for i in found) == sorted(ids)


def test_list_holds_only_owned_instances(stand):
    made = launch(stand, "b-contract-4", count=2)
    untagged = stand.make_foreign(None)
    other = stand.make_foreign("another-cluster")
    listed = {i.id for i in stand.provider.list()}
    assert listed == {i.id for i in made}
    assert untagged not in listed and other not in listed


def test_terminate_removes_instances_and_is_idempotent(stand):
    made = launch(stand, "b-contract-5")
    ids = [i.id for i in made]
    stand.provider.terminate(ids, request_id="t-contract-5")
    assert stand.provider.list() == []
    assert not any(stand.exists(i) for i in ids)
    assert all(i.state is InstanceState.TERMINATED for i in stand.provider.describe(ids))
    stand.provider.terminate(ids, request_id="t-contract-5")  # again: already gone is done
    stand.provider.terminate(ids, request_id="t-contract-5b")


def test_terminate_of_unknown_id_is_done(stand):
    stand.provider.terminate([stand.unknown_id], request_id="t-contract-unknown")


@pytest.mark.parametrize("foreign_cluster", [None, "another-cluster"], ids=["untagged", "other-cluster"])
def test_terminate_refuses_a_foreign_instance_before_touching_any(stand, foreign_cluster):
    own = launch(stand, "b-contract-6", count=1)[0]
    foreign = stand.make_foreign(foreign_cluster)
    with pytest.raises(NotOwnedError):
        stand.provider.terminate([own.id, foreign], request_id="t-contract-6")
    assert stand.exists(foreign)
    assert stand.exists(own.id)


def test_stock_out_fails_fast_and_the_next_zone_works(stand):
    stand.stock_out(stand.zones[0])
    started = time.monotonic()
    with pytest.raises(InsufficientCapacityError) as caught:
        launch(stand, "b-contract-7", zone=0)
    assert caught.value.created == []
    assert time.monotonic() - started < 5  # no retry loop behind it
    made = launch(stand, "b-contract-7-z1", zone=1)
    assert len(made) == 3 and all(i.zone == stand.zones[1] for i in made)


def test_partial_batch_keeps_what_it_got(stand):
    stand.short_stock(stand.zones[0], 2)
    with pytest.raises(InsufficientCapacityError) as caught:
        launch(stand, "b-contract-8", count=3)
    created = caught.value.created
    assert len(created) == 2
    assert all(stand.exists(i.id) and i.tags[TAG_CLUSTER] == CLUSTER for i in created)
    assert {i.id for i in stand.provider.list()} == {i.id for i in created}


def test_check_passes_on_a_reachable_provider_and_creates_nothing(stand):
    assert stand.provider.check(time.monotonic() + 10) is None
    assert stand.provider.list() == []


def test_a_wrong_credential_is_an_auth_error_and_never_a_capacity_one(credentialed_stand):
    stand = credentialed_stand
    with stand.wrong_credentials() as provider:
        calls = [lambda: provider.list(), lambda: provider.check(time.monotonic() + 10),
                 lambda: provider.launch(LaunchRequest("b-contract-auth", 1, stand.instance_type, stand.zones[0]))]
        for call in calls:
            with pytest.raises(ProviderAuthError) as caught:
                call()
            assert not caught.value.retryable and not isinstance(caught.value, InsufficientCapacityError)
        assert provider.pacer.stats["launch"] == 1 and provider.pacer.stats["launch.retries"] == 0  # fatal: one try
    assert stand.provider.list() == []  # nothing was made
