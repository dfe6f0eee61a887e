"""Races on one event: `burst up` and `burst down` run at the same moment by several
operators (or an operator and the daemon), on SQLite and PostgreSQL.

Each racer is its own BurstService (its own engine and connections), released at once
by a barrier, so the race is the database's, as between processes."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from burst.config import EXAMPLE, load_config
from burst.gc import collect, find_leaks
from burst.lifecycle import LIVE
from burst.service import BurstService
from burst.store import Store

ROUNDS = 50


def _config(tmp_path: Path, url: str):
    path = tmp_path / "burst.toml"
    path.write_text(EXAMPLE.replace('store = "sqlite:///.burst/burst.db"', f'store = "{url}"')
                    .replace("boot_seconds = 2.0", "boot_seconds = 0.2")
                    .replace("seconds = 1.0", "seconds = 0.1").replace("seconds = 0.5", "seconds = 0.1"))
    return load_config(path)


def _race(services: list[BurstService], call) -> list:
    """`call(svc)` in every service at once; what each returned (or raised)."""
    barrier = threading.Barrier(len(services))
    results: list = [None] * len(services)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(services[i])
        except Exception as exc:  # noqa: BLE001  the test looks at it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(services))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("racers", [2, 4])
def test_racing_ups_of_one_event_make_one_burst_and_racing_downs_return_it(store_url, tmp_path, racers):
    config = _config(tmp_path, store_url)
    services = [BurstService(config) for _ in range(racers)]
    try:
        for n in range(ROUNDS):
            event = f"race-{n}"
            deadline = services[0].clock.now() + timedelta(minutes=10)
            ups = _race(services, lambda svc: svc.up(event, {"web": 8}, deadline))
            assert not [r for r in ups if isinstance(r, Exception)], ups
            assert len({b.id for b in ups}) == 1, f"round {n}: {len(set(b.id for b in ups))} bursts"
            downs = _race(services, lambda svc: svc.down(event))
            assert not [r for r in downs if isinstance(r, Exception)], downs
            assert {b.id for b in downs} == {ups[0].id}
        store = services[0].store
        per_event = Counter(b.event for b in store.bursts())
        assert per_event == {f"race-{n}": 1 for n in range(ROUNDS)}
        # every burst was asked down before any cloud call: its hosts are cancelled, none launched
        for burst in store.bursts(LIVE):
            list(services[0].drive(burst, seconds=60))
        assert not store.bursts(LIVE)
        fake = services[0].providers.get("cloud")
        assert not [c for c in fake.records()["calls"] if c["op"] == "launch"]
    finally:
        for svc in services:
            svc.close()


def test_racing_drivers_launch_exactly_the_plan_and_down_leaves_nothing_running(store_url, tmp_path):
    """Two drivers of one burst at once (two `burst up` waiting on it): one drives, the
    other watches; the instances made are exactly the planned hosts, all gone after
    two racing `burst down`."""
    config = _config(tmp_path, store_url)
    services = [BurstService(config) for _ in range(2)]
    try:
        for n in range(ROUNDS):
            event = f"drive-{n}"
            deadline = services[0].clock.now() + timedelta(minutes=10)
            ups = _race(services, lambda svc: (b := svc.up(event, {"web": 12}, deadline),
                                               list(svc.drive(b, seconds=60))[-1])[1])
            assert [p.outcome for p in ups] == ["ready", "ready"], ups
            downs = _race(services, lambda svc: list(svc.drive(svc.down(event), seconds=60))[-1])
            assert [p.outcome for p in downs] == ["down", "down"], downs
        calls = services[0].providers.get("cloud").records()["calls"]
        launched = sum(c["count"] for c in calls if c["op"] == "launch")
        planned = sum(len(services[0].store.hosts(b.id)) for b in services[0].store.bursts())
        assert launched == planned == ROUNDS * 3
        alive = [i for i in services[0].providers.get("cloud").list()]
        assert alive == []
    finally:
        for svc in services:
            svc.close()


def test_gc_racing_bursts_up_and_down_never_collects_a_host_of_theirs(store_url, tmp_path):
    """gc reads the cloud, then the store, while two events share the tier and go up
    and down: an instance whose launch is journaled is never a leak, so nothing is
    collected, and every instance made belongs to a host that was ready."""
    config = _config(tmp_path, store_url)
    services = [BurstService(config) for _ in range(2)]
    gc_store = Store(config.store_url)
    stop, collected, errors = threading.Event(), [], []

    def gc_loop() -> None:
        try:
            while not stop.is_set():
                leaks = find_leaks(config, gc_store)
                if leaks:
                    collected.extend(collect(config, gc_store, leaks, "race-gc").terminated)
        except Exception as exc:  # noqa: BLE001  the test looks at it
            errors.append(exc)

    gc = threading.Thread(target=gc_loop)
    gc.start()
    try:
        for n in range(3):
            deadline = services[0].clock.now() + timedelta(minutes=10)
            ups = _race(services, lambda svc: (b := svc.up(f"{'ab'[services.index(svc)]}-{n}", {"web": 8}, deadline),
                                               list(svc.drive(b, seconds=60))[-1])[1])
            assert [p.outcome for p in ups] == ["ready", "ready"], ups
            downs = _race(services, lambda svc: list(svc.drive(svc.down(f"{'ab'[services.index(svc)]}-{n}"),
                                                               seconds=60))[-1])
            assert [p.outcome for p in downs] == ["down", "down"], downs
    finally:
        stop.set()
        gc.join()
        gc_store.close()
    assert not errors and collected == []
    calls = services[0].providers.get("cloud").records()["calls"]
    launched = sum(c["count"] for c in calls if c["op"] == "launch")
    assert launched == sum(len(services[0].store.hosts(b.id)) for b in services[0].store.bursts()) == 2 * 3 * 2
    assert services[0].providers.get("cloud").list() == []
    for svc in services:
        svc.close()
