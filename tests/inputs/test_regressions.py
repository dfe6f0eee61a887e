"""Every example of issue 11, as a regression test: each is now a one-line error with a
non-zero exit and an unchanged store, or accepted where the input is in fact valid."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bad_input import CONFIG, check, run, snapshot

from burst.errors import BurstError, InputError

ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:one@test\r
SUMMARY:{summary}\r
{body}\r
X-BURST-DEMAND:web=4\r
END:VEVENT\r
END:VCALENDAR\r
"""


def ics(body: str, summary: str = "party") -> bytes:
    return ICS.format(body=body, summary=summary).encode()


@pytest.fixture
def w(world):
    with world.fresh() as copy:
        yield copy


def burst(w, *argv: str):
    return run(*argv, "-c", str(w.config))


def refused(w, argv: list[str], names: str, kind: str = "regression"):
    """The invariant for a known-bad input: one line naming `names`, store unchanged."""
    return check([*argv, "-c", str(w.config)], w.db, valid=False, names=names, kind=kind)


# -- the calendar west of UTC ---------------------------------------------------------

@pytest.mark.parametrize("tz", ["America/New_York", "America/Los_Angeles", "America/Sao_Paulo", "Europe/London"])
def test_a_timezone_west_of_utc_is_accepted(w, tz):
    r = burst(w, "calendar", "add", "t", "--start", "2027-06-01T20:00", "--tz", tz, "--duration", "1h",
              "-r", "web=8", "--json")
    assert r.traceback is None and r.code == 0, r
    shown = json.loads(r.stdout)
    assert shown["timezone"] == tz and shown["next"][0]["start"].startswith("2027-06-0")
    listed = burst(w, "calendar", "list")
    assert listed.code == 0 and listed.traceback is None and "t" in listed.stdout


def test_an_ics_dtstart_in_new_york_imports(w, tmp_path):
    path = tmp_path / "ny.ics"
    path.write_bytes(ics("DTSTART;TZID=America/New_York:20270601T200000\r\nDURATION:PT1H"))
    r = burst(w, "calendar", "import", str(path), "--json")
    assert r.code == 0 and r.traceback is None, r
    assert json.loads(r.stdout)[0]["next"][0]["start"] == "2027-06-02T00:00:00+00:00"


# -- user text is never markup --------------------------------------------------------

def test_a_bracketed_event_name_is_refused_and_stored_ones_do_not_break_status(w):
    from burst.config import load_config
    from burst.names import check_event
    from burst.service import BurstService

    with pytest.raises(InputError, match=r"event '\[/x\]' is not a valid name"):
        check_event("[/x]")
    # a row stored before the grammar (by an older burst): status and events still print it
    svc = BurstService(load_config(w.config))
    try:
        svc.up("[/x]", {"web": 4}, datetime.now(UTC) + timedelta(minutes=5))
    finally:
        svc.close()
    for argv in (("status",), ("events",), ("events", "[/x]")):
        r = burst(w, *argv)
        assert r.code == 0 and r.traceback is None, r
        assert "[/x]" in r.stdout


def test_an_ics_summary_with_markup_is_shown_as_written(w, tmp_path):
    path = tmp_path / "m.ics"
    path.write_bytes(ics("DTSTART:20270601T200000Z\r\nDURATION:PT1H", summary="[/x] party [bold]x"))
    assert burst(w, "calendar", "import", str(path)).code == 0
    r = burst(w, "calendar", "show", "x-party-bold-x")
    assert r.code == 0 and r.traceback is None, r
    assert "[/x] party [bold]x" in r.stdout


def test_a_config_error_keeps_its_brackets(w):
    w.config.write_text(CONFIG.replace('name = "inputs"', 'name = "Inputs"'))
    r = refused(w, ["status"], "cluster.name")
    assert "^[a-z][a-z0-9-]{0,39}$" in r.stderr


# -- poison never spreads -------------------------------------------------------------

def test_an_interval_of_minus_one_is_refused_at_import(w, tmp_path):
    path = tmp_path / "neg.ics"
    path.write_bytes(ics("DTSTART:20270601T200000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;INTERVAL=-1"))
    r = refused(w, ["calendar", "import", str(path)], "neg.ics")
    assert "INTERVAL=-1: must be a whole number 1-1000" in r.stderr


def _poison(db: Path, name: str, **fields) -> None:
    import sqlite3

    conn = sqlite3.connect(db)
    with conn:
        row = dict(name=name, title=name, start_local="2027-06-01T20:00:00", end_local=None, duration_seconds=3600.0,
                   timezone="UTC", demand_json='{"web": 2}', lead_seconds=None, rrule=None, cron=None, freeze=0,
                   description="", uid=f"{name}@test", created_at="2026-01-01 00:00:00.000000")
        row.update(fields)
        conn.execute(f"INSERT INTO calendar_event ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                     tuple(row.values()))
    conn.close()


@pytest.mark.parametrize("fields", [dict(rrule="FREQ=DAILY;INTERVAL=-1"), dict(timezone="Mars/Base"),
                                    dict(start_local="not a time"), dict(demand_json="{oops")])
def test_a_stored_row_that_no_longer_parses_is_named_and_the_others_are_listed(w, fields):
    _poison(w.db, "poisoned", **fields)
    r = burst(w, "calendar", "list", "--json")
    assert r.code == 0 and r.traceback is None, r
    assert [e["name"] for e in json.loads(r.stdout)] == ["seed"]
    assert "'poisoned'" in r.stderr and "burst calendar remove poisoned" in r.stderr
    table = burst(w, "calendar", "list")
    assert table.code == 0 and "seed" in table.stdout
    shown = burst(w, "calendar", "show", "poisoned")
    assert shown.code == 1 and shown.traceback is None
    assert len(shown.stderr.strip().splitlines()) == 1 and "burst calendar remove poisoned" in shown.stderr
    assert burst(w, "calendar", "export").code == 0
    assert burst(w, "calendar", "remove", "poisoned").code == 0
    assert "poisoned" not in burst(w, "calendar", "list").stderr


def test_the_daemon_journals_a_poisoned_row_once_and_goes_on(w):
    from burst.calendar.repo import CalendarRepo
    from burst.config import load_config
    from burst.daemon.calendar_runner import CalendarRunner
    from burst.store import Store

    _poison(w.db, "poisoned", rrule="FREQ=DAILY;INTERVAL=-1")
    cfg = load_config(w.config)
    store = Store(cfg.store_url)
    try:
        runner = CalendarRunner(cfg, cfg.daemon, CalendarRepo(store), service=None, identity="test")
        for _ in range(3):
            runner.run_once(datetime.now(UTC))
        entries = [e for e in store.journal_entries() if e.kind == "calendar.unreadable"]
        assert len(entries) == 1 and "poisoned" in entries[0].message
        assert [e.name for e in CalendarRepo(store).list()] == ["seed"]
    finally:
        store.close()


# -- size --------------------------------------------------------------------------------

def test_a_million_replicas_is_above_the_size_guard(w):
    from burst.cli.common import guard_size, size_note
    from burst.config import load_config
    from burst.service import BurstService

    cfg = load_config(w.config)
    svc = BurstService(cfg)
    try:
        plan = svc.plan("big", {"web": 1_000_000}, datetime.now(UTC) + timedelta(minutes=5))
    finally:
        svc.close()
    assert plan.hosts > cfg.limits.hosts_per_burst
    with pytest.raises(InputError, match=r"above the size limits: \d+ hosts in all, limit 1000 per burst.*--yes"):
        guard_size(plan, cfg, yes=False, interactive=True)
    with pytest.raises(InputError, match="--yes is only taken on a terminal"):
        guard_size(plan, cfg, yes=True, interactive=False)
    guard_size(plan, cfg, yes=True, interactive=True)  # the operator confirmed on a terminal
    assert "needs --yes" in size_note(plan, cfg)


def test_a_twenty_digit_replica_count_is_refused():
    from burst.cli.common import parse_replicas

    with pytest.raises(InputError, match="at most 1000000 replicas"):
        parse_replicas(["web=99999999999999999999"])


# -- silent substitutions ------------------------------------------------------------------

@pytest.mark.parametrize("body, names", [
    ("DTSTART;TZID=Mars/Base:20270601T200000\r\nDURATION:PT1H", "TZID=Mars/Base is not an IANA timezone"),
    ("DTSTART:20270601T200000Z\r\nDURATION:PT1H\r\nRRULE:;;;==", "RRULE is empty or malformed"),
    ("DTSTART:20270601T200000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=SECONDLY", "FREQ=SECONDLY is not allowed"),
    ("DTSTART:20270601T200000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=MINUTELY", "at least 15 minutes apart"),
    ("DTSTART:20270601T200000Z\r\nDURATION:PT5H\r\nRRULE:FREQ=HOURLY", "at most 4 may run at once"),
    ("DTSTART:20270601T200000Z\r\nDURATION:PTXH", "DURATION is malformed (Invalid iCalendar duration: PTXH)"),
    ("DTSTART:20270601T200000Z\r\nDURATION:-PT1H", "must be above zero"),
    ("DTSTART:99991231T230000Z\r\nDURATION:PT2H", "not within the years 1970-2999"),
])
def test_an_ics_that_used_to_be_read_as_something_else_is_refused(w, tmp_path, body, names):
    path = tmp_path / "bad.ics"
    path.write_bytes(ics(body))
    r = refused(w, ["calendar", "import", str(path)], "bad.ics")
    assert names in r.stderr


@pytest.mark.parametrize("change, names", [
    (('store = "sqlite:///state/burst.db"', 'store = "sqlite:///nowhere/at/all/burst.db"'),
     "cluster.store: the directory"),
    (('name = "inputs"', 'name = "inputs"\nsla_seconds = "300"'), "cluster.sla_seconds: Input should be a valid number"),
    (('name = "inputs"', 'name = "inputs"\nsla_seconds = inf'), "cluster.sla_seconds: Input should be a finite number"),
    (('ready_seconds = 10', 'ready_seconds = 10\nmax_hosts = 0'), "tiers[0].max_hosts: Input should be greater than"),
    (("boot_seconds = 0.1", "boot_seconds = 0.1\nboot_secs = 2"), "tiers[1].options.boot_secs: unknown option"),
    (("boot_seconds = 0.1", "boot_seconds = inf"), "tiers[1].options.boot_seconds: Input should be a finite"),
    (("cpu = 4", "cpu = inf"), "tiers[1].instance_types[0].cpu: Input should be a finite number"),
    (('kind = "recording"\n\n[swarm]', 'kind = "recording"\nseconds = 1\n\n[swarm]'), "initialise.seconds: unknown key"),
    (('state_dir = "state"', 'state_dir = "burst.toml/sub"'), "cluster.state_dir"),
])
def test_a_config_value_that_used_to_be_accepted_is_refused(w, change, names):
    w.config.write_text(CONFIG.replace(*change))
    r = refused(w, ["status"], names)
    assert "burst.toml:" in r.stderr


def test_a_store_in_the_state_dir_may_be_created(tmp_path):
    from burst.config import load_config

    (tmp_path / "burst.toml").write_text(CONFIG.replace('state_dir = "state"', 'state_dir = "fresh"')
                                         .replace("sqlite:///state/", "sqlite:///fresh/"))
    assert load_config(tmp_path / "burst.toml").store_url.endswith("/fresh/burst.db")


def test_json_output_never_holds_a_non_finite_number(capsys):
    from burst.cli.common import print_json

    print_json({"a": math.inf, "b": [math.nan, -math.inf, 1.5], "c": "inf"})
    out = capsys.readouterr().out
    assert json.loads(out) == {"a": None, "b": [None, None, 1.5], "c": "inf"}
    assert "Infinity" not in out and "NaN" not in out


# -- other tracebacks ----------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"\x00\x01\xff\xfe binary", "[cluster]\nname = \"caf\xe9\"\n".encode("latin-1")])
def test_a_binary_or_latin1_config_is_one_line(w, content):
    w.config.write_bytes(content)
    r = refused(w, ["status"], "burst.toml:")
    assert "not UTF-8" in r.stderr


def test_the_cli_binary_prints_no_traceback_for_a_latin1_config(tmp_path):
    (tmp_path / "burst.toml").write_bytes("[cluster]\nname = \"caf\xe9\"\n".encode("latin-1"))
    p = subprocess.run([sys.executable, "-m", "burst", "status", "-c", str(tmp_path / "burst.toml")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [f"error: {tmp_path / 'burst.toml'}:2: not UTF-8 text (byte 0xe9 at "
                                             "offset 21); a config file is UTF-8 TOML"]


@pytest.mark.parametrize("text, message", [
    ("99999999999999999999s", "at most 7d"), ("0s", "above zero"), ("-5m", "expected a duration"),
    ("5 parsecs", "expected a duration"), ("nan", "expected a duration"), ("inf", "expected a duration"),
    ("2999-01-01T00:00", "at most 7d ahead"), ("2000-01-01T00:00", "in the past"),
])
def test_a_deadline_out_of_bounds_is_one_line(text, message):
    from burst.cli.common import parse_deadline

    with pytest.raises(InputError, match=message) as err:
        parse_deadline(text, datetime.now(UTC))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, seconds", [("5m", 300), ("1h30m", 5400), ("PT5M", 300), ("+5m", 300), ("300", 300),
                                           ("300s", 300), ("1.5h", 5400), ("P1DT1H", 90000), ("2 min", 120)])
def test_the_one_duration_grammar(text, seconds):
    from burst.cli.common import parse_deadline
    from burst.durations import parse_seconds

    assert parse_seconds(text) == seconds
    now = datetime.now(UTC)
    assert parse_deadline(text, now) == now + timedelta(seconds=seconds)


def test_report_width_zero_is_a_usage_error(w):
    r = burst(w, "report", "seed", "--width", "0")
    assert r.code == 2 and r.traceback is None
    assert len(r.stderr.strip().splitlines()) == 1 and "--width" in r.stderr


@pytest.mark.parametrize("argv, names", [
    (["--start", "9999-12-31T23:00", "--duration", "2h"], "the year must be 1970-2999"),
    (["--start", "2027-06-01T20:00", "--duration", "99999999999d"], "--duration"),
    (["--start", "2027-06-01T20:00", "--duration", "PT"], "--duration"),
    (["--start", "2027-06-01T20:00", "--duration", "1h", "--lead", "30d"], "--lead"),
    (["--start", "2027-06-01T20:00", "--duration", "1h", "--tz", "EST5EDT,M3.2.0,M11.1.0"], "unknown timezone"),
    (["--start", "2027-06-01T20:00", "--duration", "1h", "--tz", "../../etc/passwd"], "unknown timezone"),
    (["--start", "2027-06-01T20:00", "--duration", "1h", "--rrule", "FREQ=SECONDLY"], "FREQ=SECONDLY"),
    (["--start", "2027-06-01T20:00", "--duration", "1h", "--cron", "*/5 * * * *"], "at least 15 minutes apart"),
])
def test_calendar_add_bounds(w, argv, names):
    refused(w, ["calendar", "add", "bounded", "-r", "web=2", *argv], names)


# -- names ---------------------------------------------------------------------------------

BAD_NAMES = ["", " ", "a b", "two\nlines", "x" * 300, "../x", "a;rm -rf /", "[/x]", "-x", "a/b", "é"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_event_name_is_refused(w, name):
    from burst.names import check_event

    with pytest.raises(InputError) as err:
        check_event(name)
    assert "\n" not in str(err.value) and "is not a valid name" in str(err.value)
    check(["calendar", "add", "--start", "2027-06-01T20:00", "--duration", "1h", "-r", "web=2", "-c", str(w.config),
           "--", name], w.db, valid=False, names="event name", kind="regression")


@pytest.mark.parametrize("name", ["spring-gala", "new-year-2027", "seed@2027-01-28T20:00:00Z", "A.b_c"])
def test_a_good_event_name_passes(name):
    from burst.names import check_event

    assert check_event(name) == name


@pytest.mark.parametrize("ini, names", [
    ("[web]\nh1 cpu=1e9 memory_gib=8\n", "cpu must be above 0 and at most 4096"),
    ("[web]\nh1 cpu=inf memory_gib=8\n", "cpu must be above 0 and at most 4096"),
    ("[web]\nh1 cpu=nan memory_gib=8\n", "cpu must be above 0 and at most 4096"),
    ("[web]\nh1 cpu=4 memory_gib=8 ansible_port=99999\n", "ansible_port must be a port number 1-65535"),
    ("[web]\n../../etc/passwd cpu=4 memory_gib=8\n", "host name '../../etc/passwd' is not a valid name"),
    ("[web]\nh1 cpu=4 memory_gib=8\n[db]\nh1 cpu=16 memory_gib=8\n", "host 'h1' is listed again with cpu=16"),
    ("[prod:children]\nweb\n", "group 'prod' lists child group 'web', which the file does not define"),
    ("[web]\nh1 cpu=4 memory_gib=8 ansible_host=a;b\n", "ansible_host must be a host name or an IP"),
    ("[web]\nh[0:999999999] cpu=4 memory_gib=8\n", "names more than 100000 hosts"),
])
def test_an_ini_inventory_that_used_to_be_accepted_is_refused(w, tmp_path, ini, names):
    path = tmp_path / "inv.ini"
    path.write_text(ini)
    r = refused(w, ["pool", "import", "unit-a", str(path)], "inv.ini:")
    assert names in r.stderr


def test_a_yaml_true_is_not_a_cpu_count(w, tmp_path):
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  hosts:\n    h1:\n      cpu: true\n      memory_gib: 8\n")
    r = refused(w, ["pool", "import", "unit-a", str(path)], "inv.yml:3:")
    assert "cpu must be a number, got True" in r.stderr


def test_a_json_inventory_is_read_as_json(w, tmp_path):
    good = tmp_path / "inv.json"
    good.write_text(json.dumps({"all": {"hosts": {"h1": {"cpu": 4, "memory_gib": 8, "ansible_host": "10.9.0.1"}}}}))
    assert burst(w, "pool", "import", "unit-a", str(good)).code == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"all": {"hosts": {"h1": {"cpu": 4,}}}}')
    r = refused(w, ["pool", "import", "unit-b", str(bad)], "bad.json:1:")
    assert "malformed JSON" in r.stderr and "YAML" not in r.stderr


def test_a_bad_unit_name_is_refused(w):
    refused(w, ["pool", "import", "../x", str(w.dir / "burst.toml")], "business unit '../x'")


# -- the structure fixes of issue 9 -----------------------------------------------------

def _imports(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_core_config_does_not_import_the_daemon_and_the_calendar_has_no_cycle():
    root = Path(__file__).parents[2] / "burst"
    assert not any(m.startswith("burst.daemon") for m in _imports(root / "config.py"))
    assert "burst.calendar.recurrence" not in _imports(root / "calendar" / "model.py")
    assert "burst.calendar.validate" not in _imports(root / "calendar" / "recurrence.py")


def test_the_provider_option_tables_match_the_providers_own_models():
    from burst.config import PROVIDER_OPTIONS
    from burst_providers.aliyun import AliyunOptions
    from burst_providers.aws import AwsOptions

    assert PROVIDER_OPTIONS["aws"] == set(AwsOptions.model_fields) - {"instance_types"}
    assert PROVIDER_OPTIONS["aliyun"] == set(AliyunOptions.model_fields) - {"instance_types"}


def test_burst_errors_are_one_line_even_with_a_newline_inside(w):
    from burst.cli.common import error_line

    assert error_line("a\nb").plain == "error: a b"
    assert issubclass(InputError, BurstError)
    assert snapshot(w.db)  # the world's store is a real one
