"""The reconciler under concurrent, slow passes: every step runs once.

Four threads run passes at once against a store whose reads and writes are slowed
down, on the fake provider and the recording stand-ins (each records every call).
Whatever the interleaving, each host is launched, initialised, joined, drained,
left and terminated exactly once, and the burst-level steps (the extra tasks, the
wait for them) run once per burst."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from burst.config import EXAMPLE, load_config
from burst.provision.recording import RecordingCluster, RecordingInitialiser
from burst.service import BurstService
from burst.store import Store

HOSTS = 12


class SlowStore(Store):
    """The real store, with every host read and every batch write 5 ms slower: wide
    windows between a pass reading a state and acting on it."""

    def hosts(self, *args, **kwargs):
        time.sleep(0.005)
        return super().hosts(*args, **kwargs)

    def host_rows(self, *args, **kwargs):
        time.sleep(0.005)
        return super().host_rows(*args, **kwargs)

    def apply(self, *args, **kwargs):
        time.sleep(0.005)
        return super().apply(*args, **kwargs)


class CountingCluster(RecordingCluster):
    """The recording stand-in, counting the burst-level calls too."""

    def __init__(self, options):
        super().__init__(options)
        self.burst_calls: Counter[str] = Counter()

    def ensure_spillover(self, event, service, replicas, in_place=0):
        self.burst_calls["ensure_spillover"] += 1
        super().ensure_spillover(event, service, replicas, in_place)

    def wait_spillover(self, event, hosts, sink, deadline):
        self.burst_calls["wait_spillover"] += 1
        time.sleep(0.2)  # the slow part of scheduling: image pulls, tasks starting
        super().wait_spillover(event, hosts, sink, deadline)

    def remove_spillover(self, event):
        self.burst_calls["remove_spillover"] += 1
        super().remove_spillover(event)


def _concurrent_passes(svc: BurstService, burst_id: str, seconds: float = 60) -> None:
    """Four threads pass at once until the burst is done (or the deadline fails the test)."""
    deadline = time.monotonic() + seconds
    errors: list[BaseException] = []

    def passes() -> None:
        try:
            while not svc.is_done(burst_id) and time.monotonic() < deadline:
                svc.reconcile_once()
        except BaseException as exc:  # noqa: BLE001  reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=passes) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert svc.is_done(burst_id), f"burst {burst_id} not done in {seconds}s"


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_each_step_runs_once_under_concurrent_slow_passes(store_kind, tmp_path: Path, request):
    url = f"sqlite:///{tmp_path}/burst.db" if store_kind == "sqlite" else request.getfixturevalue("pg_url")
    config_file = tmp_path / "burst.toml"
    config_file.write_text(EXAMPLE.replace('store = "sqlite:///.burst/burst.db"', f'store = "{url}"')
                           .replace("boot_seconds = 2.0", "boot_seconds = 0.3"))
    config = load_config(config_file)
    initialiser = RecordingInitialiser({"seconds": 0.2})
    cluster = CountingCluster({"seconds": 0.2})
    svc = BurstService(config, store=SlowStore(url), initialiser=initialiser, cluster=cluster)
    try:
        burst = svc.up("gala", {"web": HOSTS * 4}, svc.clock.now() + timedelta(minutes=10))
        _concurrent_passes(svc, burst.id)
        assert svc.store.get_burst(burst.id).ready_at is not None
        svc.down("gala")
        _concurrent_passes(svc, burst.id)

        hosts = svc.store.hosts(burst.id)
        assert len(hosts) == HOSTS and all(h.state == "terminated" for h in hosts)
        per_host = Counter((op, host) for op, ids in initialiser.calls + cluster.calls for host in ids)
        for op in ("initialise", "join", "drain", "leave"):
            assert sorted(per_host[(op, h.id)] for h in hosts) == [1] * HOSTS, op
        fake = svc.providers.get("cloud")
        calls = fake.records()["calls"]
        launched = sum(c["count"] for c in calls if c["op"] == "launch")
        terminated = Counter(i for c in calls if c["op"] == "terminate" for i in c["ids"])
        assert launched == HOSTS and sorted(terminated.values()) == [1] * HOSTS
        assert cluster.burst_calls == {"ensure_spillover": 1, "wait_spillover": 1, "remove_spillover": 1}
        journal = svc.store.journal_entries(burst_id=burst.id)
        assert sum(1 for e in journal if e.kind == "spillover.running") == 1
    finally:
        svc.close()
