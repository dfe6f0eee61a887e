from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from burst.plan import Plan
from burst.planner import Offering, ServiceShape, TierOffer, lp_bound, plan
from burst.provision import NodeCapacity

WEB = ServiceShape("web", 1, 2)
API = ServiceShape("api", 0.5, 1)


def tier(name, ready, *offers, max_hosts=None, balance_zones=True):
    return TierOffer(name, name, ready, tuple(Offering(name, name, *o) for o in offers), max_hosts, balance_zones)


POOL = tier("pool", 30, ("p16", 16, 64, 0.0, ("dc1",), 2))
ALI = tier("ali", 90, ("g7.xlarge", 4, 16, 0.20, ("h", "i")), ("c7.2xlarge", 8, 16, 0.30, ("h",)))
AWS = tier("aws", 120, ("m5.xlarge", 4, 16, 0.19, ("a", "b")))

# issue 10's mixed demand onto four types in three zones
MIXED_SHAPES = [ServiceShape("a", 0.5, 1), ServiceShape("b", 1, 2), ServiceShape("c", 2, 8), ServiceShape("d", 4, 4)]
MIXED = {"a": 4000, "b": 3000, "c": 2000, "d": 1000}
ZONES = ("z1", "z2", "z3")
FOUR = [("t4x8", 4, 8, 0.20, ZONES), ("t8x16", 8, 16, 0.38, ZONES),
        ("t16x64", 16, 64, 0.90, ZONES), ("t32x128", 32, 128, 1.70, ZONES)]


def placed(p):
    out = defaultdict(int)
    for g in p.groups:
        for name, n in g.replicas.items():
            out[name] += n
    return dict(out)


def hosts_by(p, *keys):
    out = defaultdict(int)
    for g in p.groups:
        key = tuple(getattr(g, k) for k in keys)
        out[key if len(keys) > 1 else key[0]] += g.count
    return dict(out)


def check_hosts(p, tiers, shapes):
    """Every host carries what fits it; a group's replicas are what its hosts carry."""
    offering = {(o.tier, o.instance_type): o for t in tiers for o in t.offerings}
    shape = {s.name: s for s in shapes}
    for g in p.groups:
        o = offering[(g.tier, g.instance_type)]
        assert g.zone in o.zones
        assert sum(n for n, _ in g.per_host) == g.count
        carried = defaultdict(int)
        for n, each in g.per_host:
            assert n > 0 and each
            assert sum(k * shape[s].cpu for s, k in each.items()) <= o.cpu + 1e-9
            assert sum(k * shape[s].memory_gib for s, k in each.items()) <= o.memory_gib + 1e-9
            for s, k in each.items():
                assert shape[s].max_per_host is None or k <= shape[s].max_per_host
                carried[s] += n * k
        assert dict(carried) == g.replicas


def test_pool_first_then_the_clouds_mixing_types():
    p = plan({"web": 100}, [WEB, API], [POOL, ALI, AWS], seconds_to_deadline=300)
    # 32 on the pool; 68 on ali: eight 8-cpu hosts and one 4-cpu host (2.60/h), not
    # nine 8-cpu hosts (2.70/h); the 4-cpu host goes to zone i, as h has the eight
    assert [(g.tier, g.zone, g.instance_type, g.count) for g in p.groups] == [
        ("pool", "dc1", "p16", 2), ("ali", "i", "g7.xlarge", 1), ("ali", "h", "c7.2xlarge", 8)]
    assert placed(p) == {"web": 100}
    assert p.unplaced == {}
    assert p.cost_per_hour == round(8 * 0.30 + 0.20, 4)
    assert p.ready_seconds == 90
    check_hosts(p, [POOL, ALI, AWS], [WEB, API])


def test_a_tier_that_cannot_be_ready_before_the_deadline_is_skipped():
    p = plan({"web": 10}, [WEB], [ALI, AWS], seconds_to_deadline=60)
    assert p.groups == ()
    assert p.unplaced == {"web": 10}
    assert [t for t, _ in p.skipped] == ["ali", "aws"]


def test_a_late_tier_is_skipped_and_the_next_one_that_makes_it_takes_all():
    late = tier("ali", 400, ("g7.xlarge", 4, 16, 0.01, ("h",)))
    p = plan({"web": 10}, [WEB], [late, AWS], seconds_to_deadline=300)
    assert [t for t, _ in p.skipped] == ["ali"]
    assert {g.tier for g in p.groups} == {"aws"} and placed(p) == {"web": 10}


def test_free_room_in_the_cluster_is_used_first():
    free = [NodeCapacity("n1", 3, 8), NodeCapacity("n2", 0.5, 1)]
    p = plan({"web": 4, "api": 1}, [WEB, API], [AWS], seconds_to_deadline=600, free=free)
    assert p.absorbed == {"web": 3, "api": 1}
    assert p.hosts == 1 and p.groups[0].replicas == {"web": 1}


def test_max_hosts_spills_into_the_next_tier():
    capped = tier("ali", 90, ("g7.xlarge", 4, 16, 0.20, ("h",)), max_hosts=3)
    p = plan({"web": 20}, [WEB], [capped, AWS], seconds_to_deadline=600)
    assert hosts_by(p, "tier") == {"ali": 3, "aws": 2}
    assert placed(p) == {"web": 20}


def test_stock_of_a_type_is_respected_and_the_next_type_takes_the_rest():
    cheap_few = tier("ali", 90, ("c7.2xlarge", 8, 16, 0.30, ("h",), 4), ("g7.xlarge", 4, 16, 0.20, ("h",)))
    p = plan({"web": 60}, [WEB], [cheap_few, AWS], seconds_to_deadline=600)
    assert hosts_by(p, "instance_type") == {"c7.2xlarge": 4, "g7.xlarge": 7}  # 32 + 28
    assert p.unplaced == {}


def test_when_every_tier_runs_out_the_rest_is_unplaced():
    few = tier("ali", 90, ("g7.xlarge", 4, 16, 0.20, ("h",), 2))
    p = plan({"web": 50}, [WEB], [POOL, few], seconds_to_deadline=600)
    assert hosts_by(p, "tier") == {"pool": 2, "ali": 2}
    assert placed(p) == {"web": 32 + 8} and p.unplaced == {"web": 10}


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
    p = plan({"web": 50, "api": 7}, [WEB, API], [POOL, ALI, AWS], seconds_to_deadline=300)
    assert Plan.from_dict(p.to_dict()) == p
    assert Plan.from_json(p.to_json()) == p


def test_a_plan_stored_before_per_host_existed_still_loads():
    p = plan({"web": 50}, [WEB], [ALI], seconds_to_deadline=300)
    old = p.to_dict()
    for g in old["groups"]:
        del g["per_host"]
    loaded = Plan.from_dict(old)
    assert [g.per_host for g in loaded.groups] == [()] * len(p.groups)
    assert loaded.cost_per_hour == p.cost_per_hour


def test_a_large_demand_is_planned_by_pattern_not_host_by_host():
    p = plan({"web": 200_000, "api": 50_000}, [WEB, API], [POOL, ALI, AWS], seconds_to_deadline=300)
    assert p.unplaced == {}
    assert placed(p) == {"web": 200_000, "api": 50_000}
    assert sum(len(g.per_host) for g in p.groups) < 20
    check_hosts(p, [POOL, ALI, AWS], [WEB, API])


def test_a_service_with_one_task_per_host_gets_a_host_per_replica():
    one_per_host = ServiceShape("edge", 0.5, 0.5, max_per_host=1)
    p = plan({"edge": 5, "api": 4}, [one_per_host, API], [AWS], seconds_to_deadline=600)
    assert p.hosts == 5
    assert placed(p) == {"edge": 5, "api": 4}  # the others still share the hosts
    check_hosts(p, [AWS], [one_per_host, API])


def test_max_per_host_holds_on_large_hosts_and_at_scale():
    port = ServiceShape("port", 0.25, 0.5, max_per_host=2)
    big = tier("ali", 90, ("r32", 32, 128, 1.0, ("h", "i")), ("r4", 4, 8, 0.2, ("h", "i")))
    p = plan({"port": 101, "web": 300}, [port, WEB], [big], seconds_to_deadline=600)
    assert placed(p) == {"port": 101, "web": 300}
    assert p.hosts >= 51
    check_hosts(p, [big], [port, WEB])


def test_the_mixed_demand_lands_within_two_percent_of_the_lp_bound_in_every_zone():
    one = tier("ali", 90, *FOUR)
    p = plan(MIXED, MIXED_SHAPES, [one], seconds_to_deadline=300)
    bound = lp_bound(MIXED, MIXED_SHAPES, [one], seconds_to_deadline=300)
    assert abs(bound - 628.75) < 1e-6
    assert bound <= p.cost_per_hour <= 1.02 * bound
    assert len(hosts_by(p, "instance_type")) > 1  # types are mixed
    assert {g.zone for g in p.groups} == set(ZONES)
    assert placed(p) == MIXED
    check_hosts(p, [one], MIXED_SHAPES)


def test_the_mixed_demand_beats_the_single_type_plan_of_before():
    p = plan(MIXED, MIXED_SHAPES, [tier("ali", 90, *FOUR)], seconds_to_deadline=300)
    assert p.cost_per_hour < 691.90 / 1.05


def test_hosts_are_balanced_over_each_types_zones():
    one = tier("ali", 90, *FOUR)
    p = plan(MIXED, MIXED_SHAPES, [one], seconds_to_deadline=300)
    per_zone = hosts_by(p, "instance_type", "zone")
    for itype in {t for t, _ in per_zone}:
        counts = [per_zone.get((itype, z), 0) for z in ZONES]
        assert max(counts) - min(counts) <= 1, (itype, counts)
    totals = [sum(n for (_, z), n in per_zone.items() if z == zone) for zone in ZONES]
    assert max(totals) - min(totals) <= 1, totals


def test_a_tier_may_opt_out_of_zone_balancing():
    one = tier("ali", 90, *FOUR, balance_zones=False)
    p = plan(MIXED, MIXED_SHAPES, [one], seconds_to_deadline=300)
    assert {g.zone for g in p.groups} == {"z1"}
    assert placed(p) == MIXED


def test_two_hosts_in_two_zones_go_one_to_each():
    p = plan({"web": 8}, [WEB], [AWS], seconds_to_deadline=600)
    assert hosts_by(p, "zone") == {"a": 1, "b": 1}


def test_the_lp_bound_is_below_every_plan_and_tight_for_a_uniform_demand():
    one = tier("ali", 90, *FOUR)
    assert lp_bound({"web": 10_000}, [WEB], [one], seconds_to_deadline=300) == 10_000 / 8 * 0.38
    p = plan({"web": 10_000}, [WEB], [one], seconds_to_deadline=300)
    assert p.cost_per_hour == 10_000 / 8 * 0.38


def test_the_lp_bound_skips_late_tiers_and_leaves_the_free_pool_at_no_cost():
    assert lp_bound({"web": 10}, [WEB], [ALI], seconds_to_deadline=60) == 0.0
    assert lp_bound({"web": 32}, [WEB], [POOL, ALI], seconds_to_deadline=300) == 0.0
    assert lp_bound({"web": 40}, [WEB], [POOL, ALI], seconds_to_deadline=300) > 0.0


# -- properties on random demands, shapes and tiers --

shape_st = st.builds(
    lambda i, cpu, ratio, mph: ServiceShape(f"s{i}", cpu, cpu * ratio, mph),
    st.integers(0, 10**6), st.sampled_from([0.25, 0.5, 1, 2, 3, 4, 8]),
    st.sampled_from([0.5, 1, 2, 3, 4, 8]), st.one_of(st.none(), st.integers(1, 4)))
offer_st = st.tuples(st.sampled_from([(2, 4), (4, 8), (4, 16), (8, 16), (16, 64), (32, 128), (48, 96)]),
                     st.floats(0.05, 3.0), st.integers(1, 3), st.one_of(st.none(), st.integers(0, 40)))


@st.composite
def problems(draw):
    shapes = draw(st.lists(shape_st, min_size=1, max_size=8, unique_by=lambda s: s.name))
    demand = {s.name: draw(st.integers(0, 3000)) for s in shapes}
    tiers = []
    for n in range(draw(st.integers(1, 3))):
        offers = draw(st.lists(offer_st, min_size=1, max_size=4))
        tiers.append(TierOffer(f"t{n}", f"p{n}", 60.0 * n, tuple(
            Offering(f"t{n}", f"p{n}", f"x{k}", c, m, 0.0 if n == 0 and k == 0 else round(price, 2),
                     tuple(f"z{z}" for z in range(zones)), available)
            for k, ((c, m), price, zones, available) in enumerate(offers)),
            max_hosts=draw(st.one_of(st.none(), st.integers(0, 200))), balance_zones=draw(st.booleans())))
    return demand, shapes, tiers


@settings(max_examples=150, deadline=None)
@given(problems())
def test_every_replica_is_placed_once_on_hosts_that_hold_it(problem):
    demand, shapes, tiers = problem
    p = plan(demand, shapes, tiers, seconds_to_deadline=300)
    got = defaultdict(int)
    for part in (placed(p), p.absorbed, p.unplaced):
        for name, n in part.items():
            assert n > 0
            got[name] += n
    assert dict(got) == {k: v for k, v in demand.items() if v > 0}
    check_hosts(p, tiers, shapes)
    per_type = hosts_by(p, "tier", "instance_type")
    per_zone = hosts_by(p, "tier", "instance_type", "zone")
    for t in tiers:
        assert t.max_hosts is None or sum(n for (tn, _), n in per_type.items() if tn == t.name) <= t.max_hosts
        for o in t.offerings:
            assert o.available is None or per_type.get((t.name, o.instance_type), 0) <= o.available
            counts = [per_zone.get((t.name, o.instance_type, z), 0) for z in o.zones]
            if t.balance_zones:
                assert max(counts) - min(counts) <= 1
            else:
                assert sum(counts[1:]) == 0


@settings(max_examples=60, deadline=None)
@given(problems())
def test_a_plan_of_one_tier_never_costs_less_than_its_lp_bound(problem):
    demand, shapes, tiers = problem
    p = plan(demand, shapes, tiers[-1:], seconds_to_deadline=300)
    if p.unplaced:
        return  # the bound of a tier that runs out is the bound of what it takes
    assert p.cost_per_hour >= lp_bound(demand, shapes, tiers[-1:], seconds_to_deadline=300) - 1e-4
