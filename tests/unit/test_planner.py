from burst.planner import Offering, ServiceShape, TierOffer, plan
from burst.provision import NodeCapacity

WEB = ServiceShape("web", 1, 2)
API = ServiceShape("api", 0.5, 1)


def tier(name, ready, *offers, max_hosts=None):
    return TierOffer(name, name, ready, tuple(Offering(name, name, *o) for o in offers), max_hosts)


POOL = tier("pool", 30, ("p16", 16, 64, 0.0, ("dc1",), 2))
ALI = tier("ali", 90, ("g7.xlarge", 4, 16, 0.20, ("h", "i")), ("c7.2xlarge", 8, 16, 0.30, ("h",)))
AWS = tier("aws", 120, ("m5.xlarge", 4, 16, 0.19, ("a", "b")))


def test_pool_first_then_the_cheapest_type_per_replica():
    p = plan({"web": 100}, [WEB, API], [POOL, ALI, AWS], seconds_to_deadline=300)
    assert [(g.tier, g.instance_type, g.count) for g in p.groups] == [("pool", "p16", 2), ("ali", "c7.2xlarge", 9)]
    assert sum(sum(g.replicas.values()) for g in p.groups) == 100
    assert p.unplaced == {}
    assert p.cost_per_hour == round(9 * 0.30, 4)
    assert p.ready_seconds == 90


def test_a_tier_that_cannot_be_ready_before_the_deadline_is_skipped():
    p = plan({"web": 10}, [WEB], [ALI, AWS], seconds_to_deadline=60)
    assert p.groups == ()
    assert p.unplaced == {"web": 10}
    assert [t for t, _ in p.skipped] == ["ali", "aws"]


def test_free_room_in_the_cluster_is_used_first():
    free = [NodeCapacity("n1", 3, 8), NodeCapacity("n2", 0.5, 1)]
    p = plan({"web": 4, "api": 1}, [WEB, API], [AWS], seconds_to_deadline=600, free=free)
    assert p.absorbed == {"web": 3, "api": 1}
    assert p.hosts == 1 and p.groups[0].replicas == {"web": 1}


def test_max_hosts_spills_into_the_next_tier():
    capped = tier("ali", 90, ("g7.xlarge", 4, 16, 0.20, ("h",)), max_hosts=3)
    p = plan({"web": 20}, [WEB], [capped, AWS], seconds_to_deadline=600)
    assert [(g.tier, g.count) for g in p.groups] == [("ali", 3), ("aws", 2)]


def test_mixed_services_pack_onto_the_same_hosts():
    p = plan({"web": 3, "api": 2}, [WEB, API], [AWS], seconds_to_deadline=600)
    assert p.hosts == 1
    assert p.groups[0].replicas == {"web": 3, "api": 2}


def test_a_replica_bigger_than_every_type_is_unplaced():
    huge = ServiceShape("huge", 64, 256)
    p = plan({"huge": 1, "web": 1}, [huge, WEB], [ALI, AWS], seconds_to_deadline=600)
    assert p.unplaced == {"huge": 1}
    assert p.hosts == 1


def test_plan_round_trips_through_json():
    from burst.planner import Plan

    p = plan({"web": 50, "api": 7}, [WEB, API], [POOL, ALI, AWS], seconds_to_deadline=300)
    assert Plan.from_dict(p.to_dict()) == p


def test_a_large_demand_is_planned_by_pattern_not_host_by_host():
    p = plan({"web": 200_000, "api": 50_000}, [WEB, API], [POOL, ALI, AWS], seconds_to_deadline=300)
    assert p.unplaced == {}
    assert sum(sum(g.replicas.values()) for g in p.groups) == 250_000
    # correctness of the fast path: every host's load fits its shape
    for g in p.groups:
        assert g.replicas.get("web", 0) * 1 + g.replicas.get("api", 0) * 0.5 <= g.count * (16 if g.tier == "pool" else 8)


def test_a_service_with_one_task_per_host_gets_a_host_per_replica():
    one_per_host = ServiceShape("edge", 0.5, 0.5, max_per_host=1)
    p = plan({"edge": 5, "api": 4}, [one_per_host, API], [AWS], seconds_to_deadline=600)
    assert p.hosts == 5
    assert p.groups[0].replicas == {"edge": 5, "api": 4}  # the others still share the hosts
