"""The shared pool on a real store, SQLite and PostgreSQL (fixture `store_url` in
tests/conftest.py): the ledger, leases taken by concurrent processes, recall, bad
inputs that leave the ledger unchanged, and the accounting figures."""

from __future__ import annotations

import json
import multiprocessing
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from burst.cli.pool import app
from burst.pool import ledger
from burst.pool.errors import FreezeWindowError, InventoryError, PoolError
from burst.pool.leases import Shape, claim, release
from burst.pool.report import pool_report
from burst.pool.tables import PoolHost, PoolLease, PoolLending, PoolUnit
from burst.provider import (
    InstanceNotFoundError,
    InstanceState,
    InsufficientCapacityError,
    LaunchRequest,
    NotOwnedError,
    ProviderContext,
)
from burst.store import JournalEntry, Store
from burst_providers.onprem import OnPremProvider

MALL = """
[web]
web[01:06] cpu=8 memory_gib=32
[db]
db01 ansible_host=10.0.1.1 cpu=32 memory_gib=128
db02 ansible_host=10.0.1.2 cpu=32 memory_gib=128
[all:vars]
ansible_user=deploy
"""
SEARCH = """
all:
  children:
    search:
      vars: {cpu: 8, memory_gib: 32, ansible_user: ops}
      hosts:
        s01: {ansible_host: 10.0.2.1}
        s02: {ansible_host: 10.0.2.2}
        s03: {ansible_host: 10.0.2.3}
        s04: {ansible_host: 10.0.2.4}
"""


def inventory(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def pool(store, tmp_path):
    """mall: 6 web (8c/32g) + 2 db (32c/128g); search: 4 (8c/32g). All lent."""
    ledger.import_inventory(store, "mall", inventory(tmp_path, "mall.ini", MALL))
    ledger.import_inventory(store, "search", inventory(tmp_path, "search.yml", SEARCH))
    ledger.lend(store, "mall", share=1.0)
    ledger.lend(store, "search", share=1.0)
    return store


def provider(store: Store, tmp_path: Path, cluster: str = "alpha", **options) -> OnPremProvider:
    return OnPremProvider(ProviderContext(cluster, tmp_path, store_url=store.url), options)


def snapshot(store: Store) -> dict:
    """Everything the ledger holds, to show a refused command changed nothing."""
    with store.session() as s:
        return {table.__name__: sorted(repr(sorted(row.model_dump().items())) for row in s.exec(select(table)))
                for table in (PoolUnit, PoolHost, PoolLending, PoolLease, JournalEntry)}


def launch(p: OnPremProvider, request_id: str, count: int, itype: str = "pool.8c32g", event: str = "new-year"):
    return p.launch(LaunchRequest(request_id, count, itype, "onprem", {"burst:event": event}))


# -- the ledger ---------------------------------------------------------------------

def test_import_and_lend_by_share_rounds_down(store, tmp_path):
    result = ledger.import_inventory(store, "mall", inventory(tmp_path, "mall.ini", MALL))
    assert sorted(result.added) == ["db01", "db02", "web01", "web02", "web03", "web04", "web05", "web06"]
    assert ledger.lend(store, "mall") == []  # 10% of 8 hosts is 0.8: rounded down to none
    assert ledger.lend(store, "mall", share=ledger.parse_share("25%")) == ["db01", "db02"]
    assert ledger.lend(store, "mall", share=0.25) == []  # already lends its share
    assert ledger.lend(store, "mall", hosts=["web03"]) == ["web03"]
    assert ledger.lend(store, "mall", share=0.5) == ["web01"]  # 4 of 8: one more
    (unit,) = ledger.unit_views(store)
    assert (unit.hosts, unit.lent, unit.leased, unit.share) == (8, 4, 0, 0.5)
    # re-import: a changed size is updated, the lending stays
    changed = MALL.replace("web[01:06] cpu=8", "web[01:06] cpu=16")
    again = ledger.import_inventory(store, "mall", inventory(tmp_path, "mall2.ini", changed))
    assert sorted(again.updated) == [f"web0{n}" for n in range(1, 7)] and again.added == again.removed == []
    views = {h.name: h for h in ledger.host_views(store, "mall")}
    assert views["web01"].cpu == 16 and views["web01"].status == "lent" and views["web02"].status == "owned"


def test_hosts_for_share_is_floor():
    assert [ledger.hosts_for_share(n, 0.10) for n in (5, 9, 10, 19, 20, 100)] == [0, 0, 1, 1, 2, 10]
    assert ledger.hosts_for_share(10, 0.3) == 3 and ledger.hosts_for_share(7, 1.0) == 7


# -- bad inputs: one line each, the ledger unchanged ----------------------------------

def test_malformed_inventory_changes_nothing(pool, tmp_path):
    before = snapshot(pool)
    bad = inventory(tmp_path, "bad.ini", "[web]\nweb01 cpu=8 memory_gib=32\nweb09 cpu=8 memory_gib\n")
    with pytest.raises(InventoryError, match=rf"^{bad}:3: malformed host variable"):
        ledger.import_inventory(pool, "mall", bad)
    assert snapshot(pool) == before


def test_a_host_listed_by_two_units_is_refused(pool, tmp_path):
    before = snapshot(pool)
    other = inventory(tmp_path, "ads.ini", "new01 cpu=4 memory_gib=8\nweb02 cpu=8 memory_gib=32\n")
    with pytest.raises(PoolError, match=r"ads.ini:2: host 'web02' already belongs to unit 'mall'"):
        ledger.import_inventory(pool, "ads", other)
    same_address = inventory(tmp_path, "ads2.ini", "db09 ansible_host=10.0.1.1 cpu=4 memory_gib=8\n")
    with pytest.raises(PoolError, match=r"has the address 10.0.1.1:22 of host 'db01'"):
        ledger.import_inventory(pool, "ads", same_address)
    assert snapshot(pool) == before  # not even the unit 'ads' nor new01


@pytest.mark.parametrize("share", ["101%", "150", "-5%", "ten"])
def test_a_share_above_100_percent_or_not_a_share_is_refused(share):
    with pytest.raises(PoolError, match="share"):
        ledger.parse_share(share)


def test_lend_share_above_one_and_unknown_hosts_change_nothing(pool):
    before = snapshot(pool)
    with pytest.raises(PoolError, match="between 0% and 100%"):
        ledger.lend(pool, "mall", share=1.5)
    with pytest.raises(PoolError, match="'s09' is not a host of unit 'search'"):
        ledger.lend(pool, "search", hosts=["s01", "s09"])
    with pytest.raises(PoolError, match="no business unit 'ads'"):
        ledger.lend(pool, "ads")
    assert snapshot(pool) == before


def test_recall_of_a_host_never_lent_is_refused_and_changes_nothing(store, tmp_path):
    ledger.import_inventory(store, "mall", inventory(tmp_path, "mall.ini", MALL))
    ledger.lend(store, "mall", hosts=["web01"])
    before = snapshot(store)
    with pytest.raises(PoolError, match="host 'web02' of unit 'mall' was never lent"):
        ledger.recall(store, "mall", ["web01", "web02"])  # web01 alone would be fine: all or nothing
    assert snapshot(store) == before


def test_removing_a_lent_host_from_the_inventory_is_refused(pool, tmp_path):
    before = snapshot(pool)
    fewer = inventory(tmp_path, "fewer.ini", "web01 cpu=8 memory_gib=32\n")
    with pytest.raises(PoolError, match="is lent and no longer in"):
        ledger.import_inventory(pool, "mall", fewer)
    assert snapshot(pool) == before


# -- leases through the provider ------------------------------------------------------

def test_launch_spreads_across_units_fits_the_shape_and_is_idempotent(pool, tmp_path):
    p = provider(pool, tmp_path)
    made = launch(p, "r-1", 4)
    units = [i.tags["burst:pool-unit"] for i in made]
    assert units.count("mall") == 2 and units.count("search") == 2  # spread, and no db host for a small ask
    assert all(i.state is InstanceState.RUNNING and i.tags["burst:cluster"] == "alpha" for i in made)
    assert all(i.tags["burst:event"] == "new-year" for i in made)
    s01 = next(i for i in made if i.id == "s01")
    assert s01.address == "10.0.2.1"
    assert p.host_vars("s01", "10.0.2.1") == {"ansible_host": "10.0.2.1", "ansible_port": 22, "ansible_user": "ops"}
    again = launch(p, "r-1", 4)
    assert sorted(i.id for i in again) == sorted(i.id for i in made)
    big = launch(p, "r-2", 1, itype="pool.16c64g")
    assert big[0].id in ("db01", "db02")
    assert {i.id for i in p.list()} == {*(i.id for i in made), big[0].id}


def test_instance_types_report_true_availability(pool, tmp_path):
    p = provider(pool, tmp_path)
    offered = {t.name: t for t in p.instance_types()}
    assert {n: t.available for n, t in offered.items()} == {"pool.8c32g": 10, "pool.32c128g": 2}
    assert all(t.price_per_hour == 0 for t in offered.values())
    launch(p, "r-1", 3)
    assert {t.name: t.available for t in p.instance_types()} == {"pool.8c32g": 7, "pool.32c128g": 2}
    # with the tier's configured types each free host counts once, under the largest it fits
    configured = provider(pool, tmp_path, instance_types=[
        {"name": "pool.small", "cpu": 4, "memory_gib": 16, "price_per_hour": 0.01, "zones": ["onprem"]},
        {"name": "pool.large", "cpu": 16, "memory_gib": 64, "price_per_hour": 0.05, "zones": ["onprem"]}])
    assert {t.name: t.available for t in configured.instance_types()} == {"pool.small": 7, "pool.large": 2}
    launch(configured, "r-2", 7, itype="pool.small")  # takes the small hosts, leaves the large ones
    assert {t.name: t.available for t in configured.instance_types()} == {"pool.small": 0, "pool.large": 2}


def test_short_pool_leases_what_it_has_then_refuses_at_once(pool, tmp_path):
    p = provider(pool, tmp_path)
    with pytest.raises(InsufficientCapacityError) as caught:
        launch(p, "r-1", 13, itype="pool.8c32g")  # 12 hosts fit (the db hosts too)
    assert len(caught.value.created) == 12
    with pytest.raises(InsufficientCapacityError) as again:
        launch(p, "r-2", 1)
    assert again.value.created == []
    with pytest.raises(InsufficientCapacityError) as repeated:  # the same request: the same 12, nothing new
        launch(p, "r-1", 13)
    assert sorted(i.id for i in repeated.value.created) == sorted(i.id for i in caught.value.created)


def test_terminate_releases_idempotently_and_refuses_what_is_not_ours(pool, tmp_path):
    alpha, beta = provider(pool, tmp_path, "alpha"), provider(pool, tmp_path, "beta")
    mine = [i.id for i in launch(alpha, "a-1", 2)]
    theirs = launch(beta, "b-1", 1)[0].id
    with pytest.raises(NotOwnedError, match="leased by cluster 'beta'"):
        alpha.terminate([*mine, theirs], request_id="t-1")
    with pytest.raises(NotOwnedError, match="not leased by burst cluster 'alpha'"):
        alpha.terminate([mine[0], "web06" if "web06" not in mine else "web05"], request_id="t-1")
    assert {i.id for i in alpha.list()} == set(mine)  # nothing was touched
    alpha.terminate(mine, request_id="t-2")
    alpha.terminate(mine, request_id="t-2")  # again: done
    assert alpha.list() == []
    assert [i.state for i in alpha.describe(mine)] == [InstanceState.TERMINATED] * 2
    with pytest.raises(InstanceNotFoundError):
        alpha.get(theirs)  # alpha never held it
    assert beta.get(theirs).state is InstanceState.RUNNING
    assert {t.name: t.available for t in alpha.instance_types()}["pool.8c32g"] == 9


def test_release_is_checked_before_it_changes_anything(pool, tmp_path):
    alpha = provider(pool, tmp_path, "alpha")
    launch(alpha, "a-1", 2)
    before = snapshot(pool)
    with pytest.raises(PoolError):
        release(pool, cluster="alpha", names=["s01", "web01", "db02"], request_id="t")
    assert snapshot(pool) == before


# -- recall ------------------------------------------------------------------------

def test_recall_returns_free_hosts_at_once_and_leased_ones_after_release(pool, tmp_path):
    p = provider(pool, tmp_path)
    held = {i.id for i in launch(p, "r-1", 4)}
    held_mall = sorted(h for h in held if h.startswith("web"))
    result = ledger.recall(pool, "mall", freeze_check=lambda *_: None)
    assert result.leased == {"alpha": held_mall}
    assert sorted(result.returned) == sorted({"db01", "db02", *(f"web0{n}" for n in range(1, 7))} - set(held_mall))
    views = {h.name: h.status for h in ledger.host_views(pool)}
    assert all(views[h] == "recalling" for h in held_mall)
    # the holder sees the recall, and no new lease goes to a recalled host
    assert all("burst:pool-recalled" in i.tags for i in p.describe(held_mall))
    assert {t.name: t.available for t in p.instance_types()} == {"pool.8c32g": 2}
    with pytest.raises(InsufficientCapacityError) as caught:
        launch(p, "r-2", 3)
    assert all(i.tags["burst:pool-unit"] == "search" for i in caught.value.created)
    p.terminate(held_mall, request_id="t-1")
    views = {h.name: h.status for h in ledger.host_views(pool)}
    assert all(views[h] == "owned" for h in held_mall)  # back with mall, not in the pool
    # recalling again is a no-op; the unit can lend again later
    assert ledger.recall(pool, "mall", held_mall, freeze_check=lambda *_: None).already == held_mall
    assert ledger.lend(pool, "mall", hosts=held_mall) == held_mall


def test_recall_in_a_freeze_window_needs_force(pool, tmp_path):
    def frozen(store, at):
        return "spring-gala"

    before = snapshot(pool)
    with pytest.raises(FreezeWindowError, match="event 'spring-gala' is in its freeze window"):
        ledger.recall(pool, "search", ["s01"], freeze_check=frozen)
    assert snapshot(pool) == before
    assert ledger.recall(pool, "search", ["s01"], force=True, freeze_check=frozen).returned == ["s01"]


def test_freeze_windows_come_from_the_calendar(pool):
    from burst.calendar.model import CalendarEvent
    from burst.calendar.repo import CalendarRepo

    CalendarRepo(pool).add([CalendarEvent(name="gala-freeze", start=datetime(2026, 2, 16, 18, 0),
                                          timezone="Asia/Shanghai", duration=timedelta(hours=6), freeze=True)])
    inside = datetime(2026, 2, 16, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    assert ledger.calendar_freeze_check(pool, inside) == "gala-freeze"
    assert ledger.calendar_freeze_check(pool, inside + timedelta(hours=4)) is None
    with pytest.raises(FreezeWindowError, match="'gala-freeze'"):
        ledger.recall(pool, "search", ["s01"], at=inside)
    assert ledger.recall(pool, "search", ["s01"], at=inside, force=True).returned == ["s01"]


# -- accounting ----------------------------------------------------------------------

def test_report_counts_host_hours_lent_and_borrowed(store, tmp_path):
    t0 = datetime(2026, 1, 28, 0, 0, tzinfo=UTC)
    hour = timedelta(hours=1)
    ledger.import_inventory(store, "mall", inventory(tmp_path, "mall.ini", MALL), at=t0)
    ledger.import_inventory(store, "search", inventory(tmp_path, "search.yml", SEARCH), at=t0)
    ledger.lend(store, "mall", hosts=["web01", "web02"], at=t0)          # 2 hosts from t0
    ledger.lend(store, "search", hosts=["s01"], at=t0 + 2 * hour)        # 1 host from t0+2h
    small = Shape(8, 32)
    tags = {"burst:event": "spring-gala", "burst:burst-id": "b-1"}
    leased, complete = claim(store, cluster="alpha", request_id="r-1", count=3, shape=small, zone=None,
                             instance_type="pool.8c32g", tags=tags, at=t0 + 3 * hour)
    assert complete and sorted(x.host.name for x in leased) == ["s01", "web01", "web02"]
    release(store, cluster="alpha", names=["web01", "web02"], request_id="t-1", at=t0 + 5 * hour)
    ledger.recall(store, "mall", ["web01"], freeze_check=lambda *_: None, at=t0 + 6 * hour)
    # until t0+8h: mall lent web01 6h + web02 8h = 14, borrowed 2h + 2h = 4;
    # search lent s01 6h, borrowed 5h (still held)
    report = pool_report(store, until=t0 + 8 * hour)
    figures = {u.unit: (u.host_hours_lent, u.host_hours_borrowed, u.leases) for u in report.units}
    assert figures == {"mall": (14, 4, 2), "search": (6, 5, 1)}
    assert (report.total_lent, report.total_borrowed) == (20, 9)
    assert [(x.host, x.event, x.cluster) for x in report.leases] == [
        ("s01", "spring-gala", "alpha"), ("web01", "spring-gala", "alpha"), ("web02", "spring-gala", "alpha")]
    since = pool_report(store, since=t0 + 4 * hour, until=t0 + 8 * hour)
    figures = {u.unit: (u.host_hours_lent, u.host_hours_borrowed) for u in since.units}
    assert figures == {"mall": (6, 2), "search": (4, 4)}
    data = since.as_dict()
    assert data["total"] == {"host_hours_lent": 10, "host_hours_borrowed": 6}


# -- the CLI ----------------------------------------------------------------------------

def write_config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "burst.toml"
    path.write_text(textwrap.dedent(f"""
        [cluster]
        name = "alpha"
        store = "{store_url}"
        [[services]]
        name = "web"
        cpu = 1
        memory_gib = 2
        [[tiers]]
        name = "pool"
        provider = "onprem"
        [[tiers.instance_types]]
        name = "pool.8c32g"
        cpu = 8
        memory_gib = 32
        price_per_hour = 0
        zones = ["onprem"]
        """))
    return path


def test_cli_import_lend_list_show_report_and_one_line_errors(store, tmp_path):
    config = str(write_config(tmp_path, store.url))
    cli = CliRunner()

    def run(*args):
        return cli.invoke(app, [*args, "--config", config])

    ok = run("import", "mall", str(inventory(tmp_path, "mall.ini", MALL)))
    assert ok.exit_code == 0, ok.output
    assert "8 hosts added" in ok.output
    ok = run("lend", "mall", "--share", "50%")
    assert ok.exit_code == 0 and "4 of 8 in the pool" in ok.output, ok.output
    listed = json.loads(run("list", "--json").stdout)
    assert [(u["name"], u["hosts"], u["lent"]) for u in listed] == [("mall", 8, 4)]
    shown = json.loads(run("show", "mall", "--json").stdout)
    assert sorted(h["name"] for h in shown if h["status"] == "lent") == ["db01", "db02", "web01", "web02"]
    table = run("show")
    assert table.exit_code == 0 and "web01" in table.output and "lent" in table.output
    report = run("report", "--since", "2026-01-01", "--json")
    assert report.exit_code == 0 and json.loads(report.stdout)["units"][0]["unit"] == "mall"
    assert run("report").exit_code == 0

    before = snapshot(store)
    bad_inventory = inventory(tmp_path, "bad.ini", "[web\nweb01 cpu=1 memory_gib=1\n")
    other = inventory(tmp_path, "ads.ini", "web01 cpu=1 memory_gib=1\n")
    for args, words in [
        (("import", "mall", str(bad_inventory)), f"{bad_inventory}:1: malformed section header"),
        (("import", "ads", str(other)), "host 'web01' already belongs to unit 'mall'"),
        (("lend", "mall", "--share", "120%"), "must be between 0% and 100%"),
        (("recall", "mall", "web05"), "host 'web05' of unit 'mall' was never lent"),
        (("report", "--since", "last week"), "--since 'last week'"),
    ]:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (args, result.stderr)
    assert snapshot(store) == before

    # a freeze window running now refuses the recall; --force overrides it
    from burst.calendar.model import CalendarEvent
    from burst.calendar.repo import CalendarRepo

    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    CalendarRepo(store).add([CalendarEvent(name="peak-freeze", start=now - timedelta(hours=1), timezone="UTC",
                                           duration=timedelta(hours=2), freeze=True)])
    frozen = run("recall", "mall", "web01")
    assert frozen.exit_code == 1 and "event 'peak-freeze' is in its freeze window" in frozen.stderr
    recalled = run("recall", "mall", "web01", "--force")
    assert recalled.exit_code == 0 and "back with mall now: web01" in recalled.output, recalled.output
    # a host this cluster holds: recalled in the ledger, handed to the burst to retire
    launch(provider(store, tmp_path, "alpha"), "r-1", 1, itype="pool.32c128g")
    held = run("recall", "mall", "--force")
    assert held.exit_code == 0, held.output
    views = {h.name: h.status for h in ledger.host_views(store, "mall")}
    assert sorted(n for n, st in views.items() if st == "recalling") == ["db01"]
    assert views["web02"] == "owned" and views["db02"] == "owned"


# -- two lease takers at once, in separate processes -------------------------------------

POOL_HOSTS = 10
ASK = 6  # each of the two asks for 6: 12 > 10, so they compete for the last hosts
ROUNDS = 25


def _lease_taker(store_url: str, state_dir: str, cluster: str, rounds: int, barrier, results) -> None:
    """One `burst up` stand-in: on each round, at the same instant as the other one,
    lease ASK hosts; report them; then release them, again at the same instant."""
    p = OnPremProvider(ProviderContext(cluster, Path(state_dir), store_url=store_url), {})
    try:
        for r in range(rounds):
            barrier.wait(60)
            try:
                got, short = [i.id for i in launch(p, f"{cluster}-{r}", ASK, itype="pool.4c8g")], False
            except InsufficientCapacityError as exc:
                got, short = [i.id for i in exc.created], True
            results.put((r, cluster, got, short))
            barrier.wait(60)  # the parent checks the ledger
            barrier.wait(60)
            p.terminate(got, request_id=f"t-{cluster}-{r}")
            barrier.wait(60)  # the parent checks everything came back
    finally:
        p.close()


def test_two_concurrent_lease_takers_never_share_a_host(store, tmp_path):
    lines = "".join(f"u{n % 3}-h{n:02d} cpu=4 memory_gib=8\n" for n in range(POOL_HOSTS))
    for unit in ("u0", "u1", "u2"):
        path = tmp_path / f"{unit}.ini"
        path.write_text("".join(line for line in lines.splitlines(keepends=True) if line.startswith(unit)))
        ledger.import_inventory(store, unit, path)
        ledger.lend(store, unit, share=1.0)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no engine shared through fork
    barrier, results = ctx.Barrier(3), ctx.Queue()
    takers = [ctx.Process(target=_lease_taker, args=(store.url, str(tmp_path), cluster, ROUNDS, barrier, results))
              for cluster in ("alpha", "beta")]
    for t in takers:
        t.start()
    try:
        for r in range(ROUNDS):
            barrier.wait(120)
            got, shorts = {}, 0
            for _ in takers:
                rnd, cluster, hosts, short = results.get(timeout=60)
                assert rnd == r
                got[cluster] = hosts
                shorts += short
            assert shorts >= 1  # 12 asked of 10: someone came up short
            barrier.wait(60)
            alpha, beta = set(got["alpha"]), set(got["beta"])
            assert not alpha & beta, f"round {r}: hosts leased twice: {alpha & beta}"
            assert len(got["alpha"]) == len(alpha) and len(got["beta"]) == len(beta)
            assert len(alpha | beta) == POOL_HOSTS  # 12 asked of 10: every host leased, once
            with store.session() as s:
                open_leases = list(s.exec(select(PoolLease).where(PoolLease.released_at.is_(None))))
            assert sorted((x.host, x.cluster) for x in open_leases) == sorted(
                [(h, "alpha") for h in alpha] + [(h, "beta") for h in beta])
            barrier.wait(60)
            barrier.wait(60)
            with store.session() as s:
                assert s.exec(select(PoolLease).where(PoolLease.released_at.is_(None))).first() is None
                assert all(h.lease_id is None for h in s.exec(select(PoolHost)))
    finally:
        for t in takers:
            t.join(30)
            if t.is_alive():
                t.kill()
                t.join(5)
    assert [t.exitcode for t in takers] == [0, 0]
    with store.session() as s:
        assert len(list(s.exec(select(PoolLease)))) == ROUNDS * POOL_HOSTS


# -- a burst through the service: the pool first, the cloud after; back in reverse -----

def test_burst_takes_the_whole_lent_share_then_the_cloud_and_returns_the_pool_last(store, tmp_path):

    ledger.import_inventory(store, "mall", inventory(tmp_path, "mall.ini", MALL))
    ledger.import_inventory(store, "search", inventory(tmp_path, "search.yml", SEARCH))
    ledger.lend(store, "mall", share=0.25)            # db01, db02
    ledger.lend(store, "search", hosts=["s01", "s02"])
    service, config = pool_then_cloud_service(tmp_path, store)

    def settle(burst_id: str) -> None:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while not service.is_done(burst_id):
            assert datetime.now(UTC) < deadline, [(h.id, h.state) for h in service.store.hosts(burst_id)]
            service.reconcile_once()
            time.sleep(0.05)

    try:
        burst = service.up("new-year", {"web": 56}, datetime.now(UTC) + timedelta(minutes=10))  # 7 hosts of 8
        settle(burst.id)
        hosts = service.store.hosts(burst.id)
        assert sorted(h.instance_id for h in hosts if h.tier == "pool") == ["db01", "db02", "s01", "s02"]
        assert sum(h.tier == "cloud" for h in hosts) == 3
        assert {h.status for h in ledger.host_views(store) if h.name in ("db01", "s01")} == {"leased"}
        service.down("new-year")
        settle(burst.id)
    finally:
        service.close()
    hosts = store.hosts(burst.id)
    assert {(h.tier, h.state) for h in hosts} == {("pool", "released"), ("cloud", "terminated")}
    journal = store.journal_entries(burst_id=burst.id)
    cloud_gone = max(e.id for e in journal if e.to_state == "terminated")
    pool_back = min(e.id for e in journal if e.kind == "pool.released")
    assert cloud_gone < pool_back  # the dearest capacity went first
    assert {h.name: h.status for h in ledger.host_views(store) if h.name in ("db01", "db02", "s01", "s02")} == {
        "db01": "lent", "db02": "lent", "s01": "lent", "s02": "lent"}
    report = pool_report(store)
    assert sorted((x.host, x.event) for x in report.leases) == [
        ("db01", "new-year"), ("db02", "new-year"), ("s01", "new-year"), ("s02", "new-year")]


def test_recall_in_the_middle_of_a_burst_replaces_before_the_hosts_leave(store, tmp_path):

    ledger.import_inventory(store, "search", inventory(tmp_path, "search.yml", SEARCH))
    ledger.lend(store, "search", hosts=["s01", "s02"])
    service, config = pool_then_cloud_service(tmp_path, store)

    def reconcile_until(done, what: str) -> None:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while not done():
            assert datetime.now(UTC) < deadline, what
            service.reconcile_once()
            time.sleep(0.05)

    try:
        burst = service.up("flash-sale", {"web": 16}, datetime.now(UTC) + timedelta(minutes=10))
        reconcile_until(lambda: service.is_done(burst.id), "burst up")
        assert sorted(h.instance_id for h in service.live_hosts(burst.id)) == ["s01", "s02"]
        recalled = CliRunner().invoke(app, ["recall", "search", "s01", "--force", "--config", str(config)])
        assert recalled.exit_code == 0, recalled.output
        assert {h.name: h.status for h in ledger.host_views(store)}["s01"] == "recalling"
        reconcile_until(lambda: {h.name: h.status for h in ledger.host_views(store)}["s01"] == "owned",
                        "s01 back with its owner")
        # the release is in the ledger when the provider returns; in the store at the next pass
        reconcile_until(lambda: len(service.live_hosts(burst.id)) <= 2, "s01's host row released")
        live = service.live_hosts(burst.id)
        ready = [h for h in live if h.state == "ready"]
        assert sorted(h.tier for h in ready) == ["cloud", "pool"] and len(live) == 2  # still 2 hosts, s01 replaced
        journal = store.journal_entries(burst_id=burst.id)
        (replacement,) = [h for h in ready if h.tier == "cloud"]
        cloud_ready = min(e.id for e in journal if e.to_state == "ready" and e.host_id == replacement.id)
        s01_draining = min(e.id for e in journal if e.to_state == "draining")
        assert cloud_ready < s01_draining  # the replacement was ready before s01 was drained
    finally:
        service.close()


def pool_then_cloud_service(tmp_path, store):
    """A BurstService whose tiers are the pool, then a fake cloud, and its config file."""
    from burst.config import load_config
    from burst.service import BurstService

    config = write_config(tmp_path, store.url)
    config.write_text(config.read_text() + textwrap.dedent("""
        [[tiers]]
        name = "cloud"
        provider = "fake"
        ready_seconds = 20
        [tiers.options]
        boot_seconds = 0.1
        [[tiers.instance_types]]
        name = "fake.large"
        cpu = 8
        memory_gib = 32
        price_per_hour = 0.2
        zones = ["zone-a"]
        [initialise.options]
        seconds = 0.05
        [swarm.options]
        seconds = 0.05
        """))
    return BurstService(load_config(config)), config
