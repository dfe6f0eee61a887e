"""The store on SQLite and PostgreSQL: migrations, optimistic concurrency, the journal."""

import threading
from datetime import timedelta

import pytest

from sqlalchemy.exc import IntegrityError

from burst.errors import IllegalTransitionError, StaleHostError, StoreError
from burst.lifecycle import BurstStatus
from burst.lifecycle import HostState as S
from burst.store import Burst, Change, Host, LiveBurstExists, Note, Store, utcnow


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


def test_apply_writes_a_batch_in_one_go_and_drops_changes_of_hosts_that_moved_on(store_url):
    store = Store(store_url)
    make_burst(store, hosts=4)
    store.transition(store.host("ny-h2"), S.CANCELLED)  # moved on by another writer
    # a uniform run (one statement), then per-host values (many parameter sets), in order
    applied = store.apply([Change(f"ny-h{i}", "ny-1", S.REQUESTED, S.LAUNCHING, fields={"launch_request_id": "b1"})
                           for i in range(4)]
                          + [Change(f"ny-h{i}", "ny-1", S.LAUNCHING, fields={"instance_id": f"i-{i}"},
                                    message="instance") for i in range(4)],
                          notes=[Note("launch.call", "one call", burst_id="ny-1")])
    assert applied == {"ny-h0", "ny-h1", "ny-h3"}
    hosts = {h.id: h for h in store.host_rows("ny-1")}
    assert [hosts[f"ny-h{i}"].state for i in range(4)] == [S.LAUNCHING, S.LAUNCHING, S.CANCELLED, S.LAUNCHING]
    assert [hosts[f"ny-h{i}"].instance_id for i in range(4)] == ["i-0", "i-1", None, "i-3"]
    assert hosts["ny-h0"].version == 3 and hosts["ny-h2"].version == 2
    kinds = [(e.kind, e.host_id) for e in store.journal_entries(burst_id="ny-1") if e.kind != "burst.created"]
    assert kinds.count(("host.transition", "ny-h0")) == 1 and ("host.recorded", "ny-h3") in kinds
    assert not [k for k in kinds if k[1] == "ny-h2" and k[0] == "host.recorded"]
    assert ("launch.call", None) in kinds
    with pytest.raises(IllegalTransitionError):  # an edge the lifecycle has not: nothing written
        store.apply([Change("ny-h0", "ny-1", S.LAUNCHING, S.READY)])
    assert store.host("ny-h0").state is S.LAUNCHING
    store.close()


def test_one_live_burst_per_event(store_url):
    store = Store(store_url)
    make_burst(store)
    with pytest.raises(LiveBurstExists, match="already has burst ny-1"):
        make_burst(store)
    store.close()


def test_the_database_itself_refuses_a_second_live_burst_of_an_event(store_url):
    """Two writers that both passed the check still cannot both insert (the partial
    unique index); a burst that is down does not count."""
    store = Store(store_url)
    make_burst(store)
    now = utcnow()
    with pytest.raises(IntegrityError):
        with store.session() as s:
            s.add(Burst(id="ny-2", event="ny", cluster="c", demand_json="{}", plan_json="{}", deadline_at=now))
    store.update_burst("ny-1", status=BurstStatus.DRAINING)
    store.update_burst("ny-1", status=BurstStatus.DOWN)
    with store.session() as s:
        s.add(Burst(id="ny-2", event="ny", cluster="c", demand_json="{}", plan_json="{}", deadline_at=now))
    with pytest.raises(IllegalTransitionError):
        store.update_burst("ny-2", status=BurstStatus.DOWN)  # active -> down skips the drain
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
    def claim(driver):
        return store.claim_burst(store.get_burst("ny-1"), driver, 30)

    assert claim("me")
    assert claim("me")  # renewing is fine
    assert not claim("other-host:1:x")
    store.release_burst("ny-1", "me")
    assert claim("other-host:1:x")
    # a driver on this machine whose process is gone
    import socket

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{socket.gethostname()}:{gone.stdout.strip()}:abc"
    store.release_burst("ny-1", "other-host:1:x")
    assert claim(dead)
    assert claim("me")
    assert [e.message for e in store.journal_entries(burst_id="ny-1") if e.kind == "burst.driver"][-1] == \
        f"driven by me (was {dead})"
    store.close()
