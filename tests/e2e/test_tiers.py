"""Several tiers: filled in order, returned in reverse, and a recalled host replaced from the next tier."""

from datetime import timedelta
import time

from burst.config import load_config
from burst.service import BurstService


def run(svc, burst_id, until, limit=60):
    stop = time.monotonic() + limit
    while not until():
        assert time.monotonic() < stop, svc.store.state_counts(burst_id)
        svc.reconcile_once()
        time.sleep(0.1)


def two_tiers(make_burst, first_max_hosts=None):
    burst = make_burst(boot=0.2, tier="first")
    text = burst.config.read_text()
    second = text[text.index("[[tiers]]"):text.index("[initialise]")].replace('name = "first"', 'name = "second"')
    if first_max_hosts is not None:
        text = text.replace("concurrency = 16", f"concurrency = 16\nmax_hosts = {first_max_hosts}", 1)
    burst.config.write_text(text.replace("[initialise]", second + "[initialise]", 1))
    return BurstService(load_config(burst.config))


def test_down_returns_the_last_tier_first(make_burst):
    svc = two_tiers(make_burst, first_max_hosts=3)
    try:  # more than the first tier's 3 hosts (of its largest type) can take
        b = svc.up("ny", {"web": 30}, svc.clock.now() + timedelta(minutes=5))
        run(svc, b.id, lambda: svc.is_done(b.id))
        tiers = {h.id: h.tier for h in svc.store.hosts(b.id)}
        assert sorted(tiers.values()) == ["first"] * 3 + ["second"] * 2
        svc.down("ny")
        run(svc, b.id, lambda: svc.is_done(b.id))
        down = [(tiers[e.host_id], e.to_state) for e in svc.store.journal_entries(burst_id=b.id)
                if e.kind == "host.transition" and e.to_state in ("draining", "terminated")]
        last_second = max(i for i, (t, s) in enumerate(down) if t == "second" and s == "terminated")
        first_first = min(i for i, (t, s) in enumerate(down) if t == "first")
        assert last_second < first_first, down
    finally:
        svc.close()


def test_a_retired_host_is_replaced_from_the_next_tier_and_capacity_never_drops(make_burst):
    svc = two_tiers(make_burst)
    try:
        b = svc.up("ny", {"web": 8}, svc.clock.now() + timedelta(minutes=5))
        run(svc, b.id, lambda: svc.is_done(b.id))
        ready = svc.store.hosts(b.id)
        assert {h.tier for h in ready} == {"first"} and len(ready) == 2
        victim = ready[0]

        retired = svc.retire_hosts([victim.instance_id], "fake", "recall by its owner")
        assert [h.id for h in retired] == [victim.id]
        lowest_ready = 2

        def settled():
            nonlocal lowest_ready
            hosts = svc.store.hosts(b.id)
            lowest_ready = min(lowest_ready, sum(h.state == "ready" for h in hosts))
            return svc.store.host(victim.id).state == "terminated"

        run(svc, b.id, settled)
        hosts = svc.store.hosts(b.id)
        replacement = next(h for h in hosts if h.slot == victim.slot and h.attempt == 1)
        assert replacement.tier == "second" and replacement.state == "ready"
        assert lowest_ready == 2  # the slot stayed ready all along
        moves = [(e.host_id, e.to_state) for e in svc.store.journal_entries(burst_id=b.id)
                 if e.kind == "host.transition"]
        assert moves.index((replacement.id, "ready")) < moves.index((victim.id, "draining"))
    finally:
        svc.close()


def test_room_the_cluster_already_has_is_used_only_by_services_that_grow_in_place(make_burst):
    burst = make_burst(boot=0.2)
    text = burst.config.read_text().replace("seconds = 0.1\n", "seconds = 0.1\nfree_room = [[2, 4], [1, 1]]\n")
    burst.config.write_text(text)
    svc = BurstService(load_config(burst.config))
    try:
        deadline = svc.clock.now() + timedelta(minutes=5)
        assert svc.plan("ny", {"web": 10}, deadline).absorbed == {}  # web may not grow in place: every extra replica goes to new hosts
    finally:
        svc.close()
    burst.config.write_text(text.replace("memory_gib = 2\n", "memory_gib = 2\ngrow_in_place = true\n", 1))
    svc = BurstService(load_config(burst.config))
    try:
        the_plan = svc.plan("ny", {"web": 10}, deadline)
        assert the_plan.absorbed == {"web": 2} and the_plan.hosts == 2
        b = svc.up("ny", {"web": 10}, deadline)
        run(svc, b.id, lambda: svc.is_done(b.id))
        assert svc.cluster.spillover["ny"] == {"web": 10}
        asked = next(e for e in svc.store.journal_entries(burst_id=b.id) if e.kind == "spillover.requested")
        assert '"in_place": {"web": 2}' in asked.detail_json
    finally:
        svc.close()


def test_a_replacement_prefers_a_tier_that_can_still_make_the_deadline(make_burst):
    burst = make_burst(boot=0.2, tier="first")
    text = burst.config.read_text()
    tier = text[text.index("[[tiers]]"):text.index("[initialise]")]
    slow = (tier.replace('name = "first"', 'name = "slow"').replace("ready_seconds = 30", "ready_seconds = 900")
            .replace("faults = {}", f'faults = {{}}\nstate_file = "{burst.dir}/slow.json"'))
    fast = (tier.replace('name = "first"', 'name = "fast"')
            .replace("faults = {}", f'faults = {{}}\nstate_file = "{burst.dir}/fast.json"'))
    first = tier.replace("faults = {}", 'faults = { no_stock_zones = ["zone-a", "zone-b"] }\n'
                                        f'state_file = "{burst.dir}/first.json"')
    burst.config.write_text(text.replace(tier, first + slow + fast))
    svc = BurstService(load_config(burst.config))
    try:
        b = svc.up("ny", {"web": 8}, svc.clock.now() + timedelta(minutes=5))
        run(svc, b.id, lambda: svc.is_done(b.id))
        ready = [h for h in svc.store.hosts(b.id) if h.state == "ready"]
        assert len(ready) == 2 and {h.tier for h in ready} == {"fast"}  # not "slow": it cannot be ready in time
    finally:
        svc.close()
