"""The store on SQLite and PostgreSQL: migrations, optimistic concurrency, the journal."""

import threading
from datetime import timedelta

import pytest

from burst.errors import IllegalTransitionError, StaleHostError, StoreError
from burst.lifecycle import HostState as S
from burst.store import Burst, Host, Store, utcnow


def make_burst(store, event="ny", hosts=3):
    b = Burst(id=f"{event}-1", event=event, cluster="c", demand_json="{}", plan_json='{"hosts": %d}' % hosts,
              deadline_at=utcnow() + timedelta(minutes=5))
    return store.create_burst(b, [Host(id=f"{event}-h{i}", burst_id=b.id, slot=i, tier="t", provider="fake",
                                       zone="z", instance_type="x") for i in range(hosts)])


def test_migrations_run_once_and_reopen_cleanly(store_url):
    Store(store_url).close()
    store = Store(store_url)
    make_burst(store)
    assert len(store.hosts("ny-1")) == 3
    store.close()


def test_the_migrated_schema_is_the_models_schema(store_url):
    """The hand-written migrations and every table module (store, calendar, pool) agree:
    alembic's comparison of the migrated database with the models finds nothing."""
    from burst import schema

    store = Store(store_url)
    try:
        assert {"host", "burst", "calendar_event", "pool_host"} <= set(schema.metadata().tables)
        assert schema.drift(store.engine) == []
    finally:
        store.close()


def test_a_transition_checks_the_edge_and_the_version_and_is_journaled(store_url):
    store = Store(store_url)
    make_burst(store)
    host = store.host("ny-h0")
    moved = store.transition(host, S.LAUNCHING, launch_request_id="r1")
    assert (moved.state, moved.version, moved.launch_request_id) == ("launching", 2, "r1")
    with pytest.raises(StaleHostError):
        store.transition(host, S.LAUNCHING)  # written from an old read
    with pytest.raises(IllegalTransitionError):
        store.transition(moved, S.READY)
    entries = [e for e in store.journal_entries(host_id="ny-h0")]
    assert [(e.from_state, e.to_state) for e in entries] == [("requested", "launching")]
    assert store.host("ny-h0").version == 2  # the refused writes changed nothing
    store.close()


def test_concurrent_writers_of_one_host_never_both_win(store_url):
    store = Store(store_url)
    make_burst(store, hosts=1)
    host = store.host("ny-h0")
    wins, losses = [], []
    barrier = threading.Barrier(8)

    def writer():
        barrier.wait()
        try:
            wins.append(store.transition(host, S.LAUNCHING))
        except StaleHostError:
            losses.append(1)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert len([e for e in store.journal_entries(host_id="ny-h0") if e.kind == "host.transition"]) == 1
    store.close()


def test_a_batch_transition_is_all_or_nothing(store_url):
    store = Store(store_url)
    make_burst(store)
    hosts = store.hosts("ny-1")
    store.transition(hosts[2], S.CANCELLED)  # hosts[2] is now stale
    with pytest.raises(StaleHostError):
        store.transition_many(hosts, S.LAUNCHING, launch_request_id="b1")
    assert [h.state for h in store.hosts("ny-1")] == ["requested", "requested", "cancelled"]
    store.close()


def test_one_live_burst_per_event(store_url):
    store = Store(store_url)
    make_burst(store)
    with pytest.raises(StoreError, match="already has burst"):
        make_burst(store)
    store.close()


def test_a_bad_url_is_a_clear_error():
    with pytest.raises(StoreError, match="not a database URL"):
        Store("nonsense")
    with pytest.raises(StoreError, match="only sqlite and postgresql"):
        Store("mysql://x@localhost/db")


def test_one_driver_per_burst_and_a_dead_local_driver_is_replaced_at_once(store_url):
    import subprocess
    import sys

    store = Store(store_url)
    make_burst(store)
    assert store.claim_burst("ny-1", "me", 30)
    assert store.claim_burst("ny-1", "me", 30)  # renewing is fine
    assert not store.claim_burst("ny-1", "other-host:1:x", 30)
    store.release_burst("ny-1", "me")
    assert store.claim_burst("ny-1", "other-host:1:x", 30)
    # a driver on this machine whose process is gone
    import socket

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{socket.gethostname()}:{gone.stdout.strip()}:abc"
    store.release_burst("ny-1", "other-host:1:x")
    assert store.claim_burst("ny-1", dead, 30)
    assert store.claim_burst("ny-1", "me", 30)
    assert [e.message for e in store.journal_entries(burst_id="ny-1") if e.kind == "burst.driver"][-1] == \
        f"driven by me (was {dead})"
    store.close()
