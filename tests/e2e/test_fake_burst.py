"""burst up / down end to end through the CLI, on the fake provider, on both stores."""

from __future__ import annotations

import json
import random
import signal
import time

from burst.store import Store
from burst.config import load_config


def live_instances(burst) -> dict[str, dict]:
    recs = burst.fake().records()
    return {i: r for i, r in recs["instances"].items() if r["state"] != "terminated"}


def store_of(burst) -> Store:
    return Store(load_config(burst.config).store_url)


def test_up_200_hosts_then_down_returns_every_one(make_burst):
    burst = make_burst(boot=0.5)
    planned = burst.json("plan", "ny", "--replicas", "web=800")
    assert planned["hosts"] == 200

    up = burst.run("up", "ny", "--replicas", "web=800", "--deadline", "5m")
    assert "200/200 hosts ready" in up.stdout and "SLA met" in up.stdout
    status = burst.json("status")
    assert status["bursts"][0]["hosts_by_state"] == {"ready": 200}
    assert len(live_instances(burst)) == 200

    report = burst.json("report", "ny")
    assert report["ready_hosts"] == 200 and report["sla_met"]
    assert report["phases"]["launch"]["n"] == 200

    down = burst.json("down", "ny")
    assert down["status"] == "down" and down["hosts"] == {"terminated": 200}
    assert live_instances(burst) == {}
    assert burst.json("status")["bursts"] == []


def test_a_second_up_resumes_and_never_launches_twice(make_burst):
    burst = make_burst(boot=0.2)
    burst.run("up", "ny", "--replicas", "web=40")
    launches = [c for c in burst.fake().records()["calls"] if c["op"] == "launch"]
    burst.run("up", "ny", "--replicas", "web=40")
    assert [c for c in burst.fake().records()["calls"] if c["op"] == "launch"] == launches
    other = burst.run("up", "ny", "--replicas", "web=80", check=False)
    assert other.returncode == 1 and "already has burst" in other.stderr


def test_sigkill_at_random_moments_then_rerun_gives_exactly_the_planned_hosts(make_burst):
    burst = make_burst(boot=1.0, init=0.3)
    rng = random.Random(20261123)
    for _ in range(4):
        proc = burst.popen("up", "ny", "--replicas", "web=240")
        time.sleep(rng.uniform(0.4, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    burst.run("up", "ny", "--replicas", "web=240")

    store = store_of(burst)
    hosts = store.hosts()
    store.close()
    assert len({h.slot for h in hosts}) == 60
    assert all(h.state == "ready" for h in hosts) and len(hosts) == 60
    records = burst.fake().records()
    made = records["instances"]
    # no duplicate: every instance the fake ever made belongs to exactly one host
    assert sorted(made) == sorted(h.instance_id for h in hosts)
    # no orphan: every launch request was made for hosts the store knows
    assert set(records["requests"]) <= {h.launch_request_id for h in hosts}

    burst.run("down", "ny")
    assert live_instances(burst) == {}


def test_a_stock_out_in_the_first_zone_moves_to_the_next_zone(make_burst):
    burst = make_burst(boot=0.2, faults='{no_stock_zones = ["zone-a"]}')
    burst.run("up", "ny", "--replicas", "web=40")
    store = store_of(burst)
    hosts = store.hosts()
    entries = store.journal_entries()
    store.close()
    ready = [h for h in hosts if h.state == "ready"]
    assert len(ready) == 10 and {h.zone for h in ready} == {"zone-b"}
    assert {h.state for h in hosts if h.zone == "zone-a"} == {"cancelled"}
    exhausted = next(e for e in entries if e.kind == "offering.exhausted")
    replaced = [e for e in entries if e.kind == "host.added"]
    # the plan spreads the 10 hosts over both zones: the 5 planned in zone-a are replaced
    assert len(replaced) == len([h for h in hosts if h.zone == "zone-a"]) == 5
    assert (replaced[-1].at - exhausted.at).total_seconds() < 1.0


def test_hosts_that_never_boot_or_fail_initialisation_are_replaced(make_burst):
    burst = make_burst(boot=0.2, faults="{never_ready = 2}", init_failures=1, phase_timeout=3)
    up = burst.run("up", "ny", "--replicas", "web=24")
    assert "6/6 hosts ready" in up.stdout
    store = store_of(burst)
    hosts = store.hosts()
    store.close()
    assert len([h for h in hosts if h.state == "ready"]) == 6
    failed = [h for h in hosts if h.attempt == 0 and h.state != "ready"]
    assert len(failed) == 3 and all(h.state == "terminated" for h in failed)
    assert {h.error.split(" ")[0] for h in failed} >= {"instance", "initialise:"}
    burst.run("down", "ny")
    assert live_instances(burst) == {}


def test_bad_input_is_one_line_exit_1_and_nothing_stored(make_burst):
    burst = make_burst()
    cases = [
        (["up", "ny", "--replicas", "web=-3"], "a replica count cannot be negative"),
        (["up", "ny", "--replicas", "nosuch=3"], "unknown service 'nosuch'"),
        (["up", "ny", "--replicas", "web=3", "--deadline", "2020-01-01T00:00:00+00:00"], "is in the past"),
        (["up", "ny", "--replicas", "web"], "expected SERVICE=N"),
        (["up", "ny", "--replicas", "web=0"], "nothing to add"),
        (["down", "nothing"], "has no burst"),
    ]
    for args, message in cases:
        proc = burst.run(*args, check=False)
        assert proc.returncode == 1, proc
        assert message in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    store = store_of(burst)
    assert store.bursts() == []
    store.close()


def test_a_bad_config_and_an_unknown_provider_are_one_line_errors(make_burst):
    burst = make_burst()
    text = burst.config.read_text()
    burst.config.write_text(text.replace('provider = "fake"', 'provider = "nosuch"'))
    proc = burst.run("up", "ny", "--replicas", "web=4", check=False)
    assert proc.returncode == 1 and "unknown provider 'nosuch'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    burst.config.write_text(text.replace("cpu = 4", "cpu = 0"))
    proc = burst.run("status", check=False)
    assert proc.returncode == 1 and "tiers[0].instance_types[0].cpu" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_doctor_passes_on_a_sound_config_and_fails_on_an_unknown_provider(make_burst):
    burst = make_burst()
    rows = burst.json("doctor")
    assert {r["status"] for r in rows} == {"ok"}
    burst.config.write_text(burst.config.read_text().replace('provider = "fake"', 'provider = "nosuch"'))
    proc = burst.run("doctor", "--json", check=False)
    assert proc.returncode == 1
    failed = [r for r in json.loads(proc.stdout) if r["status"] == "fail"]
    assert failed[0]["check"] == "tier cloud (fake)".replace("fake", "nosuch")


def test_a_slot_whose_hosts_keep_failing_is_given_up_and_up_says_so(make_burst):
    burst = make_burst(boot=0.1, init_failures=100)
    proc = burst.run("up", "ny", "--replicas", "web=4", check=False)
    assert proc.returncode == 1 and "every slot was given up (3 hosts failed" in proc.stderr
    store = store_of(burst)
    hosts = store.hosts()
    store.close()
    assert len(hosts) == 3 and all(h.state == "terminated" for h in hosts)  # each failed host was returned
    burst.run("down", "ny")


def test_a_usage_error_is_one_line_too(make_burst):
    burst = make_burst()
    proc = burst.run("up", "ny", "--bogus", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: No such option: --bogus (see `burst up --help`)"


def test_ctrl_c_during_up_says_what_is_left_and_the_commands_that_go_on(make_burst):
    """SIGINT (Ctrl-C) while hosts boot: exit 130 with one line naming the live hosts,
    the command that resumes and the one that returns them; the rerun launches nothing twice."""
    burst = make_burst(boot=20)
    proc = burst.popen("up", "ny", "--replicas", "web=40", "--deadline", "5m")
    deadline = time.monotonic() + 60
    try:
        while True:  # until every planned host's launch was answered
            store = store_of(burst)
            hosts = store.hosts()
            store.close()
            if hosts and all(h.instance_id for h in hosts):
                break
            assert time.monotonic() < deadline, [(h.id, h.state) for h in hosts]
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert proc.returncode == 130 and len(lines) == 1 and "Traceback" not in err, err
    assert "10 live hosts" in lines[0] and "launching=10" in lines[0], lines[0]
    assert "`burst up ny -r web=40 --deadline 5m` goes on" in lines[0] and "`burst down ny` returns them" in lines[0]
    made = sorted(live_instances(burst))
    assert len(made) == 10

    burst.run("up", "ny", "--replicas", "web=40", "--deadline", "5m", timeout=120)
    store = store_of(burst)
    hosts = store.hosts()
    store.close()
    assert {h.state for h in hosts} == {"ready"} and sorted(h.instance_id for h in hosts) == made
    burst.run("down", "ny")
    assert live_instances(burst) == {}
