"""`burst daemon` for real: the calendar runs an event with no command typed, a
standby takes over from a SIGKILLed leader on PostgreSQL without doing anything
twice, a late daemon starts what still runs and records what it missed, and the
webhook keeps its deadline. Daemons run as subprocesses (`python -m burst daemon`)
on the fake provider, with the real store, service and reconciler."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import select

from burst.calendar.model import CalendarEvent
from burst.calendar.validate import validate
from burst.calendar.repo import CalendarRepo
from burst.calendar.tables import CalendarAction
from burst.config import load_config
from burst.daemon.config import DaemonConfig
from burst.daemon.webhook import Notifier
from burst.store import Burst, Store


CONFIG = """\
[cluster]
name = "caltest"
sla_seconds = 60
store = "{store}"
state_dir = "state"

[[services]]
name = "web"
cpu = 1.0
memory_gib = 1.0

[[tiers]]
name = "cloud"
provider = "fake"
ready_seconds = 5
[tiers.options]
boot_seconds = 1.0
[[tiers.instance_types]]
name = "fake.large"
cpu = 4
memory_gib = 8
price_per_hour = 0.2
zones = ["zone-a"]

[initialise]
kind = "recording"
[initialise.options]
seconds = 0.3

[swarm]
kind = "recording"
[swarm.options]
seconds = 0.2
"""


def wait_for(what: str, predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return {}


def write_config(folder: Path, store: str) -> Path:
    path = folder / "burst.toml"
    path.write_text(CONFIG.format(store=store))
    return path


class Webhook:
    """A local receiver that records every POSTed notification."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append(json.loads(body))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self) -> Counter:
        return Counter(n["kind"] for n in self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()


@pytest.fixture
def daemons(tmp_path):
    """Start `burst daemon` subprocesses; every one is stopped (by PID) at the end."""
    started: list[subprocess.Popen] = []

    def start(config: Path, port: int, *extra: str) -> subprocess.Popen:
        log = open(tmp_path / f"daemon-{len(started)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "burst", "daemon", "-c", str(config), "--metrics-port",
                                 str(port), "--tick-seconds", "0.5", *extra], stdout=log, stderr=subprocess.STDOUT,
                                cwd=tmp_path)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


@pytest.fixture
def pg_store_url(pg_url):
    """A fresh PostgreSQL database for the test, dropped after it (tests/conftest.py)."""
    return pg_url


def add_event(config: Path, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "burst", "calendar", "add", *args, "-c", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def actions(store: Store) -> list[CalendarAction]:
    with store.session() as s:
        return list(s.exec(select(CalendarAction).order_by(CalendarAction.id)))


def bursts_of(store: Store, event: str) -> list[Burst]:
    with store.session() as s:
        return list(s.exec(select(Burst).where(Burst.event == event)))


def fake_instances(folder: Path) -> list[dict]:
    return list(json.loads((folder / "state" / "fake-caltest.json").read_text())["instances"].values())


def test_an_event_gets_capacity_before_it_starts_holds_it_and_returns_it(tmp_path, daemons, webhook):
    config = write_config(tmp_path, "sqlite:///state/burst.db")
    port = free_port()
    daemons(config, port, "--webhook-url", webhook.url)
    wait_for("the daemon to lead", lambda: get_json(f"http://127.0.0.1:{port}/healthz").get("leader"), 30)

    # the event: starts in 20 s, lasts 10 s, its capacity must be ready 10 s ahead
    add_event(config, "flash", "--start", "+20s", "--duration", "10s", "--lead", "10s", "-r", "web=6")
    store = Store(load_config(config).store_url)
    event = CalendarRepo(store).get("flash")
    start = event.start.replace(tzinfo=UTC)
    end = start + timedelta(seconds=10)
    key = f"flash@{start:%Y-%m-%dT%H:%M:%SZ}"

    burst = wait_for("the burst to start", lambda: (bursts_of(store, key) or [None])[0], 30)
    assert start - timedelta(seconds=12) <= burst.created_at < start, "scale-out began at start - lead"
    wait_for("the event to start", lambda: datetime.now(UTC) >= start + timedelta(seconds=1), 30)
    burst = store.get_burst(burst.id)
    planned = json.loads(burst.plan_json)["hosts"]
    assert planned >= 2
    assert burst.ready_at is not None and burst.ready_at < start, "capacity ready before the event starts"
    assert store.state_counts(burst.id) == {"ready": planned}
    # held through the event: nothing goes back before its end
    wait_for("mid-event", lambda: datetime.now(UTC) >= end - timedelta(seconds=2), 30)
    burst = store.get_burst(burst.id)
    assert burst.status == "active" and store.state_counts(burst.id) == {"ready": planned}

    burst = wait_for("the capacity to be returned",
                     lambda: (b := store.get_burst(burst.id)).status == "down" and b, 60)
    assert burst.down_requested_at >= end, "scale-in only after the event's end"
    assert store.state_counts(burst.id) == {"terminated": planned}
    assert [i for i in fake_instances(tmp_path) if i["state"] != "terminated"] == []
    assert len(fake_instances(tmp_path)) == planned

    done = [(a.action, a.status, a.outcome) for a in actions(store)]
    assert done == [("up", "done", "on_time"), ("down", "done", "on_time")]
    wait_for("the notifications", lambda: webhook.kinds()["burst.complete"] == 1, 15)
    assert webhook.kinds() == Counter({"event.starting": 1, "burst.ready": 1, "burst.complete": 1})
    starting = next(n for n in webhook.received if n["kind"] == "event.starting")
    assert starting["occurrence"] == key and starting["demand"] == {"web": 6}

    health = get_json(f"http://127.0.0.1:{port}/healthz")
    assert health["ok"] and health["leader"]
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert f'burst_hosts{{provider="fake",state="terminated",tier="cloud"}} {planned:.1f}' in metrics
    assert "burst_sla_met_total 1.0" in metrics and "burst_sla_missed_total 0.0" in metrics
    assert f'burst_phase_seconds_count{{phase="launch_to_ready",tier="cloud"}} {planned:.1f}' in metrics
    assert 'burst_calendar_actions_total{action="down",outcome="on_time",status="done"} 1.0' in metrics
    assert "burst_daemon_leader 1.0" in metrics
    store.close()


def test_standby_takes_over_from_a_killed_leader_and_nothing_runs_twice(tmp_path, daemons, pg_store_url):
    config = write_config(tmp_path, pg_store_url)
    store = Store(pg_store_url)
    port_a, port_b = free_port(), free_port()
    leader = daemons(config, port_a)
    wait_for("daemon A to lead", lambda: get_json(f"http://127.0.0.1:{port_a}/healthz").get("leader"), 30)
    standby = daemons(config, port_b)
    wait_for("daemon B to serve", lambda: get_json(f"http://127.0.0.1:{port_b}/healthz").get("ok"), 30)
    assert get_json(f"http://127.0.0.1:{port_b}/healthz")["leader"] is False

    add_event(config, "flash", "--start", "+12s", "--duration", "12s", "--lead", "8s", "-r", "web=6")
    up = wait_for("the leader's scale-out", lambda: next((a for a in actions(store)
                                                           if a.action == "up" and a.status == "done"), None), 30)
    assert up.daemon.endswith(f":{leader.pid}")
    os.kill(leader.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    leader.wait(timeout=10)
    wait_for("daemon B to take over", lambda: get_json(f"http://127.0.0.1:{port_b}/healthz").get("leader"), 15,
             interval=0.1)
    takeover = time.monotonic() - killed_at
    print(f"takeover after SIGKILL: {takeover:.2f} s")
    assert takeover < 10

    key = up.occurrence
    burst = wait_for("the standby to return the capacity",
                     lambda: (b := (bursts_of(store, key) or [None])[0]) is not None and b.status == "down" and b, 90)
    planned = json.loads(burst.plan_json)["hosts"]
    rows = actions(store)
    assert [(a.action, a.status) for a in rows] == [("up", "done"), ("down", "done")]
    assert rows[1].daemon.endswith(f":{standby.pid}")
    assert len(bursts_of(store, key)) == 1, "one burst for the occurrence"
    journal = Counter(e.kind for e in store.journal_entries())
    assert journal["burst.created"] == 1 and journal["calendar.up"] == 1 and journal["calendar.down"] == 1
    downs = [e for e in store.journal_entries(burst_id=burst.id)
             if e.kind == "burst.updated" and "down requested" in e.message]
    assert len(downs) == 1
    instances = fake_instances(tmp_path)
    assert len(instances) == planned, "no host launched twice"
    assert all(i["state"] == "terminated" for i in instances)
    leaders = [json.loads(e.detail_json)["daemon"] for e in store.journal_entries() if e.kind == "daemon.leader"]
    assert [d.split(":")[-1] for d in leaders] == [str(leader.pid), str(standby.pid)]
    store.close()


def test_a_late_daemon_starts_what_still_runs_and_records_what_it_missed(tmp_path):
    from burst.daemon.loop import Daemon

    config_path = write_config(tmp_path, "sqlite:///state/burst.db")
    config = load_config(config_path)
    store = Store(config.store_url)
    repo = CalendarRepo(store)
    soon = (datetime.now(UTC) + timedelta(seconds=2)).replace(tzinfo=None, microsecond=0)
    repo.add([validate(CalendarEvent(name="short", start=soon, timezone="UTC", duration=timedelta(seconds=2),
                                     demand={"web": 2}, lead_seconds=1)),
              validate(CalendarEvent(name="long", start=soon, timezone="UTC", duration=timedelta(minutes=5),
                                     demand={"web": 2}, lead_seconds=1))])
    # no daemon runs while "short" starts and ends, and while "long" should start
    wait_for("the short event to end", lambda: datetime.now(UTC) > soon.replace(tzinfo=UTC) + timedelta(seconds=3),
             10)
    daemon = Daemon(config, DaemonConfig(metrics_port=0, tick_seconds=0.2, late_after_seconds=1), store=store)
    try:
        daemon.step()
        assert daemon.leader
        got = {(a.event, a.action): (a.status, a.outcome) for a in actions(store)}
        assert got == {("short", "up"): ("missed", "missed"), ("long", "up"): ("done", "late")}
        daemon.step()
        assert len(actions(store)) == 2, "a second pass decides nothing again"
        kinds = Counter((e.kind, json.loads(e.detail_json).get("outcome")) for e in store.journal_entries()
                        if e.kind.startswith("calendar."))
        assert kinds[("calendar.up", "missed")] == 1 and kinds[("calendar.up", "late")] == 1
        long_key = next(a.occurrence for a in actions(store) if a.event == "long")
        burst = bursts_of(store, long_key)[0]
        # a late start asks for a deadline the fastest tier can meet, not one already past
        assert burst.deadline_at >= burst.created_at + timedelta(seconds=4)
        daemon.service.down(long_key)
        wait_for("the late burst to be returned", lambda: (daemon.step(), store.get_burst(burst.id).status)[1] == "down",
                 60, interval=0.3)
    finally:
        daemon.close()


def test_webhook_keeps_its_deadline_and_does_not_retry_an_answer():
    refusing = Webhook(status=500)
    slow = Webhook(delay=5)
    try:
        results: list[tuple[str, str, str | None]] = []
        notifier = Notifier(refusing.url, timeout_seconds=2, on_result=lambda *r: results.append(r)).start()
        assert notifier.notify("k1", "burst.failed", {"burst_id": "b1"})
        wait_for("the result", lambda: results, 5)
        notifier.stop()
        assert results == [("k1", "failed", "HTTP 500")]
        assert len(refusing.received) == 1, "a receiver that answered is not asked again"

        t0 = time.monotonic()
        error = Notifier(slow.url, timeout_seconds=1).post({"kind": "sla.at_risk"})
        assert error and time.monotonic() - t0 < 2.5, "one deadline for every attempt"
    finally:
        refusing.close()
        slow.close()


def test_a_host_escalated_to_a_later_tier_sends_sla_at_risk_once(tmp_path, webhook):
    """The reconciler journals `sla.at_risk` when it moves a slow host to the next tier;
    the daemon tells the webhook, once, long before the deadline's own warning."""
    from burst.config import DaemonConfig, load_config
    from burst.daemon.loop import Daemon
    from burst.service import BurstService

    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path}/burst.db"))
    settings = DaemonConfig(webhook_url=webhook.url, metrics_port=0)
    store = Store(config.store_url)
    service = BurstService(config, store)
    daemon = Daemon(config, settings, store=store, service=service)
    daemon.notifier.start()  # what `run` starts; the passes are driven by hand here
    try:
        burst = service.up("gala", {"web": 4}, service.clock.now() + timedelta(hours=1))
        daemon.notify_pass(service.clock.now())
        assert webhook.kinds()["sla.at_risk"] == 0  # an hour before the deadline, nothing late yet
        store.journal("sla.at_risk", "a host on cloud is launching after 130s; escalated", burst_id=burst.id)
        for _ in range(2):
            daemon.notify_pass(service.clock.now())
        wait_for("the sla.at_risk notification", lambda: webhook.kinds()["sla.at_risk"] == 1, timeout=30)
        (sent,) = [n for n in webhook.received if n["kind"] == "sla.at_risk"]
        assert sent["burst_id"] == burst.id
    finally:
        daemon.close()


def test_a_calendar_burst_above_the_size_limits_is_refused_and_launches_nothing(tmp_path):
    """The daemon has no terminal to confirm on: a plan above [limits] is refused."""
    from burst.config import load_config
    from burst.errors import BurstError
    from burst.service import BurstService

    path = write_config(tmp_path, f"sqlite:///{tmp_path}/burst.db")
    path.write_text(path.read_text() + "\n[limits]\nhosts_per_burst = 2\n")
    service = BurstService(load_config(path))
    try:
        with pytest.raises(BurstError, match="above the size limits"):
            service.up("gala", {"web": 40}, service.clock.now() + timedelta(hours=1))
        assert service.store.bursts() == []
        big = service.up("gala", {"web": 40}, service.clock.now() + timedelta(hours=1), oversize_ok=True)
        assert len(service.store.hosts(big.id)) > 2
    finally:
        service.close()
